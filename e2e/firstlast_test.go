//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

// endImage is startImage upside down and with its colours inverted: an end
// frame that differs from the start in every pixel.
func endImage(t *testing.T) []byte {
	src, err := png.Decode(bytes.NewReader(startImage(t)))
	if err != nil {
		t.Fatal(err)
	}
	b := src.Bounds()
	img := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := src.At(x, b.Max.Y-1-y).RGBA()
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 255-uint8(r>>8), 255-uint8(g>>8), 255-uint8(bl>>8), 255
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestComfyUIFirstLastFrame runs the end-frame graph (WanFirstLastFrameToVideo)
// on the real ComfyUI with the quality preset and per-expert guidance, then
// `wan22-worker generate` with an end frame and ffmpeg interpolation.
func TestComfyUIFirstLastFrame(t *testing.T) {
	r := startGraphRig(t)
	e, models, srv, c, cfg, profile, caps := r.e, r.models, r.srv, r.c, r.cfg, r.profile, r.caps
	const prompt = "a yellow ball rolls across a blue floor"

	t.Run("graph", func(t *testing.T) {
		in := jobInput(t, prompt, 42, map[string]any{"preset": "quality", "cfg_high": 4.0, "steps": 4, "split_step": 2})
		in["end_image"] = base64.StdEncoding.EncodeToString(endImage(t))
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		j, err := job.Parse(t.Context(), "e2e-flf", raw, job.LimitsFrom(cfg), nil)
		if err != nil {
			t.Fatalf("job.Parse: %v", err)
		}
		b, err := workflow.Build(j, profile, caps)
		if err != nil {
			t.Fatal(err)
		}
		if b.Graph[workflow.NodeImageToVideo].ClassType != workflow.ClassFirstLastFrame {
			t.Fatalf("conditioning node %s", b.Graph[workflow.NodeImageToVideo].ClassType)
		}
		r, _, data := c.runBuilt(ensureTimeout(t, 20*time.Minute), t, srv, b, j)
		checkVideo(t, data)
		reportTimings(t, b, r)
	})

	// The worker, attached to this server: uploads both frames, runs the
	// graph and interpolates 5 frames at 16 fps to 9 at 32 fps.
	t.Run("worker generate with end frame and interpolation", func(t *testing.T) {
		bin := buildWorker(t)
		dir := t.TempDir()
		start, end, out := filepath.Join(dir, "start.png"), filepath.Join(dir, "end.png"), filepath.Join(dir, "out.mp4")
		if err := os.WriteFile(start, startImage(t), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(end, endImage(t), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, _ := generateOutput(t, bin, e.workerEnv(t, models, e.logPath(t, "generate-flf-comfyui.log"), "COMFY_URL="+srv.url), "--image", start, "--end-image", end, "--prompt", prompt,
			"--width", "64", "--height", "64", "--length", "5", "--steps", "4", "--preset", "quality", "--cfg-high", "4",
			"--interpolate", "2", "--seed", "42", "--id", "e2e-flf-generate", "-o", out)
		var r struct {
			Width, Height, Frames int
			FrameRate             float64 `json:"frame_rate"`
			Preset                string  `json:"preset"`
			Options               struct {
				CFGHigh     float64 `json:"cfg_high"`
				DistillLoRA string  `json:"distill_lora"`
			} `json:"options"`
		}
		if err := json.Unmarshal(stdout, &r); err != nil {
			t.Fatalf("generate printed %q: %v", truncate(string(stdout), 300), err)
		}
		video, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got := probe(t, video)
		if got.Frames != 9 || got.Width != 64 || r.Frames != 9 || r.FrameRate != 32 || r.Preset != "quality" ||
			r.Options.CFGHigh != 4 || r.Options.DistillLoRA != "none" {
			t.Errorf("ffprobe %+v; result %+v", got, r)
		}
	})
	// The size from resolution and aspect ratio: 480p 16:9 is 848×480.
	t.Run("worker generate at 480p 16:9", func(t *testing.T) {
		bin := buildWorker(t)
		dir := t.TempDir()
		start, out := filepath.Join(dir, "start.png"), filepath.Join(dir, "out.mp4")
		if err := os.WriteFile(start, startImage(t), 0o644); err != nil {
			t.Fatal(err)
		}
		generateOutput(t, bin, e.workerEnv(t, models, e.logPath(t, "generate-480p-comfyui.log"), "COMFY_URL="+srv.url), "--image", start, "--prompt", prompt,
			"--resolution", "480p", "--aspect-ratio", "16:9", "--length", "5", "--steps", "2",
			"--seed", "42", "--id", "e2e-480p", "-o", out)
		video, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := probe(t, video); got.Width != 848 || got.Height != 480 || got.Frames != 5 {
			t.Errorf("ffprobe %+v, want 848×480, 5 frames", got)
		}
	})
	checkLog(t, srv.log)
}
