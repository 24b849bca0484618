// Command fakecomfy runs the fake ComfyUI of internal/comfy/comfytest as a
// standalone server, for local development and integration tests:
//
//	go run ./cmd/fakecomfy --addr 127.0.0.1:8188 --step-delay 200ms
//
// Flags select the latency and one fault mode (see docs/comfyui.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("fakecomfy", flag.ContinueOnError)
	var (
		addr        = fs.String("addr", "127.0.0.1:8188", "listen address")
		dir         = fs.String("dir", "", "directory for input/, output/ and temp/ (default: a temporary one)")
		stepDelay   = fs.Duration("step-delay", 200*time.Millisecond, "time per sampler step (0: zero-latency mode)")
		nodeDelay   = fs.Duration("node-delay", 50*time.Millisecond, "time per other node")
		ffmpeg      = fs.String("ffmpeg", "ffmpeg", "ffmpeg binary used to encode the videos")
		video       = fs.String("video", "", "serve this MP4 as every video instead of encoding one")
		readyAfter  = fs.Duration("ready-after", 0, "answer 503 (or refuse connections, with -refuse) until this long after start")
		refuse      = fs.Bool("refuse", false, "with -ready-after: refuse connections instead of answering 503")
		historyWait = fs.Duration("history-delay", 0, "write history this long after the end of a run (the history race)")
		viewDelay   = fs.Duration("view-delay", 0, "delay every /view response")
		viewRate    = fs.Int64("view-rate", 0, "throttle /view bodies to this many bytes per second")
		fault       = fs.String("fault", "", "fault mode: oom, error, ws-drop, ws-drop-finish, ws-mute or crash")
		faultClass  = fs.String("fault-class", "KSamplerAdvanced", "node class where the fault fires")
		faultNode   = fs.String("fault-node", "", "node id where the fault fires (instead of -fault-class)")
		faultStep   = fs.Int("fault-step", 1, "sampler step before which the fault fires (0: at the node's start)")
		faultOnce   = fs.Bool("fault-once", false, "fire the fault in the first run only")
		missing     = fs.String("missing-nodes", "", "comma-separated node classes the server lacks (e.g. VHS_VideoCombine)")
		models      = fs.String("models", "", "model files as folder=file,file;folder=file (default: the worker's default profile)")
		verbose     = fs.Bool("v", false, "debug logging")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := comfytest.Options{
		Addr: *addr, Dir: *dir, Logger: log, StepDelay: *stepDelay, NodeDelay: *nodeDelay, FFmpeg: *ffmpeg,
		ReadyAfter: *readyAfter, RefuseUntilReady: *refuse, HistoryDelay: *historyWait,
		ViewDelay: *viewDelay, ViewBytesPerSecond: *viewRate,
		Fault: comfytest.Fault{Kind: comfytest.FaultKind(*fault), At: comfytest.Point{Class: *faultClass, Node: *faultNode, Step: *faultStep}, Once: *faultOnce},
	}
	switch opts.Fault.Kind {
	case comfytest.FaultNone, comfytest.FaultOOM, comfytest.FaultError, comfytest.FaultDropWS, comfytest.FaultDropWSFinish,
		comfytest.FaultMuteWS, comfytest.FaultCrash:
	default:
		fmt.Fprintf(os.Stderr, "fakecomfy: unknown -fault %q\n", *fault)
		return 2
	}
	if *missing != "" {
		opts.MissingNodes = strings.Split(*missing, ",")
	}
	if *models != "" {
		m, err := parseModels(*models)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakecomfy:", err)
			return 2
		}
		opts.Models = m
	}
	if *video != "" {
		b, err := os.ReadFile(*video)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakecomfy:", err)
			return 1
		}
		opts.Video = b
	}
	s, err := comfytest.Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakecomfy:", err)
		return 1
	}
	defer s.Close()
	log.Info("fake ComfyUI listening", "url", s.URL, "input", s.InputDir(), "output", s.OutputDir())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return 0
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
