//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGPUBenchCPU runs scripts/gpu-bench.sh in its CPU mode (--cpu --tiny:
// the tiny fixtures, ComfyUI on the CPU, the worker's generate supervising
// it) and checks the table and gpu-bench.json it writes, so that the script
// that will run on the first GPU cannot rot.
func TestGPUBenchCPU(t *testing.T) {
	e := requireComfyUI(t)
	work := filepath.Join(e.cache, "gpu-bench")
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), filepath.Join("..", "scripts", "gpu-bench.sh"), "--cpu", "--tiny")
	cmd.Env = append(os.Environ(), "COMFYUI_DIR="+e.comfyDir, "COMFY_PYTHON="+e.python, "WORK_DIR="+work, "OUT="+out)
	begin := time.Now()
	stdout, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("gpu-bench.sh: %v\n%s\n%s\nworker log:\n%s", err, stdout, stderr, tail(filepath.Join(work, "logs", "eager.worker.log"), 30))
	}
	t.Logf("gpu-bench.sh --cpu --tiny took %s:\n%s", time.Since(begin).Round(time.Second), stdout)

	raw, err := os.ReadFile(filepath.Join(out, "gpu-bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	type sampling struct {
		Seconds  float64 `json:"seconds"`
		Steps    int     `json:"steps"`
		SPerStep float64 `json:"s_per_step"`
	}
	var doc struct {
		Mode   string `json:"mode"`
		Frames int    `json:"frames"`
		Runs   map[string]struct {
			ComfyUIStart *float64           `json:"comfyui_start"`
			ModelLoad    map[string]float64 `json:"model_load"`
			TextEncode   *float64           `json:"text_encode"`
			VAEEncode    *float64           `json:"vae_encode"`
			SamplingHigh *sampling          `json:"sampling_high"`
			SamplingLow  *sampling          `json:"sampling_low"`
			Decode       *float64           `json:"decode"`
			VideoWrite   *float64           `json:"video_write"`
			Total        float64            `json:"total"`
			Tokens       int                `json:"tokens"`
			FramesVary   *bool              `json:"frames_vary"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if doc.Mode != "tiny-cpu" || doc.Frames != 5 {
		t.Errorf("mode %q, %d frames; want tiny-cpu, 5", doc.Mode, doc.Frames)
	}
	r, ok := doc.Runs["eager"]
	if !ok || len(doc.Runs) != 1 {
		t.Fatalf("runs %v, want only eager (no compiled runs on the CPU)", doc.Runs)
	}
	for name, v := range map[string]*float64{"comfyui_start": r.ComfyUIStart, "text_encode": r.TextEncode,
		"vae_encode": r.VAEEncode, "decode": r.Decode, "video_write": r.VideoWrite} {
		if v == nil || *v <= 0 {
			t.Errorf("%s = %v, want a positive time", name, v)
		}
	}
	for _, node := range []string{"unet_high", "unet_low", "lora_high_0", "lora_low_0", "text_encoder", "vae"} {
		if _, ok := r.ModelLoad[node]; !ok {
			t.Errorf("model_load has no %s: %v", node, r.ModelLoad)
		}
	}
	for name, s := range map[string]*sampling{"high": r.SamplingHigh, "low": r.SamplingLow} {
		if s == nil || s.Steps != 1 || s.Seconds <= 0 || s.SPerStep <= 0 {
			t.Errorf("sampling %s = %+v, want 1 step with its time", name, s)
		}
	}
	if r.Total <= 0 || r.Tokens != 2*4*4 {
		t.Errorf("total %v s, %d tokens; want > 0 and 32 (2 latent frames of 4×4 patches)", r.Total, r.Tokens)
	}
	if r.FramesVary == nil || !*r.FramesVary {
		t.Errorf("frames_vary = %v, want true (the decoded video is not one flat picture)", r.FramesVary)
	}
	for _, row := range []string{"text encode", "sampling high", "VAE decode", "total job"} {
		if !strings.Contains(string(stdout), row) {
			t.Errorf("the table has no %q row", row)
		}
	}
}
