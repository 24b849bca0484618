package comfy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/comfy"
	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// fake starts a fake ComfyUI for one test.
func fake(t testing.TB, opts comfytest.Options) *comfytest.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s := comfytest.New(opts)
	t.Cleanup(s.Close)
	return s
}

func testLogger(t testing.TB) *slog.Logger {
	if tt, ok := t.(*testing.T); ok && testing.Verbose() {
		return slog.New(slog.NewTextHandler(tt.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// client returns a client with timings short enough for tests.
func client(t testing.TB, url string) *comfy.Client {
	c := comfy.New(url, nil, testLogger(t))
	c.Tuning = comfy.Tuning{
		RequestTimeout: 5 * time.Second,
		DialTimeout:    2 * time.Second,
		PingInterval:   200 * time.Millisecond,
		PingTimeout:    2 * time.Second,
		SilenceCheck:   300 * time.Millisecond,
		ReconnectMin:   20 * time.Millisecond,
		ReconnectMax:   100 * time.Millisecond,
		UnreachableFor: 500 * time.Millisecond,
		HistoryWait:    2 * time.Second,
		ErrorGrace:     500 * time.Millisecond,
		CancelTimeout:  2 * time.Second,
		InterruptWait:  2 * time.Second,
	}
	return c
}

// testCtx bounds every test run: no fault mode may hang.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// graphSpec is the test graph's parameters.
type graphSpec struct {
	image         string
	width, height int
	length        int
	steps, split  int
	fps           float64
	crf           int
	core          bool // CreateVideo + SaveVideo instead of VHS_VideoCombine
	unet          string
	sampler       string
	prefix        string
}

func defaultSpec(image string) graphSpec {
	return graphSpec{image: image, width: 64, height: 64, length: 9, steps: 4, split: 2, fps: 16, crf: 19,
		sampler: "euler", prefix: "wan22/test/wan2_2"}
}

func node(class string, inputs map[string]any) map[string]any {
	return map[string]any{"class_type": class, "inputs": inputs}
}

func link(id string, slot int) []any { return []any{id, slot} }

// wanGraph is the WAN 2.2 I2V graph of the reference (wan22-workflow.md
// §1.15), by hand, with the default model profile.
func wanGraph(s graphSpec) (map[string]any, map[string]progress.Stage, string) {
	c := config.Default()
	unet := c.UNetHigh
	if s.unet != "" {
		unet = s.unet
	}
	g := map[string]any{
		"1":  node("UNETLoader", map[string]any{"unet_name": unet, "weight_dtype": "default"}),
		"2":  node("UNETLoader", map[string]any{"unet_name": c.UNetLow, "weight_dtype": "default"}),
		"3":  node("LoraLoaderModelOnly", map[string]any{"model": link("1", 0), "lora_name": c.LoRAHigh, "strength_model": 1.0}),
		"4":  node("LoraLoaderModelOnly", map[string]any{"model": link("2", 0), "lora_name": c.LoRALow, "strength_model": 1.0}),
		"5":  node("ModelSamplingSD3", map[string]any{"model": link("3", 0), "shift": 8.0}),
		"6":  node("ModelSamplingSD3", map[string]any{"model": link("4", 0), "shift": 8.0}),
		"7":  node("CLIPLoader", map[string]any{"clip_name": c.TextEncoder, "type": "wan", "device": "default"}),
		"8":  node("CLIPTextEncode", map[string]any{"clip": link("7", 0), "text": "a cat walks"}),
		"9":  node("CLIPTextEncode", map[string]any{"clip": link("7", 0), "text": "blurry"}),
		"10": node("VAELoader", map[string]any{"vae_name": c.VAE}),
		"11": node("LoadImage", map[string]any{"image": s.image}),
		"12": node("WanImageToVideo", map[string]any{"positive": link("8", 0), "negative": link("9", 0), "vae": link("10", 0),
			"start_image": link("11", 0), "width": s.width, "height": s.height, "length": s.length, "batch_size": 1}),
		"13": node("KSamplerAdvanced", map[string]any{"model": link("5", 0), "positive": link("12", 0), "negative": link("12", 1),
			"latent_image": link("12", 2), "add_noise": "enable", "noise_seed": 42, "steps": s.steps, "cfg": 1.0,
			"sampler_name": s.sampler, "scheduler": "simple", "start_at_step": 0, "end_at_step": s.split,
			"return_with_leftover_noise": "enable"}),
		"14": node("KSamplerAdvanced", map[string]any{"model": link("6", 0), "positive": link("12", 0), "negative": link("12", 1),
			"latent_image": link("13", 0), "add_noise": "disable", "noise_seed": 42, "steps": s.steps, "cfg": 1.0,
			"sampler_name": s.sampler, "scheduler": "simple", "start_at_step": s.split, "end_at_step": 10000,
			"return_with_leftover_noise": "disable"}),
		"15": node("VAEDecode", map[string]any{"samples": link("14", 0), "vae": link("10", 0)}),
	}
	stages := map[string]progress.Stage{}
	for _, id := range []string{"1", "2", "3", "4", "5", "6", "7", "10", "11"} {
		stages[id] = progress.LoadingModels
	}
	for _, id := range []string{"8", "9", "12"} {
		stages[id] = progress.EncodingPrompt
	}
	stages["13"], stages["14"], stages["15"] = progress.SamplingHigh, progress.SamplingLow, progress.Decoding
	out := "16"
	if s.core {
		g["16"] = node("CreateVideo", map[string]any{"images": link("15", 0), "fps": s.fps})
		g["17"] = node("SaveVideo", map[string]any{"video": link("16", 0), "filename_prefix": s.prefix, "format": "mp4", "codec": "h264"})
		stages["16"], stages["17"] = progress.EncodingVideo, progress.EncodingVideo
		out = "17"
	} else {
		g["16"] = node("VHS_VideoCombine", map[string]any{"images": link("15", 0), "frame_rate": s.fps, "loop_count": 0,
			"filename_prefix": s.prefix, "format": "video/h264-mp4", "pix_fmt": "yuv420p", "crf": s.crf,
			"save_metadata": false, "trim_to_audio": false, "pingpong": false, "save_output": true})
		stages["16"] = progress.EncodingVideo
	}
	return g, stages, out
}

// request uploads the image and returns a RunRequest for the test graph.
func request(t *testing.T, c *comfy.Client, id string, s graphSpec, log *progress.Recorder) comfy.RunRequest {
	t.Helper()
	name, err := c.Upload(t.Context(), id+".png", bytes.NewReader(comfytest.GradientPNG(s.width, s.height)))
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if s.image == "" {
		s.image = name
	}
	g, stages, out := wanGraph(s)
	req := comfy.RunRequest{PromptID: id, Graph: g, Stages: stages, OutputNode: out, Steps: s.steps, Split: s.split}
	if log != nil {
		req.OnProgress = log.Add
	}
	return req
}

func requireCode(t *testing.T, err error, code apperr.Code) *apperr.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	e := apperr.As(err)
	if e == nil {
		t.Fatalf("error %v (%T) is not an *apperr.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("error code %s, want %s: %v", e.Code, code, err)
	}
	if e.Hint == "" && code != apperr.Cancelled {
		t.Errorf("error %v has no hint", err)
	}
	return e
}

// videoInfo is what ffprobe says of a video.
type videoInfo struct {
	Codec     string `json:"codec_name"`
	PixFmt    string `json:"pix_fmt"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Frames    string `json:"nb_read_frames"`
	FrameRate string `json:"r_frame_rate"`
}

func probe(t *testing.T, path string) videoInfo {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,pix_fmt,width,height,nb_read_frames,r_frame_rate", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var r struct {
		Streams []videoInfo `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	return r.Streams[0]
}

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skip(b + " not installed (CI installs it)")
		}
	}
}

// download streams an output to a file and checks the size against
// Content-Length.
func download(t *testing.T, c *comfy.Client, f comfy.OutputFile) string {
	t.Helper()
	rc, size, err := c.Open(t.Context(), f)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	p := filepath.Join(t.TempDir(), f.Filename)
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(w, rc)
	w.Close()
	if err != nil {
		t.Fatalf("reading /view: %v", err)
	}
	if n != size {
		t.Errorf("read %d bytes, Content-Length %d", n, size)
	}
	return p
}

func fps(s string) float64 {
	a, b, ok := strings.Cut(s, "/")
	x, _ := strconv.ParseFloat(a, 64)
	if !ok {
		return x
	}
	y, _ := strconv.ParseFloat(b, 64)
	return x / y
}

// requests returns the server's requests of one method and path.
func requests(s *comfytest.Server, method, path string) []comfytest.Request {
	var out []comfytest.Request
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }
