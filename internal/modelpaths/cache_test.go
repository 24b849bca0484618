package modelpaths

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/hfcache/hfcachetest"
)

func TestCache(t *testing.T) {
	root := t.TempDir()
	volume := filepath.Join(root, "runpod-volume", "models")
	for _, f := range []string{"vae/wan_2.1_vae.safetensors", "unet/low.safetensors"} {
		p := filepath.Join(volume, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("volume"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hub := filepath.Join(root, "runpod-volume", "huggingface-cache", "hub")
	const rev = "2222222222222222222222222222222222222222"
	hfcachetest.WriteRepo(t, hub, "Comfy-Org/Wan_2.2_ComfyUI_Repackaged", rev, map[string][]hfcachetest.File{rev: {
		{Rel: "split_files/vae/wan_2.1_vae.safetensors", Content: "cached vae"},
		{Rel: "split_files/diffusion_models/high.safetensors", Content: "cached high"},
	}})
	hfcachetest.WriteRepo(t, hub, "Kijai/WanVideo_comfy", "", map[string][]hfcachetest.File{"3333": {
		{Rel: "Wan21_lora.safetensors", Content: "cached lora"},
	}})
	files := []File{
		{Folder: "diffusion_models", Name: "high.safetensors"},
		{Folder: "unet", Name: "low.safetensors"},
		{Folder: "text_encoders", Name: "te.safetensors"},
		{Folder: "vae", Name: "wan_2.1_vae.safetensors"},
		{Folder: "loras", Name: "wan/Wan21_lora.safetensors"},
	}
	cached := FindCache([]string{hub}, files)
	var names []string
	for _, c := range cached {
		names = append(names, c.Folder+"/"+c.Name)
	}
	if want := []string{"diffusion_models/high.safetensors", "vae/wan_2.1_vae.safetensors", "loras/wan/Wan21_lora.safetensors"}; !slices.Equal(names, want) {
		t.Fatalf("cached %v, want %v", names, want)
	}

	for _, prefer := range []bool{false, true} {
		links := filepath.Join(root, "work", "hf-cache-models")
		p := Resolve([]string{volume}, nil)
		p.SetCache(cached, links, prefer)
		wantSource := map[string]string{
			"diffusion_models/high.safetensors": SourceCache, // only in the cache
			"diffusion_models/low.safetensors":  SourceVolume,
			"vae/wan_2.1_vae.safetensors":       SourceVolume, // in both: the volume unless preferred
			"loras/wan/Wan21_lora.safetensors":  SourceCache,
			"text_encoders/te.safetensors":      "",
		}
		if prefer {
			wantSource["vae/wan_2.1_vae.safetensors"] = SourceCache
		}
		for _, f := range files {
			key := Canonical(f.Folder) + "/" + f.Name
			found, tried := p.Locate(f.Folder, f.Name)
			got := ""
			if found != "" {
				got = p.Source(found)
			}
			if got != wantSource[key] {
				t.Errorf("prefer=%v: %s found at %q (%s), want %s; tried %v", prefer, key, found, got, wantSource[key], tried)
			}
			if c, ok := p.Cached(f.Folder, f.Name); ok && !slices.Contains(tried, c.Path) {
				t.Errorf("prefer=%v: %s: the cache's path is not in tried %v", prefer, key, tried)
			}
		}
		if err := p.LinkCache(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(links, "loras", "wan", "Wan21_lora.safetensors"))
		if err != nil || string(b) != "cached lora" {
			t.Errorf("link of the LoRA under its configured name: %q, %v", b, err)
		}
		yaml := string(p.YAML())
		ci, vi := strings.Index(yaml, "wan22_hf_cache:"), strings.Index(yaml, "wan22_models_1:")
		if ci < 0 || vi < 0 || (ci < vi) == prefer {
			// ComfyUI puts later sections first: the preferred cache must come last.
			t.Errorf("prefer=%v: cache section at %d, volume at %d:\n%s", prefer, ci, vi, yaml)
		}
		for _, want := range []string{"  base_path: \"" + links + "\"", "  loras: |\n    loras\n", "  vae: |\n    vae\n", "  diffusion_models: |\n    diffusion_models\n"} {
			if !strings.Contains(yaml, want) {
				t.Errorf("YAML lacks %q:\n%s", want, yaml)
			}
		}
		if strings.Contains(yaml, "text_encoders: |\n    text_encoders") {
			t.Errorf("YAML lists text_encoders for the cache though none is cached:\n%s", yaml)
		}
		if sum := strings.Join(p.Summary(), "\n"); !strings.Contains(sum, "Hugging Face cache Kijai/WanVideo_comfy@3333: loras/wan/Wan21_lora.safetensors") {
			t.Errorf("summary:\n%s", sum)
		}
	}
	// The link folder is rebuilt: a file no longer cached loses its link.
	p := Resolve([]string{volume}, nil)
	p.SetCache(cached[:1], filepath.Join(root, "work", "hf-cache-models"), false)
	if err := p.LinkCache(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, "work", "hf-cache-models", "loras")); !os.IsNotExist(err) {
		t.Errorf("stale link kept: %v", err)
	}
}
