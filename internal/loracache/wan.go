package loracache

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// loraSuffixes end the keys that carry a LoRA's weights, in the layouts
// ComfyUI loads (comfy/lora.py): kohya / Kijai (lora_up, lora_down, alpha),
// PEFT / diffusers (lora_A, lora_B), and the full differences (diff, diff_b).
func loraSuffixes() []string {
	return []string{".lora_up.weight", ".lora_down.weight", ".lora_A.weight", ".lora_B.weight",
		".lora.up.weight", ".lora.down.weight", ".alpha", ".diff", ".diff_b"}
}

// wanBlock matches a module of one of WAN's transformer blocks in the key
// styles of its LoRAs: diffusion_model.blocks.0.self_attn.q (Kijai, ComfyUI),
// blocks.0.attn1.to_q (diffusers, after a transformer. prefix) and
// lora_unet_blocks_0_cross_attn_k (musubi-tuner). "blocks" must start a key
// segment, so transformer_blocks (LTX, Flux), double_blocks and
// single_blocks (Flux, HunyuanVideo) and down_blocks (SD) do not match.
var wanBlock = regexp.MustCompile(`(?:^|\.|^lora_unet_)blocks[._]\d+[._](?:self_attn|cross_attn|ffn|attn1|attn2|norm3|modulation)`)

// checkWAN reports why a parsed header is not a WAN LoRA, or "" when its keys
// look like one: at least one LoRA weight, and LoRA weights on WAN's blocks.
// Shapes are not checked (that needs the model): a LoRA for WAN 2.2 5B has
// the same keys as one for A14B and fails when ComfyUI applies it.
func checkWAN(h *safetensors.Header) (msg, hint string) {
	var lora, wan int
	var other []string
	for _, t := range h.Tensors {
		if !hasLoRASuffix(t.Name) {
			continue
		}
		lora++
		if wanBlock.MatchString(t.Name) {
			wan++
		} else if len(other) < 3 {
			other = append(other, t.Name)
		}
	}
	switch {
	case len(h.Tensors) == 0:
		return "the file holds no tensors", "give the URL of a WAN 2.x LoRA (.safetensors)"
	case lora == 0:
		return fmt.Sprintf("the file has no LoRA weights (lora_up/lora_down, lora_A/lora_B or diff keys); its keys start with %s: it looks like a full model or another kind of file",
			examples(h)), "give the URL of a LoRA trained for WAN 2.1/2.2, not of a model"
	case wan == 0:
		return fmt.Sprintf("the file is a LoRA, but not for WAN: none of its %d LoRA keys names a WAN block (blocks.N.self_attn, cross_attn, ffn); e.g. %s",
			lora, strings.Join(other, ", ")), "give the URL of a LoRA trained for WAN 2.1/2.2 (an SDXL, Flux or HunyuanVideo LoRA cannot patch WAN)"
	}
	return "", ""
}

func hasLoRASuffix(name string) bool {
	for _, s := range loraSuffixes() {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// examples names up to three of the header's tensors.
func examples(h *safetensors.Header) string {
	var names []string
	for _, t := range h.Tensors {
		if len(names) == 3 {
			break
		}
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}
