package testmodels

import (
	"fmt"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// UMT5-XXL as ComfyUI builds it for CLIPLoader type "wan": the architecture
// comes from ComfyUI's own umt5_config_xxl.json, never from the file, so the
// fixture has every key at full size, stored like Comfy-Org's
// umt5_xxl_fp8_e4m3fn_scaled file (fp8 Linear weights with scale_weight, F16
// embedding, norms and relative-attention biases, an empty scaled_fp8
// marker, the tokenizer in spiece_model).
const (
	t5Model   = 4096
	t5FF      = 10240
	t5Layers  = 24
	t5Heads   = 64
	t5Buckets = 32
	t5Vocab   = 256384
)

// umt5 returns the text encoder's tensors. Only small tensors hold values:
// the norms (1.0, in F16, which makes F16 the encoder's dtype — never F32,
// which would make ComfyUI allocate the whole encoder in F32), the relative
// attention biases (small random), the scales (1.0), the embedding rows of
// the tokenizer's ids (random) and the tokenizer. Every big fp8 matrix and
// the rest of the embedding is zero, written as a hole: the file has its full
// 6.7 GB size but takes a few MB of disk. With zero attention and
// feed-forward weights every layer is the identity, so the conditioning is
// the normalised embedding of the prompt's tokens: finite and
// prompt-dependent.
//
// With full set, every matrix and the whole embedding are random instead
// (fp8Linear: N(0, 1/fan_in) after scaling; embedding N(0, 1)), for timing
// the real encoder's work on a GPU; the tokenizer stays the tiny one.
func umt5(seed uint64, full bool) []safetensors.Tensor {
	f16, f8 := safetensors.F16, safetensors.F8E4M3
	vocab := int64(spmVocabSize())
	shared := safetensors.Tensor{Name: "shared.weight", DType: f16, Shape: []int64{t5Vocab, t5Model},
		Data: safetensors.EncodeFloats(f16, normals(seed, "shared.weight", vocab*t5Model, 1))}
	if full {
		shared.Data, shared.Fill = nil, fillTable(seed, shared.Name, normalTable(safetensors.F16))
	}
	ts := []safetensors.Tensor{
		shared,
		{Name: "encoder.final_layer_norm.weight", DType: f16, Shape: []int64{t5Model}, Data: constant(f16, t5Model, 1)},
		{Name: "scaled_fp8", DType: f8, Shape: []int64{0}},
		{Name: "spiece_model", DType: safetensors.U8, Shape: []int64{int64(len(spmModel()))}, Data: spmModel()},
	}
	linear := func(name string, out, in int64) {
		if full {
			ts = append(ts, fp8Linear(seed, name, out, in)...)
			return
		}
		ts = append(ts, safetensors.Tensor{Name: name + ".weight", DType: f8, Shape: []int64{out, in}}, scalar(name+".scale_weight", 1))
	}
	for i := 0; i < t5Layers; i++ {
		p := fmt.Sprintf("encoder.block.%d.layer.", i)
		for _, x := range []string{"q", "k", "v", "o"} {
			linear(p+"0.SelfAttention."+x, t5Heads*64, t5Model)
		}
		bias := p + "0.SelfAttention.relative_attention_bias.weight"
		ts = append(ts,
			safetensors.Tensor{Name: bias, DType: f16, Shape: []int64{t5Buckets, t5Heads},
				Fill: fillNormal(seed, bias, f16, 0.1)},
			safetensors.Tensor{Name: p + "0.layer_norm.weight", DType: f16, Shape: []int64{t5Model}, Data: constant(f16, t5Model, 1)},
			safetensors.Tensor{Name: p + "1.layer_norm.weight", DType: f16, Shape: []int64{t5Model}, Data: constant(f16, t5Model, 1)})
		linear(p+"1.DenseReluDense.wi_0", t5FF, t5Model)
		linear(p+"1.DenseReluDense.wi_1", t5FF, t5Model)
		linear(p+"1.DenseReluDense.wo", t5Model, t5FF)
	}
	return ts
}
