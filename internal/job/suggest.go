package job

import (
	"github.com/wan22-worker/wan22-worker/internal/textdist"
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
		"strength_model": "strength", "format": "output", "quality": "video_quality", "split": "split_step",
		"boundary": "split_step", "resize": "fit", "mode": "fit",
		"last_image": "end_image", "end_image_url": "end_image", "last_frame_image": "end_image", "end": "end_image",
		"guidance_scale_2": "cfg_low", "cfg_2": "cfg_low", "guidance_scale_high": "cfg_high", "guidance_scale_low": "cfg_low",
		"interpolate_output": "interpolate", "interpolator_model": "interpolate", "num_interpolated_frames": "interpolate",
		"interpolation": "interpolate", "aspect": "aspect_ratio", "ratio": "aspect_ratio", "video_write_mode": "video_quality",
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

// editDistance is the optimal string alignment distance (textdist), with
// inputs cut at 64 bytes: keys are short.
func editDistance(a, b string) int { return textdist.Distance(a, b, 64) }

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
