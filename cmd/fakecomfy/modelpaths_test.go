package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// TestModelsFromPaths lists the model files through the extra model paths
// file the worker writes: both layouts, subfolders, two models folders, and
// no file that ComfyUI could not load.
func TestModelsFromPaths(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	tensor := []safetensors.Tensor{{Name: "w", DType: safetensors.F32, Shape: []int64{1}, Data: make([]byte, 4)}}
	for _, f := range []string{
		filepath.Join(a, "unet", "high.safetensors"),
		filepath.Join(a, "loras", "wan", "lora.safetensors"),
		filepath.Join(b, "diffusion_models", "low.safetensors"),
		filepath.Join(b, "vae", "vae.safetensors"),
	} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := safetensors.WriteFile(f, tensor, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Not loadable: not safetensors, or a broken header.
	if err := os.WriteFile(filepath.Join(b, "vae", "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "vae", "broken.safetensors"), []byte("garbage!garbage!"), 0o644); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "extra_model_paths.yaml")
	if err := modelpaths.Resolve([]string{a, b}, nil).WriteFile(config); err != nil {
		t.Fatal(err)
	}
	got, err := modelsFromPaths(config)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"diffusion_models": {"high.safetensors", "low.safetensors"},
		"loras":            {"wan/lora.safetensors"},
		"vae":              {"vae.safetensors"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("models = %v, want %v", got, want)
	}
}
