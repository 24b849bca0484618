package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
	"github.com/wan22-worker/wan22-worker/internal/models"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// modelsDeps is what the models command runs with; tests replace the
// manifest (the real one is tens of GB), the HTTP client and the disk.
type modelsDeps struct {
	manifest     models.Manifest
	client       *http.Client
	freeSpace    models.SpaceFunc
	stallTimeout time.Duration
	backoffUnit  time.Duration
}

func defaultModelsDeps() modelsDeps {
	return modelsDeps{manifest: models.DefaultManifest()}
}

func modelsCommand() *command {
	c := &command{
		name:    "models",
		usage:   "models list|pull|verify [flags]",
		summary: "list, download (resumable, checksum-verified) and verify the model files",
	}
	c.run = func(ctx context.Context, env *Env, args []string) int {
		return runModels(ctx, env, args, defaultModelsDeps())
	}
	return c
}

func runModels(ctx context.Context, env *Env, args []string, deps modelsDeps) int {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "list":
		return modelsList(ctx, env, args[1:], deps)
	case "pull":
		return modelsPull(ctx, env, args[1:], deps)
	case "verify":
		return modelsVerify(ctx, env, args[1:], deps)
	case "-h", "--help", "help":
		fmt.Fprint(env.Stderr, "Usage: wan22-worker models list|pull|verify [flags]\n\n"+
			"The model files of the configured profile (MODEL_* settings), checked against a manifest of\n"+
			"Hugging Face files with sizes and SHA256 sums (docs/models.md).\n\n"+
			"  list    where each file is: present, missing or the wrong size, and where it was looked for\n"+
			"  pull    download what is missing into a models folder: resumable, retried, checksum-verified\n"+
			"  verify  check the size and SHA256 of every present file (exit 1 on a mismatch or a missing file)\n\n"+
			"Run 'wan22-worker models <list|pull|verify> -h' for the flags of each.\n")
		return exitOK
	}
	if sub == "" {
		fmt.Fprintln(env.Stderr, "wan22-worker models: missing subcommand: list, pull or verify")
	} else {
		fmt.Fprintf(env.Stderr, "wan22-worker models: unknown subcommand %q: use list, pull or verify\n", sub)
	}
	return exitInvalid
}

// modelsSetup is what every subcommand starts from.
type modelsSetup struct {
	cfg   *config.Config
	items []models.Item
	dirs  []string // the models folders searched
}

// modelsLoad parses the flags and configuration and lists the profile's
// files. It returns (code, false) when the command should stop.
func modelsLoad(env *Env, fs *flag.FlagSet, args []string, dir *string, only *string, deps modelsDeps) (*modelsSetup, int, bool) {
	cfg, code, ok := parseConfigFlags(env, fs, "models "+fs.Name(), args)
	if !ok {
		return nil, code, false
	}
	name := "wan22-worker models " + fs.Name()
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "%s: unexpected arguments: %s\n", name, strings.Join(fs.Args(), " "))
		return nil, exitInvalid, false
	}
	items := deps.manifest.Items(models.Wanted(cfg))
	if only != nil && *only != "" {
		var unknown []string
		items, unknown = deps.manifest.Select(items, modelsSplitList(*only))
		if len(unknown) > 0 {
			fmt.Fprintf(env.Stderr, "%s: --only %s: not a file of the configured profile nor of the manifest; known files:\n", name, strings.Join(unknown, ", "))
			for _, f := range deps.manifest {
				fmt.Fprintf(env.Stderr, "  %s\n", f.Name)
			}
			return nil, exitInvalid, false
		}
	}
	dirs := cfg.ModelsDirs
	if *dir != "" {
		dirs = []string{filepath.Clean(*dir)}
	}
	if len(dirs) == 0 {
		fmt.Fprintf(env.Stderr, "%s: no models folder: set MODELS_DIRS or pass --dir\n", name)
		return nil, exitInvalid, false
	}
	return &modelsSetup{cfg: cfg, items: items, dirs: dirs}, 0, true
}

func modelsSplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// --- list ------------------------------------------------------------------

func modelsList(ctx context.Context, env *Env, args []string, deps modelsDeps) int {
	c := &command{name: "list", usage: "models list [--dir D] [-o text|json]",
		summary: "show each file of the configured profile: present, missing or the wrong size, and where it was looked for"}
	fs := newFlagSet(env, c)
	dir := fs.String("dir", "", "models folder to look in (default: every MODELS_DIRS entry, in order)")
	out := fs.String("o", "text", "output: text or json")
	s, code, ok := modelsLoad(env, fs, args, dir, nil, deps)
	if !ok {
		return code
	}
	if *out != "text" && *out != "json" {
		fmt.Fprintf(env.Stderr, "wan22-worker models list: -o %q: use text or json\n", *out)
		return exitInvalid
	}
	paths := models.ResolvePaths(s.cfg, s.dirs, "", nil)
	statuses := models.Inspect(paths, s.items, nil)
	if *out == "json" {
		return modelsWriteJSON(env.Stdout, map[string]any{"dirs": paths.Summary(), "models": statuses})
	}
	fmt.Fprintf(env.Stdout, "Model folders (first match wins):\n")
	for _, l := range paths.Summary() {
		fmt.Fprintf(env.Stdout, "  %s\n", l)
	}
	fmt.Fprintln(env.Stdout)
	modelsWriteStatuses(env.Stdout, statuses)
	return exitOK
}

func modelsStateMark(st models.Status) (string, string) {
	switch {
	case st.State == models.StatePresent && !st.Known():
		return "?", "present"
	case st.State == models.StatePresent:
		return "✓", "present"
	case st.State == models.StateSizeMismatch:
		return "✗", "size mismatch"
	}
	return "✗", "missing"
}

func modelsWriteStatuses(w io.Writer, statuses []models.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	missing := 0
	for _, st := range statuses {
		mark, state := modelsStateMark(st)
		size := "?"
		if st.Known() && st.File.EstimatedSize() > 0 {
			size = progress.Bytes(st.File.EstimatedSize())
			if st.File.Size == 0 {
				size = "≈" + size
			}
		}
		where := st.Path
		if st.Source != "" {
			where += " (" + st.Source + ")"
		}
		if st.VolumeWhileCached() {
			where += " ! also in the Hugging Face cache (" + st.AlsoCachedRepo + ")"
		}
		switch st.State {
		case models.StateMissing:
			missing++
			where = "not found"
			if st.Partial != "" {
				where = fmt.Sprintf("partial download: %s at %s", progress.Bytes(st.PartialSize), st.Partial)
			}
		case models.StateSizeMismatch:
			missing++
			where = fmt.Sprintf("%s (%d bytes, want %d)", st.Path, st.Size, st.File.Size)
		}
		fmt.Fprintf(tw, "%s %s\t%s/%s\t%s\t%s\n", mark, state, st.Folder, st.Name, size, where)
	}
	tw.Flush()
	for _, st := range statuses {
		if !st.Known() {
			fmt.Fprintf(w, "\n%s/%s (%s): %s.\n", st.Folder, st.Name, strings.Join(st.Settings, ", "), models.UnknownNote)
			if st.State == models.StateMissing {
				fmt.Fprintln(w, "  Copy it into the folder yourself, or name a file of the manifest (docs/models.md).")
			}
		}
		if st.State == models.StateMissing {
			fmt.Fprintf(w, "\n%s/%s looked in:\n", st.Folder, st.Name)
			for _, p := range st.LookedIn {
				fmt.Fprintf(w, "  %s\n", p)
			}
		}
	}
	for _, st := range statuses {
		if st.VolumeWhileCached() {
			fmt.Fprintf(w, "\n%s/%s is read from the network volume although the Hugging Face cache has it at %s: %s.\n", st.Folder, st.Name, st.AlsoCached, models.CachedHint)
		}
	}
	if missing > 0 {
		fmt.Fprintf(w, "\n%d of %d files need downloading: run `wan22-worker models pull`.\n", missing, len(statuses))
	}
}

// --- pull ------------------------------------------------------------------

func modelsPull(ctx context.Context, env *Env, args []string, deps modelsDeps) int {
	c := &command{name: "pull", usage: "models pull [--dir D] [--layout auto|comfy|original|hf] [--hf-repo] [--parallel N] [--only NAME[,NAME]] [--hf-endpoint URL]",
		summary: "download the missing files of the configured profile from Hugging Face: resumable (.partial files), retried,\n" +
			"SHA256-verified, then renamed into place. Progress goes to stderr."}
	fs := newFlagSet(env, c)
	dir := fs.String("dir", "", "models folder to download into (default: the first MODELS_DIRS entry)")
	layout := fs.String("layout", "auto", "folder names: comfy (diffusion_models, text_encoders), original (unet, clip), auto (original when the folder already uses it), or hf (split_files/<folder>/, a Hugging Face repo to upload for RunPod's model cache)")
	hfRepo := fs.Bool("hf-repo", false, "fill --dir as a Hugging Face repo of one's own (the same as --layout hf): upload it with `huggingface-cli upload <you>/<repo> <dir>` and set it as the endpoint's cached model")
	parallel := fs.Int("parallel", 2, "files downloaded at once")
	only := fs.String("only", "", "download only these files (comma-separated names, as configured or as in the manifest)")
	stall := fs.Duration("stall-timeout", 0, "retry a download that receives nothing for this long (default 30s)")
	s, code, ok := modelsLoad(env, fs, args, dir, only, deps)
	if !ok {
		return code
	}
	if *parallel < 1 {
		fmt.Fprintln(env.Stderr, "wan22-worker models pull: --parallel must be at least 1")
		return exitInvalid
	}

	// The folder to write into: the models folder found under the first
	// entry (as the worker resolves it), else the entry itself.
	root := s.dirs[0]
	if p := modelpaths.Resolve(s.dirs[:1], nil); len(p.Roots) > 0 {
		root = p.Roots[0].Dir
	}
	var lay models.Layout
	if *hfRepo {
		*layout = string(models.LayoutHF)
	}
	switch *layout {
	case "auto":
		lay = models.DetectLayout(root, nil)
	case "comfy":
		lay = models.LayoutComfy
	case "original":
		lay = models.LayoutOriginal
	case "hf":
		lay = models.LayoutHF
	default:
		fmt.Fprintf(env.Stderr, "wan22-worker models pull: --layout %q: use auto, comfy, original or hf\n", *layout)
		return exitInvalid
	}

	// What is already there, where the worker will look (the folders; a copy in the Hugging Face cache does
	// not stop a pull into a folder).
	searched := s.dirs
	if lay == models.LayoutHF { // split_files/ is a models folder in ComfyUI's layout
		searched = []string{filepath.Join(root, "split_files")}
	}
	statuses := models.Inspect(modelpaths.Resolve(searched, nil), s.items, nil)
	var targets []models.Target
	failed := false
	for _, st := range statuses {
		label := st.Folder + "/" + st.Name
		if !st.Known() {
			if st.State == models.StateMissing {
				fmt.Fprintf(env.Stderr, "✗ %s (%s): %s; copy it into %s yourself\n", label, strings.Join(st.Settings, ", "), models.UnknownNote,
					filepath.Join(root, lay.Dir(st.Folder)))
				failed = true
			} else {
				fmt.Fprintf(env.Stderr, "? %s: present at %s, not checked: %s\n", label, st.Path, models.UnknownNote)
			}
			continue
		}
		dest, err := models.Destination(root, lay, st.Item)
		if err != nil {
			fmt.Fprintf(env.Stderr, "✗ %s: %v\n", label, err)
			failed = true
			continue
		}
		switch {
		case st.State == models.StatePresent:
			fmt.Fprintf(env.Stderr, "✓ %s: present at %s\n", label, st.Path)
			continue
		case st.State == models.StateSizeMismatch && st.Path != dest:
			fmt.Fprintf(env.Stderr, "! %s: %s has the wrong size (%d bytes, want %d) and comes first in the search order; delete it after this pull\n",
				label, st.Path, st.Size, st.File.Size)
		}
		targets = append(targets, models.Target{Item: st.Item, Dest: dest})
	}
	if len(targets) == 0 {
		if failed {
			return exitFailed
		}
		fmt.Fprintln(env.Stderr, "Nothing to download.")
		return exitOK
	}

	d := &models.Downloader{Client: deps.client, Endpoint: s.cfg.HFEndpoint, Token: s.cfg.HFToken,
		StallTimeout: deps.stallTimeout, BackoffUnit: deps.backoffUnit}
	if *stall > 0 {
		d.StallTimeout = *stall
	}
	var total int64
	for _, t := range targets {
		total += t.File.EstimatedSize()
	}
	fmt.Fprintf(env.Stderr, "Downloading %d file(s), %s, into %s (%s layout) from %s\n",
		len(targets), progress.Bytes(total), root, lay, strings.TrimRight(s.cfg.HFEndpoint, "/"))

	opts := models.PullOptions{Parallel: *parallel, FreeSpace: deps.freeSpace}
	if err := models.CheckSpace(targets, opts); err != nil {
		modelsPrintError(env.Stderr, "models pull", err)
		return exitFailed
	}
	view := newModelsPullView(env.Stderr, targets)
	res, err := d.Pull(ctx, targets, opts, view.event)
	view.stop()
	if err != nil && res == nil {
		// Refused before starting (disk space) or nothing could start.
		modelsPrintError(env.Stderr, "models pull", err)
		return exitFailed
	}
	for _, r := range res {
		if r.Err != nil {
			failed = true
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(env.Stderr, "Interrupted: partial downloads are kept (.partial files) and resume on the next pull.")
		return exitFailed
	}
	fmt.Fprintln(env.Stderr)
	for _, r := range res {
		switch {
		case r.Err != nil:
			modelsPrintError(env.Stderr, "models pull", r.Err)
		case r.Present:
			fmt.Fprintf(env.Stderr, "✓ %s: present at %s\n", r.Name, r.Dest)
		default:
			fmt.Fprintf(env.Stderr, "✓ %s: downloaded and verified: %s\n", r.Name, r.Dest)
		}
	}
	if failed {
		return exitFailed
	}
	return exitOK
}

// modelsPrintError prints an error with its hint.
func modelsPrintError(w io.Writer, cmd string, err error) {
	e := apperr.From(err)
	fmt.Fprintf(w, "✗ wan22-worker %s: %s\n", cmd, e.Error())
	if e.Hint != "" {
		fmt.Fprintf(w, "  hint: %s\n", e.Hint)
	}
}

// modelsPullView draws a pull: one bar per file and a total, redrawn in place on
// a terminal, or plain lines otherwise.
type modelsPullView struct {
	r     *progress.Renderer
	mu    sync.Mutex
	bars  map[string]*progress.Bar
	done  map[string]int64
	sizes map[string]int64
	total *progress.Bar
}

func newModelsPullView(w io.Writer, targets []models.Target) *modelsPullView {
	tty, width := modelsTerminal(w)
	v := &modelsPullView{r: progress.NewRenderer(w, progress.RenderOptions{Plain: !tty, Width: width, Interval: modelsPlainInterval(tty)}),
		bars: map[string]*progress.Bar{}, done: map[string]int64{}, sizes: map[string]int64{}}
	var sum int64
	for _, t := range targets {
		b := progress.NewBar(t.Name, t.File.Size, 0)
		v.bars[t.Name] = b
		v.sizes[t.Name] = t.File.EstimatedSize()
		sum += t.File.EstimatedSize()
		v.r.Add(b)
	}
	if len(targets) > 1 {
		v.total = progress.NewBar("total", sum, 0)
		v.r.Add(v.total)
	}
	return v
}

func modelsPlainInterval(tty bool) time.Duration {
	if tty {
		return 0
	}
	return time.Second
}

func (v *modelsPullView) event(e models.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	b := v.bars[e.Name]
	if b == nil {
		return
	}
	if e.Total > 0 && e.Total != v.sizes[e.Name] {
		v.sizes[e.Name] = e.Total
		b.SetTotal(e.Total)
		if v.total != nil {
			var sum int64
			for _, s := range v.sizes {
				sum += s
			}
			v.total.SetTotal(sum)
		}
	}
	switch e.Phase {
	case models.PhaseHashing:
		b.SetStatus("checking the partial download")
		b.Set(e.Done)
		return // hashed bytes are not downloaded bytes yet
	case models.PhaseDownloading:
		b.SetStatus("")
		b.Set(e.Done)
	case models.PhaseRestarted:
		b.Set(0)
		v.r.Println(fmt.Sprintf("! %s: the server ignored the range request; starting again from zero", e.Name))
	case models.PhaseRetrying:
		b.SetStatus(fmt.Sprintf("retry %d", e.Attempt))
		v.r.Println(fmt.Sprintf("! %s: %v; retrying (%d)", e.Name, e.Err, e.Attempt))
	case models.PhaseDone:
		b.Set(e.Done)
		b.Finish("✓ verified")
	case models.PhaseFailed:
		b.Finish("✗ failed")
	case models.PhasePresent:
		b.Set(e.Done)
		b.Finish("✓ present")
	}
	v.done[e.Name] = e.Done
	if v.total != nil {
		var sum int64
		for _, d := range v.done {
			sum += d
		}
		v.total.Set(sum)
	}
}

func (v *modelsPullView) stop() {
	if v.total != nil {
		v.total.Finish("")
	}
	v.r.Stop()
}

// modelsTerminal reports whether w is a terminal, and its width.
func modelsTerminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		width = 0
	}
	return true, width
}

// --- verify ----------------------------------------------------------------

// modelsVerified is one line of `models verify`.
type modelsVerified struct {
	models.Status
	Result string `json:"result"` // ok, mismatch, missing, unverifiable, error
	Error  string `json:"error,omitempty"`
}

func modelsVerify(ctx context.Context, env *Env, args []string, deps modelsDeps) int {
	c := &command{name: "verify", usage: "models verify [--dir D] [--only NAME[,NAME]] [--parallel N] [-o text|json]",
		summary: "check the size and SHA256 of every file of the configured profile where the worker finds it;\nexit 1 when one is missing or does not match"}
	fs := newFlagSet(env, c)
	dir := fs.String("dir", "", "models folder to check (default: every MODELS_DIRS entry, in order)")
	only := fs.String("only", "", "check only these files (comma-separated)")
	parallel := fs.Int("parallel", 1, "files hashed at once")
	out := fs.String("o", "text", "output: text or json")
	s, code, ok := modelsLoad(env, fs, args, dir, only, deps)
	if !ok {
		return code
	}
	if *out != "text" && *out != "json" {
		fmt.Fprintf(env.Stderr, "wan22-worker models verify: -o %q: use text or json\n", *out)
		return exitInvalid
	}
	statuses := models.Inspect(models.ResolvePaths(s.cfg, s.dirs, "", nil), s.items, nil)
	results := make([]modelsVerified, len(statuses))

	tty, width := modelsTerminal(env.Stderr)
	r := progress.NewRenderer(env.Stderr, progress.RenderOptions{Plain: !tty, Width: width, Interval: modelsPlainInterval(tty)})
	var g errgroup.Group
	g.SetLimit(max(*parallel, 1))
	for i, st := range statuses {
		results[i] = modelsVerified{Status: st}
		switch {
		case st.State == models.StateMissing:
			results[i].Result = "missing"
			continue
		case !st.Known():
			results[i].Result = "unverifiable"
			continue
		}
		bar := progress.NewBar(st.Name, st.Size, 0)
		bar.SetStatus("hashing")
		r.Add(bar)
		g.Go(func() error {
			err := models.VerifyFile(ctx, st.Path, *st.File, bar.Set)
			var se *models.SizeError
			var ce *models.ChecksumError
			switch {
			case err == nil:
				results[i].Result = "ok"
				bar.Finish("✓ ok")
			case errors.As(err, &se), errors.As(err, &ce):
				results[i].Result, results[i].Error = "mismatch", err.Error()
				bar.Finish("✗ mismatch")
			default:
				results[i].Result, results[i].Error = "error", err.Error()
				bar.Finish("✗ error")
			}
			return nil
		})
	}
	_ = g.Wait()
	r.Stop()
	if ctx.Err() != nil {
		fmt.Fprintln(env.Stderr, "Interrupted.")
		return exitFailed
	}

	okAll := true
	for _, v := range results {
		if v.Result != "ok" && v.Result != "unverifiable" {
			okAll = false
		}
	}
	if *out == "json" {
		if code := modelsWriteJSON(env.Stdout, map[string]any{"models": results, "ok": okAll}); code != exitOK {
			return code
		}
	} else {
		modelsWriteVerified(env.Stdout, results)
	}
	if !okAll {
		return exitFailed
	}
	return exitOK
}

func modelsWriteVerified(w io.Writer, results []modelsVerified) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range results {
		mark := map[string]string{"ok": "✓", "unverifiable": "?"}[v.Result]
		if mark == "" {
			mark = "✗"
		}
		detail := v.Path
		if v.Source != "" {
			detail += " (" + v.Source + ")"
		}
		if v.VolumeWhileCached() {
			detail += " ! also in the Hugging Face cache (" + v.AlsoCachedRepo + ")"
		}
		switch v.Result {
		case "missing":
			detail = "not found (looked in " + strings.Join(v.LookedIn, ", ") + ")"
		case "unverifiable":
			detail = v.Path + ": " + models.UnknownNote
		case "mismatch", "error":
			detail = v.Error
		}
		fmt.Fprintf(tw, "%s %s\t%s/%s\t%s\n", mark, v.Result, v.Folder, v.Name, detail)
	}
	tw.Flush()
	for _, v := range results {
		switch v.Result {
		case "missing":
			fmt.Fprintf(w, "\n%s is missing: run `wan22-worker models pull`.\n", v.Name)
		case "mismatch":
			fmt.Fprintf(w, "\n%s does not match the manifest: delete %s and run `wan22-worker models pull`.\n", v.Name, v.Path)
		}
		if v.VolumeWhileCached() {
			fmt.Fprintf(w, "\n%s/%s is read from the network volume although the Hugging Face cache has it at %s: %s.\n", v.Folder, v.Name, v.AlsoCached, models.CachedHint)
		}
	}
}

func modelsWriteJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFailed
	}
	return exitOK
}
