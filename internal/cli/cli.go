// Package cli is the wan22-worker command line: a small tree of subcommands,
// each in its own file, built on the standard flag package.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"time"
)

// Env is what a command runs with: its streams and environment. Tests build
// one; main uses the process's.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Started is when the process started (the start-up timeline's zero); zero means when serve begins.
	Started time.Time
}

// command is one subcommand.
type command struct {
	name    string
	usage   string // the line after "wan22-worker "
	summary string
	// run executes the command with its own arguments and returns the exit code.
	run func(ctx context.Context, env *Env, args []string) int
}

// Exit codes shared by the commands.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and failed (job failed, check failed)
	exitInvalid = 2 // bad usage or invalid input
)

func commands() []*command {
	return []*command{
		versionCommand(),
		serveCommand(),
		generateCommand(),
		submitCommand(),
		workflowCommand(),
		validateCommand(),
		modelsCommand(),
		doctorCommand(),
	}
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, env *Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			for _, c := range cmds {
				if c.name == args[1] {
					return c.run(ctx, env, []string{"-h"})
				}
			}
		}
		usage(env.Stderr, cmds)
		if len(args) == 0 {
			return exitInvalid
		}
		return exitOK
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "wan22-worker: unknown command %q\n\n", args[0])
	usage(env.Stderr, cmds)
	return exitInvalid
}

func usage(w io.Writer, cmds []*command) {
	fmt.Fprintln(w, "wan22-worker: WAN 2.2 image-to-video worker for RunPod Serverless, driving ComfyUI.")
	fmt.Fprintln(w, "\nUsage:\n  wan22-worker <command> [flags]\n\nCommands:")
	sorted := append([]*command(nil), cmds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'wan22-worker <command> -h' for a command's flags. Every setting of")
	fmt.Fprintln(w, "docs/configuration.md is also accepted as an environment variable.")
}

// newFlagSet returns a flag set that prints the command's usage on -h.
func newFlagSet(env *Env, c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: wan22-worker %s\n\n%s\n", c.usage, c.summary)
		// The command's own flags; the configuration's flags (one per
		// setting) are summarised in one line rather than listed.
		own := flag.NewFlagSet(c.name, flag.ContinueOnError)
		own.SetOutput(env.Stderr)
		settings := map[string]bool{}
		for _, s := range config.Settings() {
			settings[s.Flag()] = true
		}
		var hasConfig bool
		fs.VisitAll(func(f *flag.Flag) {
			if settings[f.Name] {
				hasConfig = true
				return
			}
			own.Var(f.Value, f.Name, f.Usage)
		})
		var any bool
		own.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(env.Stderr, "\nFlags:")
			own.PrintDefaults()
		}
		if hasConfig {
			fmt.Fprintln(env.Stderr, "\nEvery setting of docs/configuration.md is also accepted as a flag: its name in lower case")
			fmt.Fprintln(env.Stderr, "with dashes (MAX_FRAMES → --max-frames 81). Flags beat environment variables.")
		}
	}
	return fs
}

// parseFlags parses args; it returns (exit code, false) when the command
// should stop (help asked, bad flag).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitInvalid, false
	}
	return 0, true
}

// parseConfigFlags registers every setting as a flag on fs (after the
// command's own flags), parses args and loads the configuration: flags beat
// the environment, which beats the defaults. It returns ok=false with the
// exit code when the command should stop: help asked, a bad flag, or an
// invalid setting (reported on stderr under the command's name).
func parseConfigFlags(env *Env, fs *flag.FlagSet, name string, args []string) (cfg *config.Config, code int, ok bool) {
	config.Register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return nil, code, false
	}
	cfg, err := config.Load(fs, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "wan22-worker %s: invalid configuration:\n%v\n", name, err)
		return nil, exitInvalid, false
	}
	return cfg, 0, true
}

// readInput reads a file argument: "-" or none means stdin.
func readInput(env *Env, args []string) ([]byte, string, error) {
	if len(args) > 1 {
		return nil, "", fmt.Errorf("expected at most one file, got %s", strings.Join(args, " "))
	}
	if len(args) == 0 || args[0] == "-" {
		b, err := io.ReadAll(env.Stdin)
		return b, "stdin", err
	}
	b, err := os.ReadFile(args[0])
	return b, args[0], err
}
