package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/api"
	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/result"
	"github.com/wan22-worker/wan22-worker/internal/runpod"
	"github.com/wan22-worker/wan22-worker/internal/startup"
	"github.com/wan22-worker/wan22-worker/internal/version"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

// defaultTestInput is RunPod's convention: off RunPod, a worker started
// without arguments runs ./test_input.json once.
const defaultTestInput = "test_input.json"

func serveCommand() *command {
	c := &command{
		name:  "serve",
		usage: "serve [--api | --test-input FILE] [config flags]",
		summary: "run the worker: the RunPod job loop when RUNPOD_WEBHOOK_GET_JOB is set, the local RunPod-compatible " +
			"API with --api, or one job from --test-input (or ./test_input.json off RunPod)",
	}
	c.run = func(ctx context.Context, env *Env, args []string) int {
		fs := newFlagSet(env, c)
		apiMode := fs.Bool("api", false, "serve the local RunPod-compatible API on API_ADDR instead of taking RunPod jobs")
		testInput := fs.String("test-input", "", "run the job in this file ({\"input\": {...}}) once, print the result, exit 0/1")
		cfg, code, ok := parseConfigFlags(env, fs, c.name, args)
		if !ok {
			return code
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(env.Stderr, "serve: unexpected argument %q\n", fs.Arg(0))
			return exitInvalid
		}
		log := logging.New(env.Stderr, cfg)

		mode, input, err := chooseServeMode(cfg, *apiMode, *testInput)
		if err != nil {
			fmt.Fprintf(env.Stderr, "serve: %v\n", err)
			return exitInvalid
		}
		if mode == "api" {
			if err := api.CheckAddr(cfg.APIAddr, cfg.APIToken, cfg.APIAllowInsecure); err != nil {
				fmt.Fprintf(env.Stderr, "serve: %v\n", err)
				return exitInvalid
			}
		}
		log.Info("starting wan22-worker", "version", version.Get().Version, "mode", mode, "config", cfg)
		started := env.Started
		if started.IsZero() {
			started = time.Now()
		}
		tl := startup.New(started)
		tl.WriteTo(startup.DefaultFile())
		return serve(ctx, env, cfg, log, mode, input, tl)
	}
	return c
}

// chooseServeMode picks what serve does, following RunPod's SDK: --api, else
// a test input, else the job loop when RUNPOD_WEBHOOK_GET_JOB is set, else
// ./test_input.json.
func chooseServeMode(cfg *config.Config, apiMode bool, testInput string) (mode string, input []byte, err error) {
	switch {
	case apiMode && testInput != "":
		return "", nil, errors.New("--api and --test-input exclude each other")
	case apiMode:
		return "api", nil, nil
	case testInput != "":
		b, err := os.ReadFile(testInput)
		if err != nil {
			return "", nil, fmt.Errorf("reading the test input: %w", err)
		}
		return "once", b, nil
	case cfg.OnRunPod():
		return "runpod", nil, nil
	}
	b, err := os.ReadFile(defaultTestInput)
	if err != nil {
		return "", nil, fmt.Errorf("not on RunPod (RUNPOD_WEBHOOK_GET_JOB is unset) and no ./%s to run: "+
			"use `serve --api` for the local API, or `serve --test-input FILE`", defaultTestInput)
	}
	return "once", b, nil
}

func serve(ctx context.Context, env *Env, cfg *config.Config, log *slog.Logger, mode string, input []byte, tl *startup.Timeline) int {
	cfg, removeModels, err := worker.SelfTestModels(ctx, cfg, "", log)
	if err != nil {
		log.Error("cannot prepare the self-test", "error", err)
		return exitFailed
	}
	defer removeModels()
	p, err := worker.New(cfg, worker.Options{Timeline: tl}, log)
	if err != nil {
		log.Error("cannot build the worker", "error", err)
		return exitFailed
	}
	defer stopPipeline(p, log)
	if err := p.Start(ctx); err != nil {
		log.Error("ComfyUI did not start", "error", err)
		if mode == "once" {
			// The one job fails with the start's error, in the result's shape.
			fmt.Fprintln(env.Stdout, string(result.Fail(apperr.From(err)).JSON()))
		}
		return exitFailed
	}

	switch mode {
	case "once":
		return runpod.RunOnce(ctx, p, input, env.Stdout)
	case "api":
		srv := api.New(api.OptionsFrom(cfg), p, log.With("component", "api"))
		if err := srv.Run(ctx); err != nil {
			log.Error("local API stopped", "error", err)
			return exitFailed
		}
		return exitOK
	default: // runpod
		if err := runpod.Run(ctx, runpod.OptionsFrom(cfg), p, log.With("component", "runpod")); err != nil {
			log.Error("worker loop ended", "error", err)
			return exitFailed
		}
		return exitOK
	}
}

func stopPipeline(p *worker.Pipeline, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		log.Warn("stopping ComfyUI", "error", err)
	}
}
