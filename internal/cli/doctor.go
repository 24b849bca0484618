package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/doctor"
)

// doctorCommand runs the checks of internal/doctor and prints the report.
func doctorCommand() *command {
	c := &command{
		name:    "doctor",
		usage:   "doctor [-v] [-o text|json] [--timeout D] [setting flags]",
		summary: "check configuration, ComfyUI, torch, GPU, models, custom nodes, disk; say how to fix what fails",
	}
	c.run = func(ctx context.Context, env *Env, args []string) int {
		return runDoctor(ctx, env, args, c, doctor.Deps{})
	}
	return c
}

// runDoctor runs doctor with base as the dependencies (tests fake the
// programs, the disk and the file system); the configuration comes from the
// flags and environment.
func runDoctor(ctx context.Context, env *Env, args []string, c *command, base doctor.Deps) int {
	fs := newFlagSet(env, c)
	verbose := fs.Bool("v", false, "also show the effective configuration (secrets redacted)")
	out := fs.String("o", "text", "output: text (a table with hints) or json ({\"checks\": [...], \"ok\": bool})")
	timeout := fs.Duration("timeout", 10*time.Second, "limit for each command and request a check makes (importing torch gets at least 60s)")
	config.Register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "wan22-worker doctor: unexpected arguments: %v\n", fs.Args())
		return exitInvalid
	}
	if *out != "text" && *out != "json" {
		fmt.Fprintf(env.Stderr, "wan22-worker doctor: -o %q: use text or json\n", *out)
		return exitInvalid
	}
	deps := base
	deps.Timeout = *timeout
	cfg, err := config.Load(fs, env.Getenv)
	if err != nil {
		deps.ConfigErr = err
		cfg = config.Default()
	}
	deps.Config = cfg
	rep := doctor.Run(ctx, &deps, doctor.Checks())
	if *verbose && err == nil {
		rep.Config = cfg.Redacted()
	}
	if *out == "json" {
		err = rep.WriteJSON(env.Stdout)
	} else {
		err = rep.WriteText(env.Stdout)
	}
	if err != nil || !rep.OK {
		return exitFailed
	}
	return exitOK
}
