// Command mkmodels writes the tiny WAN 2.2 stand-in model files that the
// end-to-end tests run the real ComfyUI with (see docs/e2e.md):
//
//	go run ./cmd/mkmodels --dir DIR [--layout original|comfy]
//
// The files get the names the worker's configuration gives them (MODEL_*
// settings, defaults: the production names), in the original layout's
// folders (unet, clip, vae, loras) or ComfyUI's (diffusion_models,
// text_encoders, vae, loras), so DIR can be used as a MODELS_DIRS entry.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/safetensors"
	"github.com/wan22-worker/wan22-worker/internal/testmodels"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkmodels:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mkmodels", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder to write the model files into (required)")
	layout := fs.String("layout", string(testmodels.LayoutOriginal), "folder names: original (unet, clip) or comfy (diffusion_models, text_encoders)")
	full := fs.Bool("full", false, "write the real sizes with random values (about 35 GB): for timing on a GPU (docs/performance.md)")
	dryRun := fs.Bool("dry-run", false, "print each file's header size and data size instead of writing it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h asked for the usage, which Parse printed
		}
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("usage: mkmodels --dir DIR [--layout original|comfy]")
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	start := time.Now()
	opts := testmodels.Options{Names: testmodels.NamesFrom(cfg), Layout: testmodels.Layout(*layout), Full: *full}
	if *dryRun {
		return dryRunPlan(opts)
	}
	files, err := testmodels.Generate(ctx, *dir, opts)
	if err != nil {
		return err
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(*dir, f.Path))
		if err != nil {
			return err
		}
		fmt.Printf("%-15s %11d bytes  %s\n", f.Kind, st.Size(), filepath.Join(*dir, f.Path))
	}
	fmt.Printf("generator v%d, %d files in %s\n", testmodels.Version, len(files), time.Since(start).Round(time.Millisecond))
	return nil
}

// dryRunPlan prints what Generate would write, from the headers alone.
func dryRunPlan(opts testmodels.Options) error {
	files, err := testmodels.Plan(opts)
	if err != nil {
		return err
	}
	for _, f := range files {
		hdr, err := f.Header()
		if err != nil {
			return err
		}
		h, err := safetensors.ReadHeader(bytes.NewReader(hdr))
		if err != nil {
			return err
		}
		fmt.Printf("%-15s %5d tensors %11d bytes  %s\n", f.Kind, len(h.Tensors), h.DataStart+h.DataSize, f.Path)
	}
	return nil
}
