package testmodels

import (
	"fmt"
	"math"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// The WAN 2.1 VAE cannot be shrunk: ComfyUI builds it with a hard-coded
// configuration (dim 96, z_dim 16, dim_mult [1,2,4,4], 2 residual blocks per
// level, temporal downsampling [false,true,true]) whatever the file holds. So
// the fixture is the full set of 194 tensors with random weights. vaeBuilder
// walks the same module tree as comfy/ldm/wan/vae.py to name them.
type vaeBuilder struct {
	seed uint64
	dt   safetensors.DType
	ts   []safetensors.Tensor
}

// conv adds a convolution's weight, N(0, 1/fan_in) so that activations keep
// their scale, and its zero bias.
func (b *vaeBuilder) conv(name string, out, in int64, kernel ...int64) {
	shape := append([]int64{out, in}, kernel...)
	fanIn := in
	for _, k := range kernel {
		fanIn *= k
	}
	std := 1 / math.Sqrt(float64(fanIn))
	b.ts = append(b.ts,
		safetensors.Tensor{Name: name + ".weight", DType: b.dt, Shape: shape, Fill: fillNormal(b.seed, name+".weight", b.dt, std)},
		safetensors.Tensor{Name: name + ".bias", DType: b.dt, Shape: []int64{out}})
}

// rms adds an RMS_norm's gamma (ones): [C,1,1,1] for video, [C,1,1] for images.
func (b *vaeBuilder) rms(name string, c int64, images bool) {
	shape := []int64{c, 1, 1, 1}
	if images {
		shape = shape[:3]
	}
	b.ts = append(b.ts, safetensors.Tensor{Name: name + ".gamma", DType: b.dt, Shape: shape, Data: constant(b.dt, c, 1)})
}

func (b *vaeBuilder) residual(p string, in, out int64) {
	b.rms(p+".residual.0", in, false)
	b.conv(p+".residual.2", out, in, 3, 3, 3)
	b.rms(p+".residual.3", out, false)
	b.conv(p+".residual.6", out, out, 3, 3, 3)
	if in != out {
		b.conv(p+".shortcut", out, in, 1, 1, 1)
	}
}

func (b *vaeBuilder) attention(p string, c int64) {
	b.rms(p+".norm", c, true)
	b.conv(p+".to_qkv", 3*c, c, 1, 1)
	b.conv(p+".proj", c, c, 1, 1)
}

// resample adds a Resample block of the given mode.
func (b *vaeBuilder) resample(p string, c int64, mode string) {
	switch mode {
	case "upsample2d", "upsample3d":
		b.conv(p+".resample.1", c/2, c, 3, 3)
		if mode == "upsample3d" {
			b.conv(p+".time_conv", 2*c, c, 3, 1, 1)
		}
	case "downsample2d", "downsample3d":
		b.conv(p+".resample.1", c, c, 3, 3)
		if mode == "downsample3d" {
			b.conv(p+".time_conv", c, c, 3, 1, 1)
		}
	}
}

// wanVAE returns the WAN 2.1 VAE's tensors in dt with random weights.
func wanVAE(seed uint64, dt safetensors.DType) []safetensors.Tensor {
	const (
		dim       = 96
		zDim      = 16
		resBlocks = 2
	)
	mult := []int64{1, 2, 4, 4}
	temporalDown := []bool{false, true, true}
	b := &vaeBuilder{seed: seed, dt: dt}

	// Encoder3d(dim, 2*z_dim, ...).
	dims := []int64{dim}
	for _, m := range mult {
		dims = append(dims, dim*m)
	}
	b.conv("encoder.conv1", dims[0], 3, 3, 3, 3)
	idx := 0
	for i := 0; i < len(mult); i++ {
		in, out := dims[i], dims[i+1]
		for range resBlocks {
			b.residual(fmt.Sprintf("encoder.downsamples.%d", idx), in, out)
			idx++
			in = out
		}
		if i != len(mult)-1 {
			mode := "downsample2d"
			if temporalDown[i] {
				mode = "downsample3d"
			}
			b.resample(fmt.Sprintf("encoder.downsamples.%d", idx), out, mode)
			idx++
		}
	}
	top := dims[len(dims)-1]
	b.residual("encoder.middle.0", top, top)
	b.attention("encoder.middle.1", top)
	b.residual("encoder.middle.2", top, top)
	b.rms("encoder.head.0", top, false)
	b.conv("encoder.head.2", 2*zDim, top, 3, 3, 3)

	b.conv("conv1", 2*zDim, 2*zDim, 1, 1, 1)
	b.conv("conv2", zDim, zDim, 1, 1, 1)

	// Decoder3d(dim, z_dim, ..., temperal_upsample = reversed temporalDown).
	ddims := []int64{dim * mult[len(mult)-1]}
	for i := len(mult) - 1; i >= 0; i-- {
		ddims = append(ddims, dim*mult[i])
	}
	temporalUp := []bool{temporalDown[2], temporalDown[1], temporalDown[0]}
	b.conv("decoder.conv1", ddims[0], zDim, 3, 3, 3)
	b.residual("decoder.middle.0", ddims[0], ddims[0])
	b.attention("decoder.middle.1", ddims[0])
	b.residual("decoder.middle.2", ddims[0], ddims[0])
	idx = 0
	var out int64
	for i := 0; i < len(mult); i++ {
		in := ddims[i]
		out = ddims[i+1]
		if i >= 1 {
			in /= 2 // the previous upsample halved the channels
		}
		for range resBlocks + 1 {
			b.residual(fmt.Sprintf("decoder.upsamples.%d", idx), in, out)
			idx++
			in = out
		}
		if i != len(mult)-1 {
			mode := "upsample2d"
			if temporalUp[i] {
				mode = "upsample3d"
			}
			b.resample(fmt.Sprintf("decoder.upsamples.%d", idx), out, mode)
			idx++
		}
	}
	b.rms("decoder.head.0", out, false)
	b.conv("decoder.head.2", 3, out, 3, 3, 3)
	return b.ts
}
