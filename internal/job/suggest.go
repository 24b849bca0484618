package job

import (
	"strconv"
	"strings"
)

// aliases maps names other WAN workers and APIs use to the contract's keys,
// so that a job written for another API gets a precise hint.
func aliases() map[string]string {
	return map[string]string{
		"fps": "frame_rate", "framerate": "frame_rate", "frames": "length", "num_frames": "length",
		"frame_count": "length", "duration": "length",
		"negative": "negative_prompt", "neg_prompt": "negative_prompt", "negativeprompt": "negative_prompt",
		"cfg_scale": "cfg", "guidance_scale": "cfg", "guidance": "cfg",
		"num_inference_steps": "steps", "num_steps": "steps", "sampler_name": "sampler",
		"noise_seed": "seed", "image_url": "image", "image_base64": "image", "image_path": "image",
		"input_image": "image", "lora": "loras", "lora_name": "name", "weight": "strength",
		"strength_model": "strength", "format": "output", "quality": "crf", "split": "split_step",
		"boundary": "split_step", "resize": "fit", "mode": "fit",
	}
}

// suggest returns the valid key a mistyped key most likely meant, quoted, or
// "" when none is close. It knows the keys of the other levels of the input,
// so that "width" at the top level suggests options.width.
func suggest(key string, valid []string, parent string) string {
	k := strings.ToLower(strings.TrimSpace(key))
	k = strings.ReplaceAll(strings.ReplaceAll(k, "-", "_"), " ", "_")
	for _, v := range valid {
		if k == v {
			return strconv.Quote(v) // differs only in case or separators
		}
	}
	if a, ok := aliases()[k]; ok && contains(valid, a) {
		return strconv.Quote(a)
	}
	// A key at the wrong level.
	switch parent {
	case "", "input":
		if contains(optionKeys(), k) {
			return strconv.Quote("options") + " (put " + strconv.Quote(k) + " inside options)"
		}
		if a, ok := aliases()[k]; ok && contains(optionKeys(), a) {
			return strconv.Quote(a) + " inside options"
		}
	case "options":
		if contains(inputKeys(), k) {
			return strconv.Quote(k) + " at the top level of the input, not inside options"
		}
	}
	best, bestD := "", 3
	for _, v := range valid {
		d := editDistance(k, v)
		limit := 2
		if len(v) <= 4 {
			limit = 1
		}
		if d <= limit && d < bestD {
			best, bestD = v, d
		}
	}
	if best != "" {
		return strconv.Quote(best)
	}
	return ""
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours cost 1 each.
// Keys are short; longer inputs are cut so the work stays bounded.
func editDistance(a, b string) int {
	const maxLen = 64
	if len(a) > maxLen {
		a = a[:maxLen]
	}
	if len(b) > maxLen {
		b = b[:maxLen]
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// closest returns the entry of list nearest to s (for enum values), or "".
func closest(s string, list []string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	best, bestD := "", 3
	for _, v := range list {
		if s == v {
			return v
		}
		d := editDistance(s, v)
		if d < bestD {
			best, bestD = v, d
		}
	}
	return best
}
