package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

// workflowLocalID is the job id used when the job file has none; it is the
// id `serve --test-input` gives such a job, so the printed image name is the
// one that run would upload.
const workflowLocalID = "local_test"

func workflowCommand() *command {
	c := &command{
		name:    "workflow",
		usage:   "workflow [flags] [FILE|-]",
		summary: "print the ComfyUI graph (API format) a job would submit; no ComfyUI needed",
	}
	c.run = func(ctx context.Context, env *Env, args []string) int {
		fs := newFlagSet(env, c)
		vhs := fs.Bool("vhs", true, "the server has VideoHelperSuite (VHS_VideoCombine writes the video); false: core CreateVideo + SaveVideo")
		compileNode := fs.Bool("torch-compile-node", true, "the server has the TorchCompileModel node (needed when TORCH_COMPILE=1)")
		id := fs.String("id", "", "job id (names the uploaded image and the output folder); default: the file's \"id\", else "+workflowLocalID)
		warmup := fs.Bool("warmup-graph", false, "print the warm-up graph instead of a job's (no job file is read)")
		cfg, code, ok := parseConfigFlags(env, fs, c.name, args)
		if !ok {
			return code
		}
		prof := workflow.ProfileFrom(cfg)
		caps := workflow.Capabilities{VideoHelperSuite: *vhs, TorchCompile: *compileNode}

		var (
			built *workflow.Built
			err   error
		)
		if *warmup {
			if fs.NArg() > 0 {
				fmt.Fprintln(env.Stderr, "wan22-worker workflow: --warmup-graph reads no job file")
				return exitInvalid
			}
			built, err = workflow.Warmup(prof, caps, "wan22_"+workflow.WarmupJobID+".png")
		} else {
			data, name, rerr := readInput(env, fs.Args())
			if rerr != nil {
				fmt.Fprintf(env.Stderr, "wan22-worker workflow: %v\n", rerr)
				return exitInvalid
			}
			j, perr := parseWorkflowJob(ctx, data, *id, cfg)
			if perr != nil {
				fmt.Fprintf(env.Stderr, "wan22-worker workflow: %s is not a valid job:\n", name)
				writeWorkflowErrors(env.Stderr, perr)
				return exitInvalid
			}
			built, err = workflow.Build(j, prof, caps)
		}
		if err != nil {
			writeWorkflowErrors(env.Stderr, err)
			return exitFailed
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(built.Graph); err != nil {
			return exitFailed
		}
		return exitOK
	}
	return c
}

// parseWorkflowJob parses a job document ({"input": {...}}, optionally with
// "id") as the worker would, image included.
func parseWorkflowJob(ctx context.Context, data []byte, id string, cfg *config.Config) (*job.Job, error) {
	req, err := job.DecodeRequest(data)
	if err != nil {
		return nil, err
	}
	if id == "" {
		id = req.ID
	}
	if id == "" {
		id = workflowLocalID
	}
	return job.Parse(ctx, id, req.Input, job.LimitsFrom(cfg), job.NewFetcher(cfg))
}

// writeWorkflowErrors prints errors as JSON: {"errors": [{code, message,
// field?, hint?, ...}]}, every error of a list.
func writeWorkflowErrors(w io.Writer, err error) {
	var list []*apperr.Error
	var l apperr.List
	if errors.As(err, &l) {
		list = l
	} else {
		list = []*apperr.Error{apperr.From(err)}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"errors": list})
}
