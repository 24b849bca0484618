// Package testmodels generates tiny stand-ins for the WAN 2.2 image-to-video
// model files, for running the real ComfyUI end to end on a CPU: two tiny
// diffusion experts with the real key layout, a LoRA that maps onto them, the
// WAN 2.1 VAE at full size with random weights, and the UMT5-XXL text encoder
// as a sparse full-size file with a tiny tokenizer. ComfyUI loads them with
// the production graph unchanged, under the production file names.
//
// Every value comes from a fixed seed, so a set is the same on every run;
// Ensure caches a generated set on disk, keyed by Version and the options.
package testmodels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// Version names the content the generators produce. Change it whenever a
// generator changes, so that cached sets are made again.
const Version = 1

// Layout is the naming of the model folders.
type Layout string

// The layouts MODELS_DIRS accepts.
const (
	// LayoutOriginal uses the original spec's folders: unet, clip, vae, loras.
	LayoutOriginal Layout = "original"
	// LayoutComfy uses ComfyUI's folders: diffusion_models, text_encoders, vae, loras.
	LayoutComfy Layout = "comfy"
)

// Names are the model file names, relative to their folders, as the worker's
// configuration names them.
type Names struct {
	UNetHigh    string
	UNetLow     string
	VAE         string
	TextEncoder string
	// LoRAs are written with the same content; empty names are skipped.
	LoRAs []string
}

// NamesFrom returns the file names of a configuration.
func NamesFrom(c *config.Config) Names {
	return Names{UNetHigh: c.UNetHigh, UNetLow: c.UNetLow, VAE: c.VAE, TextEncoder: c.TextEncoder,
		LoRAs: []string{c.LoRAHigh, c.LoRALow}}
}

// Options say what to generate.
type Options struct {
	Names  Names
	Layout Layout // default LayoutOriginal
	// Full writes the real sizes with random values in every tensor (about
	// 35 GB): both 14B experts, the whole text encoder, the rank-32 LoRA.
	Full bool
}

// DefaultOptions are the default configuration's names in the original layout.
func DefaultOptions() Options {
	return Options{Names: NamesFrom(config.Default()), Layout: LayoutOriginal}
}

// File is one generated model file.
type File struct {
	Path string // relative to the models folder, e.g. unet/wan2.2_…safetensors
	Kind string // diffusion_model, lora, vae or text_encoder
	gen  func() []safetensors.Tensor
}

// Tensors returns the file's tensors (big ones are generated as they are
// written).
func (f File) Tensors() []safetensors.Tensor { return f.gen() }

// Seeds of the fixtures: each file has its own.
const (
	seedHigh = 1
	seedLow  = 2
	seedLoRA = 3
	seedVAE  = 4
	seedTE   = 5
)

// Plan lists the files Generate writes for opts, in order.
func Plan(opts Options) ([]File, error) {
	unet, clip := "unet", "clip"
	switch opts.Layout {
	case "", LayoutOriginal:
	case LayoutComfy:
		unet, clip = "diffusion_models", "text_encoders"
	default:
		return nil, fmt.Errorf("testmodels: unknown layout %q", opts.Layout)
	}
	n := opts.Names
	dims := tinyWAN
	if opts.Full {
		dims = fullWAN
	}
	type entry struct {
		folder, name, kind string
		gen                func() []safetensors.Tensor
	}
	entries := []entry{
		{unet, n.UNetHigh, "diffusion_model", func() []safetensors.Tensor { return wanModel(seedHigh, dims) }},
		{unet, n.UNetLow, "diffusion_model", func() []safetensors.Tensor { return wanModel(seedLow, dims) }},
		{"vae", n.VAE, "vae", func() []safetensors.Tensor { return wanVAE(seedVAE, safetensors.BF16) }},
		{clip, n.TextEncoder, "text_encoder", func() []safetensors.Tensor { return umt5(seedTE, opts.Full) }},
	}
	for _, l := range n.LoRAs {
		if l != "" {
			entries = append(entries, entry{"loras", l, "lora", func() []safetensors.Tensor { return wanLoRA(seedLoRA, dims) }})
		}
	}
	var files []File
	seen := map[string]bool{}
	for _, e := range entries {
		if err := checkName(e.name); err != nil {
			return nil, err
		}
		path := filepath.Join(e.folder, e.name)
		if !seen[path] { // the two experts' LoRAs are usually the same file
			seen[path] = true
			files = append(files, File{Path: path, Kind: e.kind, gen: e.gen})
		}
	}
	return files, nil
}

// checkName accepts a relative file name that stays inside its folder.
func checkName(name string) error {
	clean := filepath.Clean(name)
	if name == "" || filepath.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("testmodels: model name %q is not a relative file name", name)
	}
	return nil
}

// metadata is written into every file.
func metadata(f File) map[string]string {
	return map[string]string{"format": "pt", "generator": fmt.Sprintf("wan22-worker testmodels v%d", Version), "kind": f.Kind}
}

// Header returns the safetensors header Generate writes for f (the 8-byte
// length and the JSON), without generating any data: a dry run.
func (f File) Header() ([]byte, error) {
	return safetensors.EncodeHeader(f.Tensors(), metadata(f))
}

// Generate writes the fixtures of opts under dir and returns them.
func Generate(ctx context.Context, dir string, opts Options) ([]File, error) {
	files, err := Plan(opts)
	if err != nil {
		return nil, err
	}
	return files, generate(ctx, dir, files)
}

func generate(ctx context.Context, dir string, files []File) error {
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := safetensors.WriteFile(path, f.Tensors(), metadata(f)); err != nil {
			return fmt.Errorf("testmodels: %s: %w", f.Path, err)
		}
	}
	return nil
}

// Key identifies a set in a cache: the generator version and the options.
func Key(opts Options) string {
	if opts.Layout == "" {
		opts.Layout = LayoutOriginal
	}
	h := sha256.New()
	if opts.Full {
		fmt.Fprint(h, "full\x00")
	}
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s\x00%s", Version, opts.Layout, opts.Names.UNetHigh, opts.Names.UNetLow, opts.Names.VAE, opts.Names.TextEncoder)
	for _, l := range opts.Names.LoRAs {
		fmt.Fprintf(h, "\x00%s", l)
	}
	return fmt.Sprintf("v%d-%s", Version, hex.EncodeToString(h.Sum(nil))[:12])
}

// completeMarker is written last into a finished set.
const completeMarker = ".complete"

// Ensure returns the folder under cacheDir that holds the fixtures of opts,
// generating them first unless a finished set is already there. A set is
// generated in a temporary folder and renamed into place, so an interrupted
// run never leaves a half-written set that a later run would use.
func Ensure(ctx context.Context, cacheDir string, opts Options) (string, error) {
	files, err := Plan(opts)
	if err != nil {
		return "", err
	}
	return ensure(cacheDir, Key(opts), func(dir string) error { return generate(ctx, dir, files) })
}

// ensure returns cacheDir/key, calling gen to fill it unless it is finished.
func ensure(cacheDir, key string, gen func(dir string) error) (string, error) {
	dir := filepath.Join(cacheDir, key)
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cacheDir, ".tmp-"+key+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := gen(tmp); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(key+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	// Replace an unfinished set left by an interrupted run.
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have finished the same set first.
		if _, serr := os.Stat(filepath.Join(dir, completeMarker)); serr == nil {
			return dir, nil
		}
		return "", err
	}
	return dir, nil
}

// Prune deletes every finished set under cacheDir other than keep (a Key),
// such as the sets of older generator versions.
func Prune(cacheDir, keep string) error {
	entries, err := os.ReadDir(cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != keep && strings.HasPrefix(e.Name(), "v") {
			if err := os.RemoveAll(filepath.Join(cacheDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
