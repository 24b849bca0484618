//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
)

// TestWorkerLoRAFromURL runs `wan22-worker generate --lora-url` with the
// worker supervising its own ComfyUI: the fixture LoRA is served from a
// loopback HTTP server, the worker downloads it into loras/url-cache/ of its
// models folder, and ComfyUI (started before the file existed) loads it from
// there in the job's graph, every key landing on the model.
func TestWorkerLoRAFromURL(t *testing.T) {
	e := requireComfyUI(t)
	fixtures := e.fixtures(t)
	bin := buildWorker(t)

	// A models folder of its own (the fixtures stay untouched): links to the
	// fixtures' folders, and a real loras folder for the cache.
	models := t.TempDir()
	for _, d := range []string{"unet", "clip", "vae"} {
		if err := os.Symlink(filepath.Join(fixtures, d), filepath.Join(models, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(models, "loras"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(fixtures, "loras", "wan"), filepath.Join(models, "loras", "wan")); err != nil {
		t.Fatal(err)
	}
	lora, err := os.ReadFile(filepath.Join(fixtures, "loras", config.Default().LoRAHigh))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(lora)
	sum := hex.EncodeToString(h[:])
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(lora))
	}))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	img := filepath.Join(dir, "start.png")
	if err := os.WriteFile(img, startImage(t), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mp4")
	comfyLog := e.logPath(t, "lora-url-comfyui.log")
	stdout, stderr := generateOutput(t, bin, e.workerEnv(t, models, comfyLog, "ALLOW_PRIVATE_LORA_URLS=true", "LOG_LEVEL=debug"), "--image", img, "--prompt", "a yellow ball rolls across a blue floor",
		"--width", "64", "--height", "64", "--length", "5", "--steps", "2", "--seed", "42", "--id", "e2e-lora-url",
		"--lora-url", srv.URL+"/style.safetensors?download=true", "-o", out)

	cached := filepath.Join(models, "loras", "url-cache", sum+".safetensors")
	if got, err := os.ReadFile(cached); err != nil || !bytes.Equal(got, lora) {
		t.Errorf("the cached LoRA %s: %v", cached, err)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests for the LoRA, want 1", hits.Load())
	}
	logs := string(stderr)
	// The job's graph loads url-cache/<sha256>.safetensors; that the job ran
	// at all shows ComfyUI listed it (the worker checks the request LoRAs
	// against ComfyUI's list first, MODEL_MISSING otherwise).
	if !strings.Contains(logs, "downloaded a LoRA") || !strings.Contains(logs, sum) {
		t.Errorf("the worker's log does not record the download of %s:\n%s", sum, tail2(logs, 20))
	}
	if strings.Contains(logs, "download=true") {
		t.Error("the worker logged the LoRA URL's query")
	}
	video, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(stdout, &r); err != nil {
		t.Fatalf("generate printed %q: %v", truncate(string(stdout), 300), err)
	}
	checkResult(t, stdout, r, video, "e2e-lora-url", 42)
	checkLog(t, comfyLog)
}
