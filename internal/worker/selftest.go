package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/testmodels"
)

// SelfTestModels prepares the self-test (SELF_TEST=1): it writes the tiny
// WAN 2.2 stand-in model files (package testmodels, under the configured
// MODEL_* names, sparse where they are large) into a new folder under tmpDir
// ("" is the system's) and returns a copy of cfg whose MODELS_DIRS is that
// folder alone, so that the production graph runs on them on whatever device
// there is, and a function that removes the folder. With SELF_TEST off it
// returns cfg unchanged and a no-op. The worker must start ComfyUI itself:
// an attached one (COMFY_URL) cannot be pointed at the folder.
func SelfTestModels(ctx context.Context, cfg *config.Config, tmpDir string, log *slog.Logger) (*config.Config, func(), error) {
	if !cfg.SelfTest {
		return cfg, func() {}, nil
	}
	if cfg.ComfyURL != "" {
		return nil, nil, apperr.New(apperr.InvalidInput, "SELF_TEST=1 needs the worker to start ComfyUI, but COMFY_URL attaches to one",
			"unset COMFY_URL (and set COMFYUI_DIR), or unset SELF_TEST")
	}
	t0 := time.Now()
	dir, err := os.MkdirTemp(tmpDir, "wan22-selftest-models-")
	if err != nil {
		return nil, nil, fmt.Errorf("self-test: %w", err)
	}
	remove := func() {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("self-test: could not remove the stand-in model files", "dir", dir, "error", err)
		}
	}
	files, err := testmodels.Generate(ctx, dir, testmodels.Options{Names: testmodels.NamesFrom(cfg), Layout: testmodels.LayoutComfy})
	if err != nil {
		remove()
		return nil, nil, fmt.Errorf("self-test: writing the stand-in model files: %w", err)
	}
	c := *cfg
	c.ModelsDirs = []string{dir}
	log.Warn("SELF_TEST=1: jobs run on tiny generated stand-in models and return noise videos, not on MODELS_DIRS",
		"models_dir", dir, "files", len(files), "took", time.Since(t0).Round(time.Millisecond))
	return &c, remove, nil
}
