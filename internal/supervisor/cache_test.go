package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/hfcache/hfcachetest"
	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
)

// TestModelPathsFromTheHFCache: the files of the profile found in a Hugging Face cache are linked into the
// work dir under their configured names and wired into ComfyUI's extra model paths.
func TestModelPathsFromTheHFCache(t *testing.T) {
	log, recs := newRecorder()
	opts := helperOpts(t, modeNormal)
	hub := filepath.Join(t.TempDir(), "hub")
	const rev = "2222222222222222222222222222222222222222"
	hfcachetest.WriteRepo(t, hub, "Kijai/WanVideo_comfy", rev, map[string][]hfcachetest.File{rev: {{Rel: "lora.safetensors", Content: "lora"}}})
	opts.CacheHubs = []string{hub}
	opts.CacheFiles = []modelpaths.File{{Folder: "loras", Name: "wan/lora.safetensors"}, {Folder: "vae", Name: "vae.safetensors"}}
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := New(opts, log)
	if err := s.writeModelPaths(); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(opts.WorkDir, CacheLinksDir, "loras", "wan", "lora.safetensors")
	if b, err := os.ReadFile(link); err != nil || string(b) != "lora" {
		t.Errorf("link %s: %q, %v", link, b, err)
	}
	yaml, err := os.ReadFile(filepath.Join(opts.WorkDir, ModelPathsFile))
	if err != nil || !strings.Contains(string(yaml), "wan22_hf_cache:\n") || !strings.Contains(string(yaml), filepath.Join(opts.WorkDir, CacheLinksDir)) {
		t.Errorf("model paths file: %v\n%s", err, yaml)
	}
	if len(recs.find(func(r rec) bool {
		return strings.Contains(r.attrs["folder"], "Hugging Face cache Kijai/WanVideo_comfy")
	})) != 1 {
		t.Error("the cached file is not logged")
	}
}

func TestOptionsFromCache(t *testing.T) {
	c, err := config.Load(nil, func(k string) string {
		return map[string]string{"HF_HOME": "/hf", "MODELS_PREFER_CACHE": "1"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	o := OptionsFrom(c)
	if want := []string{"/runpod-volume/huggingface-cache/hub", "/hf/hub"}; !slices.Equal(o.CacheHubs, want) || !o.PreferCache || len(o.CacheFiles) != 5 {
		t.Errorf("hubs %v prefer %v files %v", o.CacheHubs, o.PreferCache, o.CacheFiles)
	}
}
