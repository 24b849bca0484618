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
)

func validateCommand() *command {
	c := &command{
		name:  "validate",
		usage: "validate [flags] [FILE|-]",
		summary: "parse and validate a job ({\"input\": {...}}); print the normalized job as JSON (exit 0) " +
			"or the errors as JSON (exit 2); no ComfyUI needed",
	}
	c.run = func(ctx context.Context, env *Env, args []string) int {
		fs := newFlagSet(env, c)
		cfg, code, ok := parseConfigFlags(env, fs, c.name, args)
		if !ok {
			return code
		}
		data, _, err := readInput(env, fs.Args())
		if err != nil {
			fmt.Fprintf(env.Stderr, "wan22-worker validate: %v\n", err)
			return exitInvalid
		}
		j, err := validateJob(ctx, data, cfg)
		if err != nil {
			if writeValidateErrors(env.Stdout, err) {
				return exitFailed
			}
			return exitInvalid
		}
		if err := writeJSON(env.Stdout, j); err != nil {
			return exitFailed
		}
		return exitOK
	}
	return c
}

// validateJob parses a job document as the worker would, image included
// (an image URL is downloaded; nothing else touches the network).
func validateJob(ctx context.Context, data []byte, cfg *config.Config) (*job.Job, error) {
	req, err := job.DecodeRequest(data)
	if err != nil {
		return nil, err
	}
	return job.Parse(ctx, req.ID, req.Input, job.LimitsFrom(cfg), job.NewFetcher(cfg))
}

// writeValidateErrors prints {"errors": [{code, field, message, hint}, ...]}
// and reports whether any of them is an internal error rather than a
// problem with the job.
func writeValidateErrors(w io.Writer, err error) (internal bool) {
	var list []*apperr.Error
	var l apperr.List
	if errors.As(err, &l) {
		list = l
	} else {
		list = []*apperr.Error{apperr.From(err)}
	}
	for _, e := range list {
		internal = internal || e.Code == apperr.Internal
	}
	_ = writeJSON(w, map[string]any{"errors": list})
	return internal
}

// writeJSON prints v as indented JSON, non-ASCII and <>& as they are.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
