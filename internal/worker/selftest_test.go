package worker_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
	"github.com/wan22-worker/wan22-worker/internal/models"
	"github.com/wan22-worker/wan22-worker/internal/safetensors"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

func TestSelfTestModelsOff(t *testing.T) {
	cfg := config.Default()
	got, remove, err := worker.SelfTestModels(t.Context(), cfg, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || got != cfg {
		t.Fatalf("SELF_TEST off: cfg %p (want %p), err %v", got, cfg, err)
	}
	remove()
}

func TestSelfTestModelsAttached(t *testing.T) {
	cfg := config.Default()
	cfg.SelfTest, cfg.ComfyURL = true, "http://127.0.0.1:8188"
	tmp := t.TempDir()
	_, _, err := worker.SelfTestModels(t.Context(), cfg, tmp, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if apperr.CodeOf(err) != apperr.InvalidInput {
		t.Fatalf("err = %v, want INVALID_INPUT", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("wrote %d entries for a self-test that cannot run", len(entries))
	}
}

// TestSelfTestModels checks that every model file of the profile is written
// under the returned MODELS_DIRS, where the worker looks for it, as a
// readable safetensors file, and that remove deletes them.
func TestSelfTestModels(t *testing.T) {
	cfg := config.Default()
	cfg.SelfTest = true
	cfg.ModelsDirs = []string{"/runpod-volume/models"}
	tmp := t.TempDir()
	got, remove, err := worker.SelfTestModels(t.Context(), cfg, tmp, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.ModelsDirs, []string{"/runpod-volume/models"}) {
		t.Errorf("the given configuration changed: MODELS_DIRS = %v", cfg.ModelsDirs)
	}
	if len(got.ModelsDirs) != 1 || filepath.Dir(got.ModelsDirs[0]) != tmp {
		t.Fatalf("MODELS_DIRS = %v, want one folder under %s", got.ModelsDirs, tmp)
	}
	paths := modelpaths.Resolve(got.ModelsDirs, nil)
	var items []models.Item
	for _, w := range models.Wanted(got) {
		items = append(items, models.Item{Want: w})
	}
	if len(items) < 4 {
		t.Fatalf("the profile wants %d files", len(items))
	}
	for _, st := range models.Inspect(paths, items, nil) {
		if st.Path == "" {
			t.Errorf("%s: not found under %v", st.Name, got.ModelsDirs)
			continue
		}
		f, err := os.Open(st.Path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := safetensors.ReadHeader(f); err != nil {
			t.Errorf("%s: %v", st.Path, err)
		}
		f.Close()
	}
	remove()
	if _, err := os.Stat(got.ModelsDirs[0]); !os.IsNotExist(err) {
		t.Errorf("the folder is still there after remove: %v", err)
	}
}
