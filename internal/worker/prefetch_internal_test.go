package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/startup"
)

// TestPrefetchRecordsItsRead: with MODELS_PREFETCH the profile's files found are read in the background and
// the read lands in the timeline; without it, or attached to COMFY_URL, nothing is read.
func TestPrefetchRecordsItsRead(t *testing.T) {
	dir := t.TempDir()
	for rel, n := range map[string]int{"vae/wan_2.1_vae.safetensors": 3 << 20, "diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors": 1 << 20} {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"on", map[string]string{}, true},
		{"off", map[string]string{"MODELS_PREFETCH": "false"}, false},
		{"attached", map[string]string{"COMFY_URL": "http://127.0.0.1:1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"MODELS_DIRS": dir, "MODELS_HF_CACHE": "", "COMFYUI_DIR": t.TempDir(), "OUTPUT_DIR": t.TempDir()}
			for k, v := range tc.env {
				vars[k] = v
			}
			cfg, err := config.Load(nil, func(k string) string { return vars[k] })
			if err != nil {
				t.Fatal(err)
			}
			p, err := New(cfg, Options{}, logging.Discard())
			if err != nil {
				t.Fatal(err)
			}
			p.startPrefetch(t.Context())
			var got startup.Step
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if s, ok := p.StartupTimeline().Find(startup.PrefetchDone); ok {
					got = s
					break
				}
				if !tc.want {
					time.Sleep(50 * time.Millisecond)
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if tc.want && (got.Bytes != 4<<20 || got.Note != "") {
				t.Errorf("prefetch step %+v, want 4 MiB read", got)
			}
			if !tc.want && got.Name != "" {
				t.Errorf("prefetched: %+v", got)
			}
		})
	}
}
