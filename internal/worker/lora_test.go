package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// loraFile is a tiny LoRA with WAN's key layout.
func loraFile(t *testing.T) []byte {
	t.Helper()
	var ts []safetensors.Tensor
	for _, k := range []string{"lora_down.weight", "lora_up.weight", "alpha"} {
		ts = append(ts, safetensors.Tensor{Name: "diffusion_model.blocks.0.self_attn.q." + k, DType: safetensors.F32,
			Shape: []int64{2}, Data: safetensors.EncodeFloats(safetensors.F32, []float32{1, 2})})
	}
	var b bytes.Buffer
	if err := safetensors.Encode(&b, ts, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHandleLoRAByURL(t *testing.T) {
	needFFmpeg(t)
	data := loraFile(t)
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	var hits atomic.Int64
	lora := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(lora.Close)
	loras := t.TempDir()
	p, fake := start(t, comfytest.Options{}, map[string]string{"LORA_CACHE_DIR": loras, "ALLOW_PRIVATE_LORA_URLS": "true"})
	name := "url-cache/" + sum + ".safetensors"
	models := comfytest.DefaultModels()
	fake.SetModels("loras", append(models["loras"], name)) // ComfyUI lists the cache folder

	for i, id := range []string{"lora-url-1", "lora-url-2"} {
		var rec progress.Recorder
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		_, err := p.Handle(ctx, id, input(t, map[string]any{"width": 64, "height": 64, "length": 5, "seed": 1,
			"loras": []any{map[string]any{"url": lora.URL + "/style.safetensors", "strength": 0.5, "expert": "low"}}}), rec.Add)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var prompt string
		for _, r := range fake.Requests() {
			if r.Path == "/prompt" && r.Method == http.MethodPost && strings.Contains(r.Body, id) {
				prompt = r.Body
			}
		}
		if !strings.Contains(prompt, `"lora_name":"`+name+`"`) {
			t.Errorf("job %d: the graph does not load %s", i, name)
		}
		sawDownload := false
		for _, u := range rec.List() {
			if u.Stage == progress.DownloadingLoRA && u.Bytes == int64(len(data)) {
				sawDownload = true
			}
		}
		if sawDownload != (i == 0) {
			t.Errorf("job %d: downloading_lora with every byte reported: %v, want %v", i, sawDownload, i == 0)
		}
	}
	if got, err := os.ReadFile(filepath.Join(loras, name)); err != nil || !bytes.Equal(got, data) {
		t.Errorf("cached file: %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("%d downloads for two jobs, want 1", hits.Load())
	}

	// A file that is not a LoRA fails before ComfyUI is asked anything.
	_, err := p.Handle(t.Context(), "lora-url-bad", input(t, map[string]any{"seed": 1,
		"loras": []any{map[string]any{"name": "wan/x.safetensors"}, map[string]any{"url": lora.URL + "/x", "sha256": strings.Repeat("0", 64)}}}), nil)
	if e := apperr.As(err); e == nil || e.Code != apperr.LoRAInvalid || e.Field != "options.loras[1].url" {
		t.Errorf("sha mismatch: %v", err)
	}
}
