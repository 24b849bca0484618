package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

// jobFlags are the job's fields as flags, defined once for every command
// that makes jobs (generate, submit). Only the flags given on the command
// line go into the job, so the job's own defaults apply to the rest.
type jobFlags struct {
	fs                        *flag.FlagSet
	image, endImage, negative string
	prompts                   stringList
	promptsFile               string
	loras                     loraFlags
	opts                      map[string]*string
	chain                     chainFlags
}

// stringList collects a repeated string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " | ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// register defines the job flags on fs.
func (g *jobFlags) register(fs *flag.FlagSet) {
	g.fs = fs
	fs.StringVar(&g.image, "image", "", "input image: a file (JPEG, PNG, WebP) or an http(s) URL")
	fs.StringVar(&g.endImage, "end-image", "", "end frame (first-last-frame video): a file or an http(s) URL")
	fs.Var(&g.prompts, "prompt", "what the video should show; repeated, a chain of clips (each from the last frame of the one before)")
	fs.StringVar(&g.promptsFile, "prompts", "", "a file of prompts, one a line: a chain of clips")
	fs.StringVar(&g.negative, "negative-prompt", "", "what to avoid (default: WAN's standard negative prompt)")
	fs.Var(&g.loras, "lora", "extra LoRA NAME[:STRENGTH[:EXPERT]] (repeatable; expert both, high or low)")
	fs.Var(loraURLFlag{&g.loras}, "lora-url", "extra LoRA downloaded from an http(s) URL of a .safetensors file (repeatable; strength 1, both experts)")
	g.opts = map[string]*string{}
	for _, o := range optionFlags {
		v := &optValue{bool: o.kind == "bool"}
		g.opts[o.name] = &v.s
		fs.Var(v, o.name, o.help)
	}
	g.chain.register(fs)
}

// given reports which flags the command line set.
func (g *jobFlags) given() map[string]bool {
	given := map[string]bool{}
	g.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return given
}

// promptList is the prompts of --prompt (repeated) or --prompts FILE.
func (g *jobFlags) promptList() ([]string, error) {
	if g.promptsFile == "" {
		return g.prompts, nil
	}
	if len(g.prompts) > 0 {
		return nil, fmt.Errorf("give --prompt or --prompts, not both")
	}
	b, err := os.ReadFile(g.promptsFile)
	if err != nil {
		return nil, fmt.Errorf("--prompts: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--prompts: %s has no prompt", g.promptsFile)
	}
	return out, nil
}

// loraFlags collects repeated --lora NAME[:STRENGTH[:EXPERT]].
type loraFlags []map[string]any

func (l *loraFlags) String() string { return "" }

func (l *loraFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) > 3 || parts[0] == "" {
		return fmt.Errorf("want NAME[:STRENGTH[:EXPERT]], got %q", v)
	}
	m := map[string]any{"name": parts[0]}
	if len(parts) > 1 && parts[1] != "" {
		s, err := strconv.ParseFloat(parts[1], 64)
		if err != nil {
			return fmt.Errorf("strength %q is not a number", parts[1])
		}
		m["strength"] = s
	}
	if len(parts) > 2 && parts[2] != "" {
		m["expert"] = parts[2]
	}
	*l = append(*l, m)
	return nil
}

// loraURLFlag adds repeated --lora-url URL to the same list, as {"url": URL}
// (strength 1, both experts).
type loraURLFlag struct{ l *loraFlags }

func (f loraURLFlag) String() string { return "" }

func (f loraURLFlag) Set(v string) error {
	*f.l = append(*f.l, map[string]any{"url": v})
	return nil
}

// optValue is a job option flag's text; a bool option may be given bare.
type optValue struct {
	s    string
	bool bool
}

func (v *optValue) String() string     { return v.s }
func (v *optValue) Set(s string) error { v.s = s; return nil }
func (v *optValue) IsBoolFlag() bool   { return v.bool }

// optionFlags are the job's options; each is a string so that "given" can be
// told from "default", and its value is passed as the JSON type the contract
// wants (validation then reports bad values exactly as for an API job).
var optionFlags = []struct{ name, kind, help string }{
	{"width", "int", "video width (multiple of 16); default from the image's aspect ratio"},
	{"height", "int", "video height (multiple of 16); default from the image's aspect ratio"},
	{"resolution", "string", "480p, 580p or 720p: the short side (instead of --width/--height)"},
	{"aspect-ratio", "string", "auto (the image's), 16:9, 9:16, 1:1, 4:3 or 3:4"},
	{"preset", "string", "fast, balanced or quality: defaults for steps, cfg, shift and the step-distill LoRA"},
	{"fit", "string", "crop, pad or stretch"},
	{"length", "int", "frames, 4k+1 (81 = 5 s at 16 fps)"},
	{"steps", "int", "sampling steps over both experts"},
	{"split-step", "int", "first step on the low-noise expert"},
	{"cfg", "float", "CFG scale"},
	{"cfg-high", "float", "CFG scale of the high-noise expert (default: --cfg)"},
	{"cfg-low", "float", "CFG scale of the low-noise expert (default: --cfg)"},
	{"distill-lora", "string", "where the step-distill LoRA goes: both, low or none"},
	{"shift", "float", "sigma shift of both experts"},
	{"sampler", "string", "sampler name"},
	{"scheduler", "string", "scheduler name"},
	{"frame-rate", "float", "frames per second of the MP4 (with --interpolate: after interpolation)"},
	{"interpolate", "interpolate", "raise the frame rate after generation: FACTOR[:METHOD], factor 2-4, method ffmpeg"},
	{"seed", "uint", "seed (random when absent)"},
	{"crf", "int", "H.264 quality, 0-51 (lower is better)"},
	{"video-quality", "string", "low, medium, high or maximum (a CRF; --crf wins)"},
	{"last-frame", "bool", "also write the last frame as PNG next to the video"},
}

func generateCommand() *command {
	c := &command{
		name:    "generate",
		usage:   "generate --image PATH|URL --prompt TEXT [--prompt TEXT ...] [option flags] -o out.mp4",
		summary: "run one job (or a chain of clips) end to end on ComfyUI (started by the worker, or --comfy-url) with a progress bar",
	}
	c.run = func(ctx context.Context, env *Env, args []string) int {
		fs := newFlagSet(env, c)
		var g jobFlags
		g.register(fs)
		out := fs.String("o", "out.mp4", "output MP4 file")
		id := fs.String("id", "", "job id (default: generate-<time>)")
		cfg, code, ok := parseConfigFlags(env, fs, c.name, args)
		if !ok {
			return code
		}
		prompts, err := g.promptList()
		if err != nil {
			fmt.Fprintf(env.Stderr, "generate: %v\n", err)
			return exitInvalid
		}
		if g.image == "" || len(prompts) == 0 {
			fmt.Fprintln(env.Stderr, "generate: --image and --prompt are required")
			fs.Usage()
			return exitInvalid
		}
		input, err := g.input(prompts[0])
		if err != nil {
			fmt.Fprintf(env.Stderr, "generate: %v\n", err)
			return exitInvalid
		}
		input["options"].(map[string]any)["output"] = "volume"
		return generate(ctx, env, cfg, generateRun{out: *out, id: *id, prompts: prompts, chain: g.chain, args: args}, input)
	}
	return c
}

// input builds the job input for one prompt from the flags: a local image
// is read and sent as base64, a URL is passed through.
func (g *jobFlags) input(prompt string) (map[string]any, error) {
	in := map[string]any{"prompt": prompt}
	var err error
	if in["image"], err = imageField(g.image, "the image"); err != nil {
		return nil, err
	}
	if g.endImage != "" {
		if in["end_image"], err = imageField(g.endImage, "the end image"); err != nil {
			return nil, err
		}
	}
	if g.negative != "" {
		in["negative_prompt"] = g.negative
	}
	given := g.given()
	o := map[string]any{}
	for _, f := range optionFlags {
		if !given[f.name] {
			continue
		}
		v, err := flagValue(f.kind, *g.opts[f.name])
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", f.name, err)
		}
		o[strings.ReplaceAll(f.name, "-", "_")] = v
	}
	if len(g.loras) > 0 {
		o["loras"] = g.loras
	}
	in["options"] = o
	return in, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// imageField is an image flag's value in the job: a URL as it is, a file
// as base64.
func imageField(v, what string) (string, error) {
	if strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
		return v, nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", what, err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func flagValue(kind, s string) (any, error) {
	switch kind {
	case "interpolate":
		// FACTOR[:METHOD]; the job's validation checks the values.
		factor, method, hasMethod := strings.Cut(s, ":")
		n, err := strconv.ParseInt(factor, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want FACTOR[:METHOD] such as 2 or 2:ffmpeg, got %q", s)
		}
		v := map[string]any{"factor": n}
		if hasMethod {
			v["method"] = method
		}
		return v, nil
	case "int":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		return n, nil
	case "uint":
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a non-negative whole number", s)
		}
		return json.Number(strconv.FormatUint(n, 10)), nil
	case "float":
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return n, nil
	case "bool":
		if s == "" {
			return true, nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	}
	return s, nil
}

// generateRun is what generate does besides the job: where the video goes
// and the chain's prompts.
type generateRun struct {
	out, id string
	prompts []string
	chain   chainFlags
	args    []string
}

func generate(ctx context.Context, env *Env, cfg *config.Config, g generateRun, input map[string]any) int {
	out, err := filepath.Abs(g.out)
	if err != nil {
		fmt.Fprintf(env.Stderr, "generate: %v\n", err)
		return exitInvalid
	}
	// The video is delivered to the volume mode's folder, made next to the
	// output file so that the final move is a rename.
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".wan22-generate-")
	if err != nil {
		fmt.Fprintf(env.Stderr, "generate: cannot write next to %s: %v\n", out, err)
		return exitFailed
	}
	defer os.RemoveAll(tmp)
	cfg.OutputDir = tmp
	// The worker's log goes to stderr above the progress bar, quieter than
	// a server's.
	if cfg.LogLevel == "info" {
		cfg.LogLevel = "warn"
	}
	log := logging.New(env.Stderr, cfg)

	cfg, removeModels, err := worker.SelfTestModels(ctx, cfg, "", log)
	if err != nil {
		fmt.Fprintf(env.Stderr, "generate: %v\n", err)
		return exitFailed
	}
	defer removeModels()
	p, err := worker.New(cfg, worker.Options{}, log)
	if err != nil {
		fmt.Fprintf(env.Stderr, "generate: %v\n", err)
		return exitFailed
	}
	defer stopPipeline(p, log)

	bar := newJobBar()
	r := progress.NewRenderer(env.Stderr, progress.RenderOptions{Plain: !isTerminal(env.Stderr)})
	r.Add(bar)
	bar.set(progress.Progress{Stage: "starting ComfyUI"})
	id := g.id
	if id == "" {
		id = "generate-" + time.Now().UTC().Format("20060102-150405")
	}
	chain := len(g.prompts) > 1
	run := func(ctx context.Context, k int, in map[string]any, clipOut string) (map[string]any, []byte, error) {
		jobID := id
		if chain {
			jobID = fmt.Sprintf("%s-clip%d", id, k+1)
			if k > 0 {
				bar = newJobBar()
				r.Add(bar)
			}
		}
		data, err := json.Marshal(in)
		if err != nil {
			return nil, nil, err
		}
		res, err := p.Handle(ctx, jobID, data, bar.set)
		if err != nil {
			return nil, nil, err
		}
		if err := os.Rename(res.VideoPath, clipOut); err != nil {
			return nil, nil, fmt.Errorf("moving the video to %s: %w", clipOut, err)
		}
		res.VideoPath = clipOut
		var lf []byte
		if res.LastFramePath != "" {
			if lf, err = os.ReadFile(res.LastFramePath); err != nil {
				return nil, nil, err
			}
			p := lastFramePath(clipOut)
			if err := os.Rename(res.LastFramePath, p); err != nil {
				return nil, nil, fmt.Errorf("moving the last frame to %s: %w", p, err)
			}
			res.LastFramePath = p
		}
		m, err := toMap(res)
		return m, lf, err
	}
	if err := p.Start(ctx); err != nil {
		r.Stop()
		return jobFailed(ctx, env, "generate", err)
	}
	if chain {
		return runChain(ctx, env, r, chainSpec{cmd: "generate", args: g.args, prompts: g.prompts, input: input,
			out: out, flags: g.chain, report: func(err error) int {
				return jobFailed(ctx, env, "generate", err)
			}}, run)
	}
	res, _, err := run(ctx, 0, input, out)
	r.Stop()
	if err != nil {
		return jobFailed(ctx, env, "generate", err)
	}
	if err := writeJSON(env.Stdout, res); err != nil {
		return exitFailed
	}
	return exitOK
}

// heartbeat is how often the plain (non-terminal) output repeats the job's
// line, with the elapsed time, while nothing changes (a long text encode on
// CPU shows no progress for minutes).
const heartbeat = 15 * time.Second

// toMap turns a result into its JSON object.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var m map[string]any
	return m, d.Decode(&m)
}

// jobBar draws a job's progress: stage, bar, percent, sampler step, elapsed.
type jobBar struct {
	mu      sync.Mutex
	now     func() time.Time
	start   time.Time
	changed time.Time // when the stage or step last changed
	p       progress.Progress
}

func newJobBar() *jobBar { return newJobBarAt(time.Now) }

func newJobBarAt(now func() time.Time) *jobBar {
	t := now()
	return &jobBar{now: now, start: t, changed: t}
}

func (b *jobBar) set(p progress.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.Percent < b.p.Percent && p.Stage == b.p.Stage {
		p.Percent = b.p.Percent
	}
	if p.Stage != b.p.Stage || p.Step != b.p.Step {
		b.changed = b.now()
	}
	b.p = p
}

func (b *jobBar) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	const width = 30
	filled := b.p.Percent * width / 100
	var step string
	if b.p.Steps > 0 {
		step = fmt.Sprintf("  step %d/%d", b.p.Step, b.p.Steps)
	} else if b.p.Bytes > 0 {
		step = "  " + progress.Bytes(b.p.Bytes)
		if b.p.TotalBytes > 0 {
			step += "/" + progress.Bytes(b.p.TotalBytes)
		}
	}
	return fmt.Sprintf("%-16s [%s%s] %3d%%%s  %s", b.p.Stage, strings.Repeat("=", filled),
		strings.Repeat(" ", width-filled), b.p.Percent, step, b.now().Sub(b.start).Round(time.Second))
}

// Milestone makes a plain renderer print a line per stage and step, and
// again every heartbeat while they stay the same.
func (b *jobBar) Milestone() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("%s/%d/%d", b.p.Stage, b.p.Step, b.now().Sub(b.changed)/heartbeat)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
