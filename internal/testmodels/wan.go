package testmodels

import (
	"fmt"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// The tiny WAN diffusion model: the real WAN 2.2 I2V A14B key layout (in_dim
// 36, out_dim 16, no img_emb, so ComfyUI detects WAN21_T2V with the image
// concatenated to the latent, exactly like the real experts) at the smallest
// width ComfyUI accepts (dim 128 = one 128-wide head) and one block.
const (
	wanInDim   = 36
	wanOutDim  = 16
	wanTextDim = 4096 // fixed in ComfyUI: text_embedding takes UMT5's width
	wanFreqDim = 256
)

// wanDims are the sizes that differ between the tiny fixture and the real
// 14B expert.
type wanDims struct {
	dim, ffn, blocks, rank int64
	// fast fills the fp8 Linear weights by table lookup (fp8Linear) instead
	// of quantizing float32 normals: the full-size experts hold 14 G of them.
	fast bool
}

// tinyWAN is the fixture of the end-to-end tier; fullWAN is WAN 2.2 I2V A14B
// (40 heads of 128) with the rank-32 lightx2v LoRA.
var (
	tinyWAN = wanDims{dim: 128, ffn: 256, blocks: 1, rank: 4}
	fullWAN = wanDims{dim: 5120, ffn: 13824, blocks: 40, rank: 32, fast: true}
)

// linear is one Linear layer of the model: name (without .weight), out, in.
type linear struct {
	name    string
	out, in int64
}

// wanLinears lists every Linear of the model, the layers that are stored in
// fp8 with a scale and that a LoRA can patch.
func wanLinears(d wanDims) []linear {
	wanDim, wanFFN := d.dim, d.ffn
	ls := []linear{
		{"text_embedding.0", wanDim, wanTextDim},
		{"text_embedding.2", wanDim, wanDim},
		{"time_embedding.0", wanDim, wanFreqDim},
		{"time_embedding.2", wanDim, wanDim},
		{"time_projection.1", 6 * wanDim, wanDim},
	}
	for b := int64(0); b < d.blocks; b++ {
		p := fmt.Sprintf("blocks.%d.", b)
		for _, attn := range []string{"self_attn", "cross_attn"} {
			for _, x := range []string{"q", "k", "v", "o"} {
				ls = append(ls, linear{p + attn + "." + x, wanDim, wanDim})
			}
		}
		ls = append(ls, linear{p + "ffn.0", wanFFN, wanDim}, linear{p + "ffn.2", wanDim, wanFFN})
	}
	return append(ls, linear{"head.head", 4 * wanOutDim, wanDim}) // out_dim × prod(patch_size)
}

// wanNorms lists the normalisation weights (ones), each [dim].
func wanNorms(d wanDims) []string {
	var ns []string
	for b := int64(0); b < d.blocks; b++ {
		p := fmt.Sprintf("blocks.%d.", b)
		ns = append(ns, p+"self_attn.norm_q", p+"self_attn.norm_k", p+"cross_attn.norm_q", p+"cross_attn.norm_k", p+"norm3")
	}
	return ns
}

// wanModel returns the tensors of one expert, stored like Comfy-Org's
// *_fp8_scaled files: every Linear weight in float8_e4m3fn with an F32
// scale_weight, a two-element scaled_fp8 marker (which keeps ComfyUI's fp8
// matrix-multiply and input scaling off), everything else in F32. Values:
// N(0, 0.02²) for Linear and patch-embedding weights, ones for norm weights,
// zeros for biases, N(0, 0.01²) for the modulations.
func wanModel(seed uint64, d wanDims) []safetensors.Tensor {
	wanDim := d.dim
	f32 := safetensors.F32
	var ts []safetensors.Tensor
	add := func(name string, shape []int64, data []byte) {
		ts = append(ts, safetensors.Tensor{Name: name, DType: f32, Shape: shape, Data: data})
	}
	rand := func(name string, std float64, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		add(name, shape, safetensors.EncodeFloats(f32, normals(seed, name, n, std)))
	}

	rand("patch_embedding.weight", 0.02, wanDim, wanInDim, 1, 2, 2)
	add("patch_embedding.bias", []int64{wanDim}, nil)
	for _, l := range wanLinears(d) {
		if d.fast {
			ts = append(ts, fp8Linear(seed, l.name, l.out, l.in)...)
		} else {
			w, scale := quantizeFP8(normals(seed, l.name+".weight", l.out*l.in, 0.02))
			ts = append(ts,
				safetensors.Tensor{Name: l.name + ".weight", DType: safetensors.F8E4M3, Shape: []int64{l.out, l.in}, Data: w},
				scalar(l.name+".scale_weight", scale))
		}
		add(l.name+".bias", []int64{l.out}, nil)
	}
	for _, n := range wanNorms(d) {
		add(n+".weight", []int64{wanDim}, constant(f32, wanDim, 1))
	}
	for b := int64(0); b < d.blocks; b++ {
		add(fmt.Sprintf("blocks.%d.norm3.bias", b), []int64{wanDim}, nil)
		rand(fmt.Sprintf("blocks.%d.modulation", b), 0.01, 1, 6, wanDim)
	}
	rand("head.modulation", 0.01, 1, 2, wanDim)
	ts = append(ts, safetensors.Tensor{Name: "scaled_fp8", DType: safetensors.F8E4M3, Shape: []int64{2}})
	return ts
}

// wanLoRA returns a LoRA for the tiny model in the layout of Kijai's
// Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32 (BF16): lora_down /
// lora_up / alpha for every Linear, diff_b for their biases, diff for the
// norm weights, the patch embedding and the modulations — every key one that
// ComfyUI's loader maps onto the model (no k_img/v_img, img_emb or diff_m,
// which it would report as "lora key not loaded").
func wanLoRA(seed uint64, d wanDims) []safetensors.Tensor {
	wanDim, loraRank := d.dim, d.rank
	bf := safetensors.BF16
	var ts []safetensors.Tensor
	rand := func(name string, std float64, shape ...int64) {
		ts = append(ts, safetensors.Tensor{Name: name, DType: bf, Shape: shape, Fill: fillNormal(seed, name, bf, std)})
	}
	const p = "diffusion_model."
	for _, l := range wanLinears(d) {
		rand(p+l.name+".lora_down.weight", 0.05, loraRank, l.in)
		rand(p+l.name+".lora_up.weight", 0.05, l.out, loraRank)
		ts = append(ts, safetensors.Tensor{Name: p + l.name + ".alpha", DType: bf, Shape: []int64{},
			Data: safetensors.EncodeFloats(bf, []float32{float32(loraRank)})})
		rand(p+l.name+".diff_b", 0.001, l.out)
	}
	for _, n := range wanNorms(d) {
		rand(p+n+".diff", 0.001, wanDim)
	}
	rand(p+"patch_embedding.diff", 0.001, wanDim, wanInDim, 1, 2, 2)
	rand(p+"patch_embedding.diff_b", 0.001, wanDim)
	for b := int64(0); b < d.blocks; b++ {
		rand(fmt.Sprintf("%sblocks.%d.norm3.diff_b", p, b), 0.001, wanDim)
		rand(fmt.Sprintf("%sblocks.%d.modulation.diff", p, b), 0.001, 1, 6, wanDim)
	}
	rand(p+"head.modulation.diff", 0.001, 1, 2, wanDim)
	return ts
}
