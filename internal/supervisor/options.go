package supervisor

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/hfcache"
	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
	"github.com/wan22-worker/wan22-worker/internal/models"
)

// Options configures a Supervisor. OptionsFrom fills it from the
// configuration; zero durations and sizes take the defaults listed per field.
type Options struct {
	ComfyDir string // ComfyUI checkout; main.py is run from it
	Python   string // interpreter (COMFY_PYTHON); default python3
	// Exec, when set, replaces "<Python> -u <ComfyDir>/main.py" as the start
	// of the command line (tests run a helper process here). The generated
	// flags follow it.
	Exec []string
	// Env is added to the worker's environment for ComfyUI.
	Env []string

	// WorkDir holds ComfyUI's input/, output/ and temp/ and the generated
	// extra_model_paths.yaml. Empty: a new temporary directory, removed by Stop.
	WorkDir string
	// LogFile receives ComfyUI's raw output (COMFY_LOG_FILE). If it cannot be
	// opened, <WorkDir>/comfyui.log is used and a warning logged. Empty: the
	// work dir's file.
	LogFile string
	// ModelsDirs are the model folders (MODELS_DIRS) wired into ComfyUI.
	ModelsDirs []string
	// Stat replaces os.Stat when resolving ModelsDirs (tests).
	Stat modelpaths.StatFunc
	// CacheHubs are Hugging Face hub caches searched for CacheFiles (MODELS_HF_CACHE, HF_HUB_CACHE,
	// HF_HOME); the files found are linked under <WorkDir>/hf-cache-models and wired into ComfyUI after
	// ModelsDirs, or before them with PreferCache (MODELS_PREFER_CACHE).
	CacheHubs   []string
	CacheFiles  []modelpaths.File
	PreferCache bool

	// Port to listen on; 0 picks a free one (kept across restarts while free).
	Port int

	VRAMMode    string   // COMFY_VRAM_MODE: "", highvram, normalvram, lowvram, novram, gpu-only, cpu
	Attention   string   // COMFY_ATTENTION: "", pytorch, split, quad, sage, flash
	Fast        string   // COMFY_FAST: "", "all", or names separated by spaces or commas
	ReserveVRAM float64  // COMFY_RESERVE_VRAM in GiB; 0 leaves ComfyUI's default
	ExtraArgs   []string // COMFY_EXTRA_ARGS, appended last

	StartTimeout time.Duration // readiness limit per start (COMFY_START_TIMEOUT); default 5m
	PollInterval time.Duration // between /system_stats probes; default 250ms
	StopGrace    time.Duration // SIGTERM → SIGKILL; default 10s

	// MaxRestarts crashes within RestartWindow are tolerated; one more makes
	// Healthy report false (COMFY_MAX_RESTARTS; 0: the first crash does).
	MaxRestarts   int
	RestartWindow time.Duration // default 10m
	BackoffMin    time.Duration // first restart delay; default 1s, doubled per consecutive crash
	BackoffMax    time.Duration // cap; default 30s
	StableAfter   time.Duration // ready this long resets the backoff; default 1m

	TailLines    int // log lines kept for error messages; default 64
	TailBytes    int // and bytes; default 16 KiB
	MaxLineBytes int // longer lines are cut in the worker's log; default 4 KiB
}

// OptionsFrom builds the options from the configuration.
func OptionsFrom(c *config.Config) Options {
	return Options{
		ComfyDir:     c.ComfyDir,
		Python:       c.ComfyPython,
		LogFile:      c.ComfyLogFile,
		ModelsDirs:   append([]string(nil), c.ModelsDirs...),
		CacheHubs:    hfcache.Hubs(c.ModelsHFCache, c.HFHubCache, c.HFHome),
		CacheFiles:   models.Files(c),
		PreferCache:  c.ModelsPreferCache,
		VRAMMode:     c.ComfyVRAMMode,
		Attention:    c.ComfyAttention,
		Fast:         c.ComfyFast,
		ReserveVRAM:  c.ComfyReserveVRAM,
		ExtraArgs:    strings.Fields(c.ComfyExtraArgs),
		StartTimeout: c.ComfyStartTimeout,
		MaxRestarts:  c.ComfyMaxRestarts,
	}
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	if o.Python == "" {
		o.Python = "python3"
	}
	def(&o.StartTimeout, 5*time.Minute)
	def(&o.PollInterval, 250*time.Millisecond)
	def(&o.StopGrace, 10*time.Second)
	def(&o.RestartWindow, 10*time.Minute)
	def(&o.BackoffMin, time.Second)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.StableAfter, time.Minute)
	defInt(&o.TailLines, 64)
	defInt(&o.TailBytes, 16<<10)
	defInt(&o.MaxLineBytes, 4<<10)
	if o.MaxRestarts < 0 {
		o.MaxRestarts = 0
	}
	return o
}

// Host is the only address ComfyUI listens on: it has no authentication.
const Host = "127.0.0.1"

// The files and folders inside the work dir.
const (
	ModelPathsFile = "extra_model_paths.yaml"
	CacheLinksDir  = "hf-cache-models" // links to the model files found in a Hugging Face cache
	InputSubdir    = "input"
	OutputSubdir   = "output"
	// UserSubdir is ComfyUI's user directory, which holds its database:
	// inside the work dir, so that a fresh checkout (no <COMFYUI_DIR>/user)
	// starts without "Failed to initialize database".
	UserSubdir   = "user"
	DatabaseFile = "comfyui.db"
)

var vramFlags = map[string]string{
	"highvram": "--highvram", "normalvram": "--normalvram", "lowvram": "--lowvram",
	"novram": "--novram", "gpu-only": "--gpu-only", "cpu": "--cpu",
}

var attentionFlags = map[string]string{
	"pytorch": "--use-pytorch-cross-attention", "split": "--use-split-cross-attention",
	"quad": "--use-quad-cross-attention", "sage": "--use-sage-attention", "flash": "--use-flash-attention",
}

// fastOptions are the values ComfyUI 0.3.64's --fast accepts.
var fastOptions = []string{"fp16_accumulation", "fp8_matrix_mult", "cublas_ops", "autotune"}

// CommandLine returns the program and arguments that start ComfyUI on port,
// with its directories under o.WorkDir. It fails on a setting ComfyUI would
// reject.
func (o Options) CommandLine(port int) ([]string, error) {
	o = o.withDefaults()
	var argv []string
	if len(o.Exec) > 0 {
		argv = append(argv, o.Exec...)
	} else {
		// -u: unbuffered, so log lines (and a dying process's traceback) reach the pipe at once.
		argv = append(argv, o.Python, "-u", filepath.Join(o.ComfyDir, "main.py"))
	}
	argv = append(argv,
		"--listen", Host, "--port", strconv.Itoa(port),
		"--disable-auto-launch",
		"--input-directory", filepath.Join(o.WorkDir, InputSubdir),
		"--output-directory", filepath.Join(o.WorkDir, OutputSubdir),
		// ComfyUI uses <temp-directory>/temp and empties it at start and exit.
		"--temp-directory", o.WorkDir,
		"--extra-model-paths-config", filepath.Join(o.WorkDir, ModelPathsFile),
		"--user-directory", filepath.Join(o.WorkDir, UserSubdir),
		"--database-url", "sqlite:///"+filepath.Join(o.WorkDir, UserSubdir, DatabaseFile),
		"--preview-method", "none",
		"--disable-metadata",
		"--disable-api-nodes",
	)
	if o.VRAMMode != "" {
		f, ok := vramFlags[o.VRAMMode]
		if !ok {
			return nil, fmt.Errorf("COMFY_VRAM_MODE=%q: must be one of highvram, normalvram, lowvram, novram, gpu-only, cpu", o.VRAMMode)
		}
		argv = append(argv, f)
	}
	if o.Attention != "" {
		f, ok := attentionFlags[o.Attention]
		if !ok {
			return nil, fmt.Errorf("COMFY_ATTENTION=%q: must be one of pytorch, split, quad, sage, flash", o.Attention)
		}
		argv = append(argv, f)
	}
	if o.ReserveVRAM > 0 {
		argv = append(argv, "--reserve-vram", strconv.FormatFloat(o.ReserveVRAM, 'f', -1, 64))
	}
	fast, err := fastArgs(o.Fast)
	if err != nil {
		return nil, err
	}
	argv = append(argv, fast...)
	argv = append(argv, o.ExtraArgs...)
	return argv, nil
}

func fastArgs(v string) ([]string, error) {
	names := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(names) == 0 {
		return nil, nil
	}
	if len(names) == 1 && names[0] == "all" {
		return []string{"--fast"}, nil
	}
	out := []string{"--fast"}
	for _, n := range names {
		ok := false
		for _, f := range fastOptions {
			ok = ok || n == f
		}
		if !ok {
			return nil, fmt.Errorf("COMFY_FAST: unknown optimization %q; use 'all' or any of %s", n, strings.Join(fastOptions, ", "))
		}
		out = append(out, n)
	}
	return out, nil
}

// freePort asks the kernel for a free loopback port. The port is released
// before ComfyUI binds it, so another process may take it first; a start
// that fails with "address already in use" is retried on a new port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether port can be bound on the loopback address now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(Host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
