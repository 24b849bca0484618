package testmodels

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// fullShape is one row of the shape table, written from the architecture
// (WAN 2.2 I2V A14B: dim 5120, 40 layers, 40 heads, ffn 13824, in_dim 36,
// out_dim 16, text dim 4096, patch 1×2×2; UMT5-XXL: d_model 4096, 24 layers,
// ffn 10240, 64 heads of 64, 32 buckets, vocab 256384; lightx2v rank 32).
type fullShape struct {
	name  string
	dtype safetensors.DType
	shape []int64
}

func TestFullHeaders(t *testing.T) {
	opts := DefaultOptions()
	opts.Full = true
	files, err := Plan(opts)
	if err != nil {
		t.Fatal(err)
	}
	f8, f32, f16, bf := safetensors.F8E4M3, safetensors.F32, safetensors.F16, safetensors.BF16
	const D, F, L = 5120, 13824, 40
	cases := map[string]struct {
		count int
		bytes int64 // data bytes, ±0.5 %
		rows  []fullShape
		none  []string
	}{
		"diffusion_model": {
			// per block: 8 attention + 2 ffn Linears × (weight, scale, bias), 5 norms,
			// norm3.bias, modulation; top: 6 Linears × 3, patch embedding ×2,
			// head.modulation, scaled_fp8.
			count: L*(10*3+5+2) + 6*3 + 2 + 1 + 1,
			bytes: 14_290_000_000,
			rows: []fullShape{
				{"patch_embedding.weight", f32, []int64{D, 36, 1, 2, 2}},
				{"text_embedding.0.weight", f8, []int64{D, 4096}},
				{"time_embedding.0.weight", f8, []int64{D, 256}},
				{"time_projection.1.weight", f8, []int64{6 * D, D}},
				{"blocks.0.self_attn.q.weight", f8, []int64{D, D}},
				{"blocks.0.self_attn.q.scale_weight", f32, []int64{}},
				{"blocks.39.cross_attn.o.weight", f8, []int64{D, D}},
				{"blocks.39.ffn.0.weight", f8, []int64{F, D}},
				{"blocks.39.ffn.2.weight", f8, []int64{D, F}},
				{"blocks.39.modulation", f32, []int64{1, 6, D}},
				{"blocks.39.norm3.weight", f32, []int64{D}},
				{"head.head.weight", f8, []int64{16 * 1 * 2 * 2, D}},
				{"head.modulation", f32, []int64{1, 2, D}},
				{"scaled_fp8", f8, []int64{2}},
			},
			none: []string{"blocks.40.ffn.0.weight", "img_emb.proj.1.weight", "blocks.0.cross_attn.k_img.weight"},
		},
		"text_encoder": {
			// per layer: 7 Linears × (weight, scale), relative bias, 2 norms;
			// shared, final norm, scaled_fp8, spiece_model.
			count: 24*(7*2+3) + 4,
			bytes: 6_730_000_000,
			rows: []fullShape{
				{"shared.weight", f16, []int64{256384, 4096}},
				{"encoder.block.23.layer.0.SelfAttention.q.weight", f8, []int64{64 * 64, 4096}},
				{"encoder.block.23.layer.0.SelfAttention.relative_attention_bias.weight", f16, []int64{32, 64}},
				{"encoder.block.23.layer.1.DenseReluDense.wi_0.weight", f8, []int64{10240, 4096}},
				{"encoder.block.23.layer.1.DenseReluDense.wo.weight", f8, []int64{4096, 10240}},
				{"encoder.block.23.layer.1.DenseReluDense.wo.scale_weight", f32, []int64{}},
				{"encoder.final_layer_norm.weight", f16, []int64{4096}},
			},
			none: []string{"encoder.block.24.layer.0.layer_norm.weight"},
		},
		"lora": {
			count: (L*10+6)*4 + L*5 + 2 + L*2 + 1,
			// BF16: per block 8 attention Linears (down 32×D, up D×32) and the
			// ffn pair, their diff_b, 5 norm diffs, norm3 diff_b, modulation
			// diff; the 6 top Linears with diff_b, the patch embedding diff and
			// diff_b, head.modulation diff, one alpha per Linear.
			bytes: 2 * (L*(8*64*D+2*32*(D+F)+9*D+F+5*D+D+6*D) +
				32*(4096+D) + D + 64*D + D + 32*(256+D) + D + 64*D + D + 32*7*D + 6*D + 32*(D+64) + 64 +
				D*36*4 + D + 2*D + (L*10 + 6)),
			rows: []fullShape{
				{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", bf, []int64{32, D}},
				{"diffusion_model.blocks.0.self_attn.q.lora_up.weight", bf, []int64{D, 32}},
				{"diffusion_model.blocks.39.ffn.2.lora_down.weight", bf, []int64{32, F}},
				{"diffusion_model.blocks.39.ffn.0.alpha", bf, []int64{}},
				{"diffusion_model.blocks.39.ffn.0.diff_b", bf, []int64{F}},
				{"diffusion_model.blocks.39.norm3.diff", bf, []int64{D}},
				{"diffusion_model.patch_embedding.diff", bf, []int64{D, 36, 1, 2, 2}},
			},
		},
		"vae": {count: 194, bytes: 253_800_000},
	}
	var total int64
	for _, f := range files {
		c, ok := cases[f.Kind]
		if !ok {
			t.Fatalf("unexpected file %s (%s)", f.Path, f.Kind)
		}
		hdr, err := f.Header()
		if err != nil {
			t.Fatal(err)
		}
		h, err := safetensors.ReadHeader(bytes.NewReader(hdr))
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		var size int64
		for _, in := range h.Tensors {
			size += in.End - in.Begin
		}
		total += size
		if len(h.Tensors) != c.count {
			t.Errorf("%s: %d tensors, want %d", f.Path, len(h.Tensors), c.count)
		}
		if math.Abs(float64(size-c.bytes)) > 0.005*float64(c.bytes) {
			t.Errorf("%s: %d bytes of data, want about %d", f.Path, size, c.bytes)
		}
		for _, r := range c.rows {
			in, ok := h.Lookup(r.name)
			if !ok {
				t.Errorf("%s: no %s", f.Path, r.name)
				continue
			}
			if in.DType != r.dtype || !slices.Equal(in.Shape, r.shape) {
				t.Errorf("%s: %s is %s %v, want %s %v", f.Path, r.name, in.DType, in.Shape, r.dtype, r.shape)
			}
		}
		for _, n := range c.none {
			if _, ok := h.Lookup(n); ok {
				t.Errorf("%s: has %s, which the real file does not", f.Path, n)
			}
		}
	}
	if total < 35_000_000_000 || total > 36_000_000_000 {
		t.Errorf("the full set is %d bytes, want about 35.6 GB", total)
	}
}

// One full-size block, written and read back: every fp8 weight is random,
// finite and, after its scale, N(0, 1/fan_in).
func TestFullBlockValues(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 350 MB")
	}
	var block []safetensors.Tensor
	for _, ts := range wanModel(1, fullWAN) {
		if strings.HasPrefix(ts.Name, "blocks.7.") {
			block = append(block, ts)
		}
	}
	if len(block) != 37 {
		t.Fatalf("block 7 has %d tensors, want 37", len(block))
	}
	path := filepath.Join(t.TempDir(), "block.safetensors")
	if err := safetensors.WriteFile(path, block, nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(8*5120*5120 + 2*5120*13824); st.Size() < want {
		t.Fatalf("file is %d bytes, want more than %d", st.Size(), want)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"blocks.7.self_attn.q", "blocks.7.ffn.0", "blocks.7.ffn.2"} {
		w, err := f.Tensor(name + ".weight")
		if err != nil {
			t.Fatal(err)
		}
		sb, err := f.Tensor(name + ".scale_weight")
		if err != nil {
			t.Fatal(err)
		}
		scale := float64(safetensors.Float(safetensors.F32, sb))
		in, _ := f.Header.Lookup(name + ".weight")
		fanIn := float64(in.Shape[1])
		var sum, sq float64
		counts := map[byte]int{}
		for _, b := range w {
			v := float64(safetensors.Float(safetensors.F8E4M3, []byte{b}))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s: non-finite fp8 code %#x", name, b)
			}
			counts[b]++
			sum += v * scale
			sq += v * scale * v * scale
		}
		n := float64(len(w))
		mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
		want := 1 / math.Sqrt(fanIn)
		if math.Abs(std-want) > 0.03*want || math.Abs(mean) > 0.01*want {
			t.Errorf("%s: mean %.3g std %.4g, want 0 and %.4g", name, mean, std, want)
		}
		// 256 normal quantiles fall on about 96 distinct fp8 values.
		if len(counts) < 90 {
			t.Errorf("%s: only %d distinct fp8 codes", name, len(counts))
		}
	}
}
