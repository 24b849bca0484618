// Command fakecomfy runs the fake ComfyUI of internal/comfy/comfytest as a
// standalone server, for local development and integration tests:
//
//	go run ./cmd/fakecomfy --addr 127.0.0.1:8188 --step-delay 200ms
//
// Flags select the latency and one fault mode (see docs/comfyui.md).
//
// It can also stand in for ComfyUI under the worker's supervisor: when its
// arguments are those of `python -u main.py ...` (an optional interpreter
// flag, then a path whose last element is main.py), it reads ComfyUI's flags
// (--listen, --port, --input-directory, --output-directory,
// --temp-directory), ignores ComfyUI's other flags, accepts its own flags
// above among them, and prints ComfyUI's startup line. With COMFY_PYTHON set
// to this binary and COMFYUI_DIR to a folder with an empty main.py, the
// worker starts, supervises and restarts it as it would ComfyUI; fake flags
// travel in COMFY_EXTRA_ARGS (e.g. "--step-delay 500ms").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// flags are fakecomfy's own settings.
type flags struct {
	fs          *flag.FlagSet
	addr        *string
	dir         *string
	stepDelay   *time.Duration
	nodeDelay   *time.Duration
	ffmpeg      *string
	video       *string
	readyAfter  *time.Duration
	refuse      *bool
	historyWait *time.Duration
	viewDelay   *time.Duration
	viewRate    *int64
	fault       *string
	faultClass  *string
	faultNode   *string
	faultStep   *int
	faultOnce   *bool
	missing     *string
	models      *string
	modelPaths  *bool
	verbose     *bool
}

func newFlags(stderr io.Writer) *flags {
	fs := flag.NewFlagSet("fakecomfy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &flags{
		fs:          fs,
		addr:        fs.String("addr", "127.0.0.1:8188", "listen address"),
		dir:         fs.String("dir", "", "directory for input/, output/ and temp/ (default: a temporary one)"),
		stepDelay:   fs.Duration("step-delay", 200*time.Millisecond, "time per sampler step (0: zero-latency mode)"),
		nodeDelay:   fs.Duration("node-delay", 50*time.Millisecond, "time per other node"),
		ffmpeg:      fs.String("ffmpeg", "ffmpeg", "ffmpeg binary used to encode the videos"),
		video:       fs.String("video", "", "serve this MP4 as every video instead of encoding one"),
		readyAfter:  fs.Duration("ready-after", 0, "answer 503 (or refuse connections, with -refuse) until this long after start"),
		refuse:      fs.Bool("refuse", false, "with -ready-after: refuse connections instead of answering 503"),
		historyWait: fs.Duration("history-delay", 0, "write history this long after the end of a run (the history race)"),
		viewDelay:   fs.Duration("view-delay", 0, "delay every /view response"),
		viewRate:    fs.Int64("view-rate", 0, "throttle /view bodies to this many bytes per second"),
		fault:       fs.String("fault", "", "fault mode: oom, error, ws-drop, ws-drop-finish, ws-mute or crash"),
		faultClass:  fs.String("fault-class", "KSamplerAdvanced", "node class where the fault fires"),
		faultNode:   fs.String("fault-node", "", "node id where the fault fires (instead of -fault-class)"),
		faultStep:   fs.Int("fault-step", 1, "sampler step before which the fault fires (0: at the node's start)"),
		faultOnce:   fs.Bool("fault-once", false, "fire the fault in the first run only"),
		missing:     fs.String("missing-nodes", "", "comma-separated node classes the server lacks (e.g. VHS_VideoCombine)"),
		models:      fs.String("models", "", "model files as folder=file,file;folder=file (default: the worker's default profile)"),
		modelPaths:  fs.Bool("models-from-paths", false, "as ComfyUI's stand-in: list the safetensors files found through --extra-model-paths-config instead of -models"),
		verbose:     fs.Bool("v", false, "debug logging"),
	}
}

func run(args []string) int {
	f := newFlags(os.Stderr)
	var comfy *comfyLaunch
	if rest, ok := comfyArgs(args); ok {
		c, fakeArgs, err := parseComfyArgs(rest, f.fs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakecomfy:", err)
			return 2
		}
		comfy = &c
		args = fakeArgs
	}
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h asked for the usage, which Parse printed
		}
		return 2
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "fakecomfy: unexpected argument %q\n", f.fs.Arg(0))
		return 2
	}
	level := slog.LevelInfo
	if *f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := comfytest.Options{
		Addr: *f.addr, Dir: *f.dir, Logger: log, StepDelay: *f.stepDelay, NodeDelay: *f.nodeDelay, FFmpeg: *f.ffmpeg,
		ReadyAfter: *f.readyAfter, RefuseUntilReady: *f.refuse, HistoryDelay: *f.historyWait,
		ViewDelay: *f.viewDelay, ViewBytesPerSecond: *f.viewRate,
		Fault: comfytest.Fault{Kind: comfytest.FaultKind(*f.fault), At: comfytest.Point{Class: *f.faultClass, Node: *f.faultNode, Step: *f.faultStep}, Once: *f.faultOnce},
	}
	switch opts.Fault.Kind {
	case comfytest.FaultNone, comfytest.FaultOOM, comfytest.FaultError, comfytest.FaultDropWS, comfytest.FaultDropWSFinish,
		comfytest.FaultMuteWS, comfytest.FaultCrash:
	default:
		fmt.Fprintf(os.Stderr, "fakecomfy: unknown -fault %q\n", *f.fault)
		return 2
	}
	if *f.missing != "" {
		opts.MissingNodes = strings.Split(*f.missing, ",")
	}
	if *f.models != "" {
		m, err := parseModels(*f.models)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakecomfy:", err)
			return 2
		}
		opts.Models = m
	}
	if *f.video != "" {
		b, err := os.ReadFile(*f.video)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakecomfy:", err)
			return 1
		}
		opts.Video = b
	}
	if *f.modelPaths {
		if comfy == nil || comfy.extraPaths == "" {
			fmt.Fprintln(os.Stderr, "fakecomfy: -models-from-paths needs ComfyUI's --extra-model-paths-config")
			return 2
		}
		m, err := modelsFromPaths(comfy.extraPaths)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakecomfy:", err)
			return 1
		}
		opts.Models = m
	}
	if comfy != nil {
		dir, cleanup, err := comfy.workDir()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakecomfy:", err)
			return 1
		}
		defer cleanup()
		opts.Addr, opts.Dir = comfy.addr(), dir
	}
	s, err := comfytest.Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakecomfy:", err)
		return 1
	}
	defer s.Close()
	log.Info("fake ComfyUI listening", "url", s.URL, "input", s.InputDir(), "output", s.OutputDir())
	if comfy != nil {
		// ComfyUI's own startup lines, which tools wait for.
		fmt.Fprintf(os.Stdout, "Starting server\n\nTo see the GUI go to: %s\n", s.URL)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return 0
}

// comfyArgs reports whether args are those of `python [-u ...] .../main.py
// flags...`, and returns the flags after main.py.
func comfyArgs(args []string) ([]string, bool) {
	for i, a := range args {
		if filepath.Base(a) == "main.py" && !strings.HasPrefix(a, "-") {
			return args[i+1:], true
		}
		// Only the interpreter's own short flags (-u, -B, -O, ...) may come first.
		if len(a) < 2 || a[0] != '-' || a[1] == '-' {
			return nil, false
		}
	}
	return nil, false
}

// comfyLaunch is what ComfyUI's command line asks for.
type comfyLaunch struct {
	listen string // first address of --listen
	port   int
	input  string // --input-directory
	output string // --output-directory
	temp   string // --temp-directory: ComfyUI uses <temp>/temp
	base   string // the working directory: ComfyUI's default base
	// extraPaths is --extra-model-paths-config (the last one given).
	extraPaths string
}

// comfyValueFlags are ComfyUI's flags the fake uses.
var comfyValueFlags = map[string]bool{
	"listen": true, "port": true, "input-directory": true, "output-directory": true, "temp-directory": true,
	"extra-model-paths-config": true,
}

// parseComfyArgs reads ComfyUI's flags. Fake flags (those defined in fs)
// are returned for fs to parse; every other flag is skipped with its values
// (ComfyUI takes no positional arguments, so the words after a flag are its
// values).
func parseComfyArgs(args []string, fs *flag.FlagSet) (comfyLaunch, []string, error) {
	base, err := os.Getwd()
	if err != nil {
		return comfyLaunch{}, nil, err
	}
	c := comfyLaunch{listen: "127.0.0.1", port: 8188, base: base}
	var fake []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			continue // a value of a skipped flag
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takeValue := func() (string, bool) {
			if hasValue {
				return value, true
			}
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				return args[i], true
			}
			return "", false
		}
		switch {
		case comfyValueFlags[name]:
			v, ok := takeValue()
			if !ok {
				if name == "listen" { // bare --listen: every interface
					c.listen = "0.0.0.0"
					continue
				}
				return c, nil, fmt.Errorf("--%s needs a value", name)
			}
			switch name {
			case "listen":
				c.listen, _, _ = strings.Cut(v, ",")
			case "port":
				p, err := strconv.Atoi(v)
				if err != nil || p < 0 || p > 65535 {
					return c, nil, fmt.Errorf("--port %q: not a port number", v)
				}
				c.port = p
			case "input-directory":
				c.input = v
			case "output-directory":
				c.output = v
			case "temp-directory":
				c.temp = v
			case "extra-model-paths-config":
				c.extraPaths = v
			}
		case fs.Lookup(name) != nil:
			if isBoolFlag(fs.Lookup(name)) {
				fake = append(fake, a)
				continue
			}
			v, ok := takeValue()
			if !ok {
				return c, nil, fmt.Errorf("-%s needs a value", name)
			}
			fake = append(fake, "-"+name+"="+v)
		default:
			if !hasValue {
				for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					i++
				}
			}
		}
	}
	return c, fake, nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (c comfyLaunch) addr() string {
	return net.JoinHostPort(c.listen, strconv.Itoa(c.port))
}

// workDir returns the directory the fake serves input/, output/ and temp/
// from. When ComfyUI's directories are <d>/input, <d>/output and <d>/temp
// it is <d>; otherwise a private directory whose entries link to them,
// removed by cleanup.
func (c comfyLaunch) workDir() (dir string, cleanup func(), err error) {
	tempBase := c.temp
	if tempBase == "" {
		tempBase = c.base
	}
	in, out := c.input, c.output
	if in == "" {
		in = filepath.Join(c.base, "input")
	}
	if out == "" {
		out = filepath.Join(c.base, "output")
	}
	in, out, tempBase = abs(in), abs(out), abs(tempBase)
	want := map[string]string{"input": in, "output": out, "temp": filepath.Join(tempBase, "temp")}
	for _, d := range want {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", nil, err
		}
	}
	if in == filepath.Join(tempBase, "input") && out == filepath.Join(tempBase, "output") {
		return tempBase, func() {}, nil
	}
	dir, err = os.MkdirTemp("", "fakecomfy-dirs-")
	if err != nil {
		return "", nil, err
	}
	for name, target := range want {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return "", nil, errors.Join(err, os.RemoveAll(dir))
		}
	}
	// RemoveAll removes the links, not what they point to.
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// parseModels reads "folder=a,b;folder2=c".
func parseModels(s string) (map[string][]string, error) {
	m := map[string][]string{}
	for _, part := range strings.Split(s, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		folder, files, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("-models: %q is not folder=file,file", part)
		}
		var list []string
		for _, f := range strings.Split(files, ",") {
			if f = strings.TrimSpace(f); f != "" {
				list = append(list, f)
			}
		}
		sort.Strings(list)
		m[strings.TrimSpace(folder)] = list
	}
	return m, nil
}
