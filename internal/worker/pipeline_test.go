package worker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/mp4/mp4test"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/startup"
	"github.com/wan22-worker/wan22-worker/internal/worker"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

// testImage is the PNG embedded in the repository's test_input.json.
func testImage(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "test_input.json"))
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Input struct {
			Image string `json:"image"`
		} `json:"input"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	return in.Input.Image
}

func needFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/setup-test-deps.sh installs it)")
	}
}

// start returns a started pipeline attached to a fake ComfyUI.
func start(t testing.TB, opts comfytest.Options, env map[string]string) (*worker.Pipeline, *comfytest.Server) {
	t.Helper()
	fake := comfytest.New(opts)
	t.Cleanup(fake.Close)
	vars := map[string]string{"COMFY_URL": fake.URL, "OUTPUT_DIR": t.TempDir(), "COMFY_START_TIMEOUT": "10s"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(nil, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	p, err := worker.New(cfg, worker.Options{}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return p, fake
}

func input(t testing.TB, options map[string]any) json.RawMessage {
	t.Helper()
	in := map[string]any{"prompt": "a cat turning its head", "image": testImage(t), "options": options}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandleInline(t *testing.T) {
	needFFmpeg(t)
	p, fake := start(t, comfytest.Options{}, nil)
	var rec progress.Recorder
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	res, err := p.Handle(ctx, "job-inline-1", input(t, map[string]any{
		"width": 256, "height": 160, "length": 9, "frame_rate": 16, "seed": 42, "last_frame": true,
	}), rec.Add)
	if err != nil {
		t.Fatal(err)
	}
	// Metadata comes from the file the fake made with ffmpeg.
	if res.Width != 256 || res.Height != 160 || res.Frames != 9 || res.FrameRate != 16 {
		t.Errorf("metadata = %dx%d %d frames @%v", res.Width, res.Height, res.Frames, res.FrameRate)
	}
	if res.Seed != 42 || res.PromptID != "job-inline-1" || res.FilesCount != 1 || res.MimeType != "video/mp4" {
		t.Errorf("result = %+v", res)
	}
	if !strings.HasSuffix(res.Filename, ".mp4") {
		t.Errorf("filename = %q", res.Filename)
	}
	video, err := base64.StdEncoding.DecodeString(string(res.Video))
	if err != nil || int64(len(video)) != res.SizeBytes {
		t.Fatalf("inline video: %d bytes, size_bytes %d, err %v", len(video), res.SizeBytes, err)
	}
	path := filepath.Join(t.TempDir(), "v.mp4")
	if err := os.WriteFile(path, video, 0o644); err != nil {
		t.Fatal(err)
	}
	got := mp4test.FFprobe(t, path)
	if got.Codec != "h264" || got.Frames != 9 || got.Width != 256 {
		t.Errorf("ffprobe = %+v", got)
	}
	pix, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=pix_fmt", "-of", "csv=p=0", path).Output()
	if err != nil || strings.TrimSpace(string(pix)) != "yuv420p" {
		t.Errorf("pix_fmt = %q (%v)", pix, err)
	}
	if res.LastFrame == "" {
		t.Error("last_frame asked but missing")
	}
	if res.Timings.Total <= 0 || res.Timings.Total < res.Timings.Inference {
		t.Errorf("timings = %+v", res.Timings)
	}
	want := []progress.Stage{progress.Queued, progress.Uploading}
	st := rec.Stages()
	if len(st) < 4 || st[0] != want[0] || st[1] != want[1] || st[len(st)-1] != progress.Delivering {
		t.Errorf("stages = %v", st)
	}
	var sawLow bool
	for _, s := range st {
		sawLow = sawLow || s == progress.SamplingLow
	}
	if !sawLow {
		t.Errorf("no sampling_low stage in %v", st)
	}
	// Stages only move forward: none comes back once left.
	seen := map[progress.Stage]bool{}
	for _, s := range st {
		if seen[s] {
			t.Errorf("stage %s comes back in %v", s, st)
		}
		seen[s] = true
	}
	// The job cleaned up after itself: its history entry was deleted.
	var deleted bool
	for _, r := range fake.Requests() {
		deleted = deleted || (r.Method == "POST" && r.Path == "/history" && strings.Contains(r.Body, "job-inline-1"))
	}
	if !deleted {
		t.Error("history entry not deleted after the job")
	}
}

func TestHandleVolume(t *testing.T) {
	needFFmpeg(t)
	p, _ := start(t, comfytest.Options{}, nil)
	res, err := p.Handle(t.Context(), "job/vol 2", input(t, map[string]any{"width": 128, "height": 128, "length": 5, "output": "volume"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Video) != 0 || res.VideoPath == "" {
		t.Fatalf("volume result = %+v", res)
	}
	fi, err := os.Stat(res.VideoPath)
	if err != nil || fi.Size() != res.SizeBytes {
		t.Fatalf("file %s: %v (%d vs %d)", res.VideoPath, err, fi.Size(), res.SizeBytes)
	}
}

func TestHandleErrors(t *testing.T) {
	needFFmpeg(t)
	tests := []struct {
		name    string
		opts    comfytest.Options
		options map[string]any
		prompt  string
		code    apperr.Code
		field   string
		queued  bool // whether the prompt reached ComfyUI
	}{
		{name: "invalid input never reaches ComfyUI", options: map[string]any{"length": 80}, code: apperr.InvalidInput, field: "options.length"},
		{name: "unknown key", options: map[string]any{"lenght": 81}, code: apperr.InvalidInput},
		{name: "missing request LoRA", options: map[string]any{"loras": []any{map[string]any{"name": "nope.safetensors"}}}, code: apperr.ModelMissing, field: "options.loras"},
		{name: "out of memory", opts: comfytest.Options{Fault: comfytest.Fault{Kind: comfytest.FaultOOM, At: comfytest.Point{Class: "KSamplerAdvanced", Step: 1}}},
			options: map[string]any{"width": 64, "height": 64, "length": 5}, code: apperr.OutOfMemory, queued: true},
		{name: "execution error", opts: comfytest.Options{Fault: comfytest.Fault{Kind: comfytest.FaultError, At: comfytest.Point{Class: "VAEDecode"}}},
			options: map[string]any{"width": 64, "height": 64, "length": 5}, code: apperr.ExecutionFailed, queued: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, fake := start(t, tc.opts, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			_, err := p.Handle(ctx, "job-err", input(t, tc.options), nil)
			e := apperr.As(err)
			if e == nil {
				t.Fatalf("want %s, got %v", tc.code, err)
			}
			if e.Code != tc.code {
				t.Fatalf("code = %s (%v), want %s", e.Code, err, tc.code)
			}
			if e.Hint == "" {
				t.Errorf("%s without a hint", e.Code)
			}
			if tc.field != "" && e.Field != tc.field {
				t.Errorf("field = %q, want %q", e.Field, tc.field)
			}
			var queued bool
			for _, r := range fake.Requests() {
				queued = queued || (r.Method == "POST" && r.Path == "/prompt")
			}
			if queued != tc.queued {
				t.Errorf("prompt queued = %v, want %v", queued, tc.queued)
			}
		})
	}
}

// TestDamagedImageAtSize: an image at exactly the video size, which would be
// uploaded as it came, is still checked first: a damaged one fails
// IMAGE_INVALID on "image" and never reaches ComfyUI (DESIGN.md §10).
func TestDamagedImageAtSize(t *testing.T) {
	needFFmpeg(t)
	img := image.NewRGBA(image.Rect(0, 0, 832, 832))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*7 + i/3331)
		if i%4 == 3 {
			img.Pix[i] = 0xff
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	damaged := buf.Bytes()
	iend := bytes.LastIndex(damaged, []byte("IEND"))
	for i := iend - 400; i < iend-300; i++ { // near the end of the pixel data
		damaged[i] ^= 0x5a
	}
	in, err := json.Marshal(map[string]any{"prompt": "a cat", "image": base64.StdEncoding.EncodeToString(damaged),
		"options": map[string]any{"width": 832, "height": 832, "length": 5}})
	if err != nil {
		t.Fatal(err)
	}
	p, fake := start(t, comfytest.Options{}, nil)
	res, err := p.Handle(t.Context(), "job-damaged", in, nil)
	e := apperr.As(err)
	if res != nil || e == nil || e.Code != apperr.ImageInvalid || e.Field != "image" || e.Hint == "" {
		t.Fatalf("result %v, error %v: want IMAGE_INVALID on image, with a hint", res, err)
	}
	for _, r := range fake.Requests() {
		if r.Path == "/upload/image" || r.Path == "/prompt" {
			t.Errorf("the damaged image reached ComfyUI: %s %s", r.Method, r.Path)
		}
	}
}

func TestMissingProfileModel(t *testing.T) {
	models := comfytest.DefaultModels()
	delete(models, "vae")
	delete(models, "text_encoders")
	p, _ := start(t, comfytest.Options{Models: models}, nil)
	_, err := p.Handle(t.Context(), "job-m", input(t, nil), nil)
	// What the caller sees: one error naming every missing file.
	e := apperr.From(err)
	if e.Code != apperr.ModelMissing || !strings.Contains(e.Message, "wan_2.1_vae.safetensors") ||
		!strings.Contains(e.Message, "umt5_xxl_fp8_e4m3fn_scaled.safetensors") {
		t.Fatalf("want MODEL_MISSING naming the VAE and the text encoder, got %v", e)
	}
}

func TestCancelAndTimeout(t *testing.T) {
	needFFmpeg(t)
	for _, tc := range []struct {
		name string
		code apperr.Code
	}{{"cancel", apperr.Cancelled}, {"timeout", apperr.Timeout}} {
		t.Run(tc.name, func(t *testing.T) {
			p, fake := start(t, comfytest.Options{StepDelay: 2 * time.Second}, nil)
			ctx, cancel := context.WithCancel(t.Context())
			if tc.code == apperr.Timeout {
				ctx, cancel = context.WithTimeout(t.Context(), 1500*time.Millisecond)
			}
			defer cancel()
			go func() {
				if tc.code == apperr.Cancelled {
					time.Sleep(1500 * time.Millisecond)
					cancel()
				}
			}()
			t0 := time.Now()
			_, err := p.Handle(ctx, "job-c", input(t, map[string]any{"width": 64, "height": 64, "length": 5}), nil)
			if c := apperr.CodeOf(err); c != tc.code {
				t.Fatalf("code = %s (%v), want %s", c, err, tc.code)
			}
			if d := time.Since(t0); d > 15*time.Second {
				t.Errorf("took %v to give up", d)
			}
			var interrupted bool
			for _, r := range fake.Requests() {
				interrupted = interrupted || r.Path == "/interrupt"
			}
			if !interrupted {
				t.Error("ComfyUI was not interrupted")
			}
		})
	}
}

func TestComfyGone(t *testing.T) {
	needFFmpeg(t)
	p, fake := start(t, comfytest.Options{StepDelay: time.Second}, nil)
	go func() {
		time.Sleep(1200 * time.Millisecond)
		fake.Crash()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := p.Handle(ctx, "job-gone", input(t, map[string]any{"width": 64, "height": 64, "length": 5}), nil)
	if c := apperr.CodeOf(err); c != apperr.ComfyUnavailable {
		t.Fatalf("code = %s (%v), want COMFY_UNAVAILABLE for an attached server that went away", c, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("waited for the deadline instead of noticing")
	}
}

func TestWarmupLoadsModelsBeforeFirstJob(t *testing.T) {
	needFFmpeg(t)
	_, fake := start(t, comfytest.Options{}, map[string]string{"WARMUP": "on"})
	var prompts []string
	for _, r := range fake.Requests() {
		if r.Method == "POST" && r.Path == "/prompt" {
			prompts = append(prompts, r.Body)
		}
	}
	if len(prompts) != 1 {
		t.Fatalf("want exactly the warm-up prompt after Start, got %d prompts", len(prompts))
	}
	var body struct {
		PromptID string                     `json:"prompt_id"`
		Prompt   map[string]json.RawMessage `json:"prompt"`
	}
	if err := json.Unmarshal([]byte(prompts[0]), &body); err != nil {
		t.Fatal(err)
	}
	// The warm-up graph uses the production loaders, so ComfyUI's cache
	// keeps the models for the first job.
	for _, node := range []string{workflow.NodeUNetHigh, workflow.NodeUNetLow, workflow.NodeTextEncoder, workflow.NodeVAE} {
		if _, ok := body.Prompt[node]; !ok {
			t.Errorf("warm-up graph lacks %s: %v", node, keys(body.Prompt))
		}
	}
	if body.PromptID == "" {
		t.Error("warm-up prompt without an id")
	}
	// Its history is cleaned up.
	if fake.HasHistory(body.PromptID) {
		t.Error("warm-up history left behind")
	}
}

func TestNoWarmupByDefaultOffRunPod(t *testing.T) {
	_, fake := start(t, comfytest.Options{}, nil)
	for _, r := range fake.Requests() {
		if r.Method == "POST" && r.Path == "/prompt" {
			t.Fatal("a prompt was queued at start with WARMUP=auto off RunPod")
		}
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestProgressNeverGoesBack(t *testing.T) {
	needFFmpeg(t)
	p, _ := start(t, comfytest.Options{StepDelay: 5 * time.Millisecond}, nil)
	var rec progress.Recorder
	if _, err := p.Handle(t.Context(), "job-pct", input(t, map[string]any{"width": 64, "height": 64, "length": 5}), rec.Add); err != nil {
		t.Fatal(err)
	}
	ps := rec.List()
	last := -1
	for _, u := range ps {
		if u.Percent < last {
			t.Fatalf("percent went back from %d to %d (%s): %v", last, u.Percent, u.Stage, ps)
		}
		last = u.Percent
	}
	if last != 100 {
		t.Errorf("last percent %d, want 100", last)
	}
}

// TestHandleEndFrameInterpolatedQuality runs issue 12's job on the fake
// ComfyUI: an end frame, a size by resolution and aspect ratio, the quality
// preset with cfg_high, and ffmpeg interpolation after generation.
func TestHandleEndFrameInterpolatedQuality(t *testing.T) {
	needFFmpeg(t)
	p, fake := start(t, comfytest.Options{}, nil)
	var rec progress.Recorder
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	in := map[string]any{"prompt": "a door opening", "image": testImage(t), "end_image": testImage(t),
		"options": map[string]any{"resolution": "480p", "aspect_ratio": "16:9", "length": 9, "seed": 7,
			"preset": "quality", "cfg_high": 4, "interpolate": map[string]any{"factor": 2}}}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Handle(ctx, "job-flf-1", body, rec.Add)
	if err != nil {
		t.Fatal(err)
	}
	// 9 frames at 16 fps from the model, 17 at 32 fps delivered, 848×480.
	if res.Width != 848 || res.Height != 480 || res.Frames != 17 || res.FrameRate != 32 {
		t.Errorf("metadata = %dx%d %d frames @%v", res.Width, res.Height, res.Frames, res.FrameRate)
	}
	video, err := base64.StdEncoding.DecodeString(string(res.Video))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v.mp4")
	if err := os.WriteFile(path, video, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mp4test.FFprobe(t, path); got.Frames != 17 || got.FrameRate != 32 || got.Width != 848 {
		t.Errorf("ffprobe = %+v", got)
	}
	o := res.Options
	if res.Preset != "quality" || o == nil || o.Steps != 20 || o.CFGHigh != 4 || o.CFGLow != 3.5 ||
		o.DistillLoRA != "none" || o.Resolution != "480p" || o.Interpolate == nil || o.FrameRate != 32 {
		t.Errorf("echoed preset %q options %+v", res.Preset, o)
	}
	var graph string
	uploads := 0
	for _, r := range fake.Requests() {
		if r.Method == "POST" && r.Path == "/prompt" {
			graph = r.Body
		}
		if r.Method == "POST" && r.Path == "/upload/image" {
			uploads++
		}
	}
	for _, want := range []string{`"WanFirstLastFrameToVideo"`, `"wan22_job-flf-1_end.png"`, `"end_image"`} {
		if !strings.Contains(graph, want) {
			t.Errorf("the submitted graph lacks %s", want)
		}
	}
	if strings.Contains(graph, "lightx2v") {
		t.Error("the quality preset's graph has the step-distill LoRA")
	}
	if uploads != 2 {
		t.Errorf("%d uploads, want the image and the end frame", uploads)
	}
	st := rec.Stages()
	if len(st) < 3 || st[len(st)-2] != progress.Interpolating || st[len(st)-1] != progress.Delivering {
		t.Errorf("stages = %v, want interpolating then delivering at the end", st)
	}
	last := 0
	for _, u := range rec.List() {
		if u.Percent < last {
			t.Errorf("progress went back: %v", rec.List())
			break
		}
		last = u.Percent
	}
}

// TestStartupTimeline: the warm-up records each loader's model file (where the worker finds it, its bytes
// and rate), and the first job completes the timeline, in time order.
func TestStartupTimeline(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	sizes := map[string]int{
		"diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors": 3000,
		"diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors":  2000,
		"text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors":              1500,
		"vae/wan_2.1_vae.safetensors":                                       1000,
	}
	for rel, n := range sizes {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := start(t, comfytest.Options{NodeDelay: 5 * time.Millisecond}, map[string]string{"WARMUP": "on", "MODELS_DIRS": dir, "MODELS_HF_CACHE": ""})
	if r := p.StartupTimeline(); r.Complete {
		t.Error("complete before the first job")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := p.Handle(ctx, "job-1", input(t, map[string]any{"width": 64, "height": 64, "length": 5}), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Handle(ctx, "job-2", input(t, map[string]any{"width": 64, "height": 64, "length": 5}), nil); err != nil {
		t.Fatal(err)
	}
	r := p.StartupTimeline()
	var names []string
	loaded := map[string]startup.Step{}
	last := int64(-1)
	for _, s := range r.Steps {
		names = append(names, s.Name)
		if s.AtMS < last {
			t.Errorf("%s at %d ms, before the step before it (%d ms)", s.Name, s.AtMS, last)
		}
		last = s.AtMS
		if s.Name == startup.ModelLoaded {
			loaded[s.File] = s
		}
	}
	want := []string{startup.ProcessStart, startup.ComfyReady, startup.WarmupStarted}
	if len(names) < 4 || !slices.Equal(names[:3], want) || names[len(names)-2] != startup.WarmupDone || names[len(names)-1] != startup.FirstJobTaken || !r.Complete {
		t.Errorf("steps %v (complete %v)", names, r.Complete)
	}
	for file, n := range sizes {
		s, ok := loaded[file]
		if !ok {
			t.Errorf("no model_loaded step for %s: %v", file, names)
			continue
		}
		if s.Bytes != int64(n) || s.Source != "local" || s.TookMS < 1 || s.MBPerS <= 0 || !strings.HasPrefix(s.Path, dir) {
			t.Errorf("%s: %+v", file, s)
		}
	}
}
