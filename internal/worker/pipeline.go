package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/comfy"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/deliver"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/loracache"
	"github.com/wan22-worker/wan22-worker/internal/models"
	"github.com/wan22-worker/wan22-worker/internal/prefetch"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/startup"
	"github.com/wan22-worker/wan22-worker/internal/supervisor"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
)

// Pipeline is the Handler that runs jobs on a ComfyUI server: started and
// supervised by the worker, or attached to with COMFY_URL.
type Pipeline struct {
	cfg     *config.Config
	log     *slog.Logger
	server  supervisor.Server
	hc      *http.Client
	fetch   *job.Fetcher
	loras   *loracache.Cache
	limits  job.Limits
	profile workflow.Profile
	deliver *deliver.Deliverer

	mu        sync.Mutex // one job at a time; guards the fields below
	caps      workflow.Capabilities
	modelsErr error // the last failed check of the profile's model files

	// cleanupTimeout bounds the clean-up calls after a job.
	cleanupTimeout time.Duration

	timeline *startup.Timeline
}

// Options are the parts of a Pipeline that are not configuration; zero
// values take the defaults.
type Options struct {
	// Server is the ComfyUI to use; nil builds one from the configuration
	// (supervisor.FromConfig).
	Server supervisor.Server
	// HTTPClient talks to ComfyUI; nil uses comfy.DefaultHTTPClient.
	HTTPClient *http.Client
	// Fetcher downloads image URLs; nil builds one from the configuration.
	Fetcher *job.Fetcher
	// LoRAs downloads the LoRAs jobs give by URL; nil builds one from the
	// configuration.
	LoRAs *loracache.Cache
	// Timeline records the start-up (startup.Timeline); nil starts one now.
	Timeline *startup.Timeline
}

// New builds a pipeline. It starts nothing: call Start.
func New(cfg *config.Config, opts Options, log *slog.Logger) (*Pipeline, error) {
	server := opts.Server
	if server == nil {
		s, err := supervisor.FromConfig(cfg, log)
		if err != nil {
			return nil, err
		}
		server = s
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = comfy.DefaultHTTPClient()
	}
	fetch := opts.Fetcher
	if fetch == nil {
		fetch = job.NewFetcher(cfg)
	}
	loras := opts.LoRAs
	if loras == nil {
		lo := loracache.OptionsFrom(cfg)
		lo.Log = log.With("component", "loracache")
		loras = loracache.New(lo)
	}
	d, err := deliver.New(deliver.OptionsFrom(cfg), log.With("component", "deliver"))
	if err != nil {
		return nil, err
	}
	tl := opts.Timeline
	if tl == nil {
		tl = startup.New(time.Now())
	}
	return &Pipeline{
		cfg: cfg, log: log, server: server, hc: hc, fetch: fetch, loras: loras,
		limits: job.LimitsFrom(cfg), profile: workflow.ProfileFrom(cfg), deliver: d,
		cleanupTimeout: 10 * time.Second, timeline: tl,
	}, nil
}

// StartupTimeline returns the start-up timeline so far (startup.Report).
func (p *Pipeline) StartupTimeline() startup.Report { return p.timeline.Report() }

// startPrefetch reads the profile's model files into the page cache in the background while ComfyUI
// starts (MODELS_PREFETCH; not when attached to COMFY_URL, whose files may be elsewhere), as far as half the
// available memory holds them, and records the read in the timeline.
func (p *Pipeline) startPrefetch(ctx context.Context) {
	if !p.cfg.ModelsPrefetch || p.cfg.ComfyURL != "" {
		return
	}
	paths := models.ResolvePaths(p.cfg, nil, "", nil)
	var files []string
	for _, f := range models.Files(p.cfg) {
		if path, _ := paths.Locate(f.Folder, f.Name); path != "" {
			files = append(files, path)
		}
	}
	files = prefetch.Budget(files, prefetch.MemAvailable()/2)
	if len(files) == 0 {
		return
	}
	go func() {
		st := prefetch.Warm(ctx, files, 2)
		step := startup.Step{Name: startup.PrefetchDone, Bytes: st.Bytes, TookMS: st.Took.Milliseconds()}
		if st.Took > 0 {
			step.MBPerS = math.Round(float64(st.Bytes)/1e6/st.Took.Seconds()*10) / 10
		}
		if st.Err != nil {
			step.Note = st.Err.Error()
		}
		p.timeline.At(time.Now(), step)
		p.log.Info("model files read into the page cache", "files", st.Files, "bytes", st.Bytes, "took", st.Took.Round(time.Millisecond), "error", st.Err)
	}()
}

// markComfyUI records when the current ComfyUI process was spawned and first answered.
func (p *Pipeline) markComfyUI() {
	cur := p.server.Current()
	if cur == nil || cur.StartedAt().IsZero() {
		p.timeline.At(time.Now(), startup.Step{Name: startup.ComfyReady, Note: "attached to COMFY_URL"})
		return
	}
	p.timeline.At(cur.StartedAt(), startup.Step{Name: startup.ComfySpawned})
	ready := cur.ReadyAt()
	if ready.IsZero() {
		ready = time.Now()
	}
	p.timeline.At(ready, startup.Step{Name: startup.ComfyReady})
}

// loaderInputs maps ComfyUI's loader nodes to the input naming their file and the file's folder.
var loaderInputs = map[string][2]string{
	"UNETLoader":          {"unet_name", "diffusion_models"},
	"CLIPLoader":          {"clip_name", "text_encoders"},
	"VAELoader":           {"vae_name", "vae"},
	"LoraLoaderModelOnly": {"lora_name", "loras"},
}

// markModelLoads records each model file the warm-up's loader nodes read: the node's wall time, the file's
// size where the worker finds it (ComfyUI's search order), and the rate.
func (p *Pipeline) markModelLoads(g workflow.Graph, nodes map[string]comfy.NodeTime) {
	paths := models.ResolvePaths(p.cfg, nil, "", nil)
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return nodes[ids[i]].Start.Before(nodes[ids[j]].Start) })
	for _, id := range ids {
		n, ok := g[id]
		if !ok {
			continue
		}
		in, ok := loaderInputs[n.ClassType]
		if !ok {
			continue
		}
		name, _ := n.Inputs[in[0]].(string)
		st := startup.Step{File: in[1] + "/" + name, Node: id + " " + n.ClassType}
		if path, _ := paths.Locate(in[1], name); path != "" {
			st.Path, st.Source = path, paths.Source(path)
			if fi, err := os.Stat(path); err == nil {
				st.Bytes = fi.Size()
			}
		}
		t := nodes[id]
		p.timeline.Model(t.Start.Add(t.Took), t.Took, st)
	}
}

// Server returns the ComfyUI server the pipeline drives.
func (p *Pipeline) Server() supervisor.Server { return p.server }

// Start starts (or attaches to) ComfyUI, reads its capabilities, checks the
// model files, and warms the models up when WARMUP asks for it. It returns
// when the pipeline can take jobs. A missing model file does not fail Start:
// it is logged, and every job fails MODEL_MISSING (naming the file, the
// folder and what the server has) until the file appears — so a caller on
// RunPod learns why, instead of a worker that silently never takes jobs.
func (p *Pipeline) Start(ctx context.Context) error {
	t0 := time.Now()
	p.startPrefetch(ctx)
	if err := p.server.Start(ctx); err != nil {
		return err
	}
	p.markComfyUI()
	p.log.Info("ComfyUI is ready", "url", p.server.URL(), "took", time.Since(t0).Round(time.Millisecond))

	client := p.client()
	info, err := client.ObjectInfo(ctx)
	if err != nil {
		return err
	}
	caps := workflow.CapabilitiesFrom(info)
	p.log.Info("ComfyUI capabilities", "video_helper_suite", caps.VideoHelperSuite, "torch_compile_node", caps.TorchCompile)
	if p.profile.TorchCompile && !caps.TorchCompile {
		return apperr.New(apperr.NodeMissing, "TORCH_COMPILE=1 but this ComfyUI has no TorchCompileModel node",
			"set TORCH_COMPILE=0, or use a ComfyUI with comfy_extras/nodes_torch_compile.py (v0.3.64 has it)")
	}
	p.mu.Lock()
	p.caps = caps
	p.mu.Unlock()

	if err := p.checkProfileModels(ctx, client); err != nil {
		p.log.Error("a model file is missing: every job will fail MODEL_MISSING until it is there", "error", err)
		return nil
	}
	if p.cfg.WarmupEnabled() {
		if err := p.Warmup(ctx); err != nil {
			// A failed warm-up costs the first job its model loading; it is
			// not a reason to refuse jobs, unless ComfyUI died.
			if apperr.CodeOf(err) == apperr.ComfyCrashed {
				return err
			}
			p.log.Warn("warm-up failed; the first job will load the models", "error", err)
		}
	}
	return nil
}

// Warmup runs a minimal version of the production graph (same loaders,
// same node ids) so that the models are loaded and ComfyUI's cache keeps them
// for the first real job.
func (p *Pipeline) Warmup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	t0 := time.Now()
	p.timeline.At(t0, startup.Step{Name: startup.WarmupStarted})
	client := p.client()
	built, err := workflow.Warmup(p.profile, p.caps, "wan22_warmup.png")
	if err != nil {
		return err
	}
	name, err := client.Upload(ctx, built.ImageName, bytes.NewReader(warmupImage()))
	if err != nil {
		return err
	}
	setImage(built, name)
	var out *comfy.Outcome
	defer func() { p.cleanup(workflow.WarmupJobID, name, out) }()
	out, err = p.runOnComfy(ctx, client, comfy.RunRequest{
		PromptID: workflow.WarmupJobID, Graph: built.Graph, Stages: built.Stages(), OutputNode: built.OutputNode,
		Steps: built.Steps, Split: built.Split, ExtraPNGInfo: built.ExtraPNGInfo, OnProgress: progress.Nop,
	})
	if err != nil {
		return err
	}
	p.markModelLoads(built.Graph, out.Timings.Nodes)
	p.timeline.Mark(startup.WarmupDone)
	p.log.Info("warm-up done: models loaded", "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// Stop stops ComfyUI (when the worker started it).
func (p *Pipeline) Stop(ctx context.Context) error { return p.server.Stop(ctx) }

// Healthy reports whether the pipeline can take jobs.
func (p *Pipeline) Healthy() (bool, string) { return p.server.Healthy() }

// Handle runs one job end to end. See Handler.
func (p *Pipeline) Handle(ctx context.Context, id string, input json.RawMessage, prog progress.Func) (res *Result, err error) {
	if prog == nil {
		prog = progress.Nop
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok && p.cfg.JobTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.JobTimeout)
		defer cancel()
	}
	log := logging.WithJob(p.log, id) // requestId: RunPod's console filters on it
	t0 := time.Now()
	if p.timeline.At(t0, startup.Step{Name: startup.FirstJobTaken}) {
		p.log.Info("start-up timeline", "startup", p.timeline.Report())
	}
	var tm Timings
	lap := func(d *int64, since time.Time) time.Time {
		now := time.Now()
		*d = now.Sub(since).Milliseconds()
		return now
	}
	prog(progress.Progress{Stage: progress.Queued})

	// 1. Validate and prepare the image (no ComfyUI involved).
	j, err := job.Parse(ctx, id, input, p.limits, p.fetch)
	if err != nil {
		return nil, err
	}
	if err := p.fetchLoRAs(ctx, j, prog); err != nil {
		return nil, err
	}
	t := lap(&tm.Validate, t0)

	// 2. ComfyUI must be up and have every model file.
	if err := p.server.Ready(ctx); err != nil {
		return nil, p.comfyDown(err)
	}
	client := comfy.New(p.server.URL(), p.hc, log.With("component", "comfy"))
	if p.modelsErr != nil {
		if err := p.checkProfileModels(ctx, client); err != nil {
			return nil, err
		}
	}
	if refs := workflow.RequestModels(j); len(refs) > 0 {
		if err := client.CheckModels(ctx, comfyRefs(refs)); err != nil {
			return nil, withField(err, "options.loras")
		}
	}

	// 3. Upload the prepared image and build the graph.
	// Waiting for ComfyUI (a restart after a crash) and checking the model
	// lists count as queueing: the job waits for the server.
	var waited int64
	t = lap(&waited, t)
	prog(progress.Progress{Stage: progress.Uploading, Percent: 1})
	name, err := client.Upload(ctx, j.UploadName(), bytes.NewReader(j.Prepared))
	if err != nil {
		return nil, p.crashOr(err)
	}
	inputs := []string{name}
	defer func() { p.removeInputs(inputs[1:]) }() // the first goes with cleanup
	endName := ""
	if j.EndPNG != nil {
		if endName, err = client.Upload(ctx, j.EndUploadName(), bytes.NewReader(j.EndPNG)); err != nil {
			p.removeInputs(inputs)
			return nil, p.crashOr(err)
		}
		inputs = append(inputs, endName)
	}
	built, err := workflow.Build(j, p.profile, p.caps)
	if err != nil {
		p.removeInputs(inputs[:1])
		return nil, err
	}
	setImage(built, name)
	setEndImage(built, endName)
	t = lap(&tm.Upload, t)

	// 4. Run it, failing fast if ComfyUI dies under the job.
	var out *comfy.Outcome
	defer func() { p.cleanup(id, name, out) }()
	out, err = p.runOnComfy(ctx, client, comfy.RunRequest{
		PromptID: id, Graph: built.Graph, Stages: built.Stages(), OutputNode: built.OutputNode,
		Steps: built.Steps, Split: built.Split, ExtraPNGInfo: built.ExtraPNGInfo, OnProgress: onComfy(prog, comfyTop(j)),
	})
	if err != nil {
		return nil, err
	}
	tm.Queue = waited + out.Timings.Queued.Milliseconds()
	tm.Inference = out.Timings.Execution.Milliseconds()
	t = time.Now()
	log.Debug("ComfyUI finished", "queued", out.Timings.Queued, "execution", out.Timings.Execution, "cached", out.Cached)

	// 5. Fetch and deliver the video, streaming.
	var interp *deliver.Interpolation
	if in := j.Options.Interpolate; in != nil {
		prog(progress.Progress{Stage: progress.Interpolating, Percent: comfyTop(j)})
		interp = &deliver.Interpolation{Factor: in.Factor, FrameRate: j.Options.FrameRate, CRF: j.Options.CRF,
			Method: in.Method, OnProgress: onInterpolate(prog, comfyTop(j))}
	} else {
		prog(progress.Progress{Stage: progress.Delivering, Percent: 99})
	}
	body, size, err := client.Open(ctx, out.Video)
	if err != nil {
		return nil, p.crashOr(err)
	}
	defer body.Close()
	fetchStart := time.Now()
	d, err := p.deliver.Deliver(ctx, deliver.Request{
		JobID: id, Filename: out.Video.Filename, Mode: j.Options.Output, Video: body, Size: size,
		LastFrame: j.Options.LastFrame, Interpolate: interp,
	})
	if err != nil {
		return nil, p.crashOr(err)
	}
	// Fetching and delivering overlap (the /view stream is consumed by the
	// delivery); fetch is the time to the stream's first byte.
	tm.Fetch = fetchStart.Sub(t).Milliseconds()
	lap(&tm.Deliver, fetchStart)
	tm.Total = time.Since(t0).Milliseconds()
	if d.ProbeErr != nil {
		log.Warn("could not read the video's metadata; delivered it anyway", "error", d.ProbeErr)
	}

	res = &Result{
		Video: d.Video, Filename: d.Filename, PromptID: id, FilesCount: 1,
		VideoURL: d.URL, VideoPath: d.Path, MimeType: d.Info.MimeType,
		Width: d.Info.Width, Height: d.Info.Height, Frames: d.Info.Frames,
		FrameRate: round(d.Info.FrameRate, 3), DurationS: round(d.Info.Duration, 3),
		Seed: j.Options.Seed, SizeBytes: d.SizeBytes, SHA256: d.SHA256,
		LastFrame: d.LastFrame, LastFrameURL: d.LastFrameURL, LastFramePath: d.LastFramePath,
		Preset: j.Options.Preset, Options: &j.Options, SelfTest: p.cfg.SelfTest,
		Timings: tm,
	}
	if res.MimeType == "" {
		res.MimeType = out.Video.MimeType()
	}
	prog(progress.Progress{Stage: progress.Delivering, Percent: 100})
	log.Info("job done", "mode", d.Mode, "bytes", d.SizeBytes, "total_ms", tm.Total, "inference_ms", tm.Inference)
	return res, nil
}

// fetchLoRAs brings the job's URL LoRAs into the LoRA cache (downloading
// those it does not have) and records each file's checksum, which names it
// in the graph (job.LoRA.File).
func (p *Pipeline) fetchLoRAs(ctx context.Context, j *job.Job, prog progress.Func) error {
	for i := range j.Options.LoRAs {
		l := &j.Options.LoRAs[i]
		if l.URL == "" {
			continue
		}
		res, err := p.loras.Get(ctx, loracache.Request{URL: l.URL, SHA256: l.SHA256, Field: fmt.Sprintf("options.loras[%d].url", i)},
			func(done, total int64) {
				prog(progress.Progress{Stage: progress.DownloadingLoRA, Bytes: done, TotalBytes: total})
			})
		if err != nil {
			return err
		}
		l.SHA256 = res.SHA256
	}
	return nil
}

// onComfy places ComfyUI's progress (0–100 over its own stages) inside the
// job's: 0–1 are the worker's queued and uploading stages, 99–100 delivery,
// so ComfyUI's share is 2–top and the job's percent never goes back.
func onComfy(prog progress.Func, top int) progress.Func {
	return func(p progress.Progress) {
		p.Percent = 2 + min(max(p.Percent, 0), 100)*(top-2)/100
		prog(p)
	}
}

// comfyTop is where ComfyUI's share of the job's percent ends: 98, or 90
// when the video is interpolated afterwards (90–98 is interpolating).
func comfyTop(j *job.Job) int {
	if j.Options.Interpolate != nil {
		return 90
	}
	return 98
}

// onInterpolate reports the interpolation's frames as the interpolating
// stage, from top to 98 percent, then delivering at 99.
func onInterpolate(prog progress.Func, top int) func(done, total int) {
	return func(done, total int) {
		pct := top
		if total > 0 {
			pct = top + min(done, total)*(98-top)/total
		}
		prog(progress.Progress{Stage: progress.Interpolating, Percent: pct})
		if total > 0 && done >= total {
			prog(progress.Progress{Stage: progress.Delivering, Percent: 99})
		}
	}
}

// runOnComfy runs req and turns a ComfyUI death during the run into
// COMFY_CRASHED with ComfyUI's last log lines, instead of whatever the
// broken connection looked like.
func (p *Pipeline) runOnComfy(ctx context.Context, client *comfy.Client, req comfy.RunRequest) (*comfy.Outcome, error) {
	inc := p.server.Current()
	if inc == nil {
		return client.Run(ctx, req)
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	crashed := errors.New("ComfyUI exited")
	go func() {
		select {
		case <-inc.Done():
			cancel(crashed)
		case <-runCtx.Done():
		}
	}()
	out, err := client.Run(runCtx, req)
	if err == nil {
		return out, nil
	}
	if errors.Is(context.Cause(runCtx), crashed) && ctx.Err() == nil {
		return nil, p.crashErr(inc)
	}
	return nil, p.crashOr(err)
}

// crashOr returns COMFY_CRASHED when ComfyUI died (it may take a moment for
// the exit to be noticed after a connection broke), else err.
func (p *Pipeline) crashOr(err error) error {
	code := apperr.CodeOf(err)
	if code != apperr.ComfyUnavailable && code != apperr.OutputMissing && code != apperr.ExecutionFailed {
		return err
	}
	inc := p.server.Current()
	if inc == nil {
		return err
	}
	select {
	case <-inc.Done():
		return p.crashErr(inc)
	case <-time.After(2 * time.Second):
		return err
	}
}

func (p *Pipeline) crashErr(inc *supervisor.Incarnation) error {
	if e := apperr.As(inc.Err()); e != nil && e.Code == apperr.ComfyCrashed {
		p.awaitCrashCounted(inc)
		return e
	}
	return apperr.Wrap(apperr.ComfyCrashed, inc.Err(), "ComfyUI exited while running the job:\n"+p.server.LogTail(),
		"the worker restarts ComfyUI; retry the job. If it keeps happening, check ComfyUI's log (COMFY_LOG_FILE) and the GPU's memory")
}

// crashCountWait bounds how long a job that saw ComfyUI die waits for the
// supervisor to count the crash.
const crashCountWait = 2 * time.Second

// awaitCrashCounted waits until the supervisor has counted inc's crash (its
// crash event arrived), so that Healthy, asked as soon as the job returns,
// includes this crash: the job and the supervisor learn of the exit at the
// same moment on different goroutines, and without the wait the job that
// makes the worker unhealthy could be reported without stopPod. Older events
// are drained on the way. Jobs run one at a time, so this is the channel's
// one reader.
func (p *Pipeline) awaitCrashCounted(inc *supervisor.Incarnation) {
	events := p.server.Crashes()
	if events == nil {
		return
	}
	t := time.NewTimer(crashCountWait)
	defer t.Stop()
	for {
		select {
		case ev := <-events:
			if ev.Incarnation >= inc.N() {
				return
			}
		case <-t.C:
			p.log.Debug("the supervisor did not report the crash in time", "incarnation", inc.N())
			return
		}
	}
}

// comfyDown maps a failed wait for ComfyUI to a job error.
func (p *Pipeline) comfyDown(err error) error {
	if e := apperr.As(err); e != nil {
		return e
	}
	return apperr.Wrap(apperr.ComfyUnavailable, err, "ComfyUI is not ready: "+err.Error(),
		"the worker is restarting ComfyUI; retry shortly. `wan22-worker doctor` checks the installation")
}

// cleanup removes what a job left in ComfyUI: its history entry, its input
// image and its output files. It runs on a fresh context: the job's own may
// be over.
func (p *Pipeline) cleanup(promptID, input string, out *comfy.Outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cleanupTimeout)
	defer cancel()
	if err := p.client().Cleanup(ctx, promptID); err != nil {
		p.log.Debug("could not delete the prompt's history", "prompt_id", promptID, "error", err)
	}
	if input != "" {
		if err := p.server.RemoveInput(input); err != nil {
			p.log.Debug("could not remove the job's input image", "name", input, "error", err)
		}
	}
	p.cleanupOutputs(out)
}

func (p *Pipeline) cleanupOutputs(out *comfy.Outcome) {
	if out == nil {
		return
	}
	for _, f := range out.Outputs {
		if f.Type != "output" && f.Type != "temp" {
			continue
		}
		// A cached run's files belong to the earlier prompt; they are gone
		// already, or still in use by it.
		if out.Cached {
			continue
		}
		if err := p.server.RemoveOutput(f.Subfolder, f.Filename); err != nil {
			p.log.Debug("could not remove an output file", "file", f.Filename, "error", err)
		}
	}
}

// checkProfileModels checks the configured model files against the server's
// lists and remembers the outcome.
func (p *Pipeline) checkProfileModels(ctx context.Context, client *comfy.Client) error {
	err := client.CheckModels(ctx, comfyRefs(p.profile.Required()))
	p.modelsErr = err
	return err
}

func (p *Pipeline) client() *comfy.Client {
	return comfy.New(p.server.URL(), p.hc, p.log.With("component", "comfy"))
}

func comfyRefs(refs []workflow.ModelRef) []comfy.ModelRef {
	out := make([]comfy.ModelRef, len(refs))
	for i, r := range refs {
		out[i] = comfy.ModelRef{Folder: r.Folder, Name: r.Name}
	}
	return out
}

// withField sets the input field an error is about, when it names none.
func withField(err error, field string) error {
	if e := apperr.As(err); e != nil && e.Field == "" {
		c := *e
		c.Field = field
		return &c
	}
	return err
}

// removeInputs removes uploaded input images (the end frame) from ComfyUI's
// input folder.
func (p *Pipeline) removeInputs(names []string) {
	for _, n := range names {
		if err := p.server.RemoveInput(n); err != nil {
			p.log.Debug("could not remove the job's input image", "name", n, "error", err)
		}
	}
}

// setEndImage points the end-frame node at the name ComfyUI stored the end
// frame under.
func setEndImage(b *workflow.Built, name string) {
	if name == "" || name == b.EndImageName || b.EndImageNode == "" {
		return
	}
	if n, ok := b.Graph[b.EndImageNode]; ok {
		n.Inputs["image"] = name
	}
	b.EndImageName = name
}

// setImage points the graph's image node at the name ComfyUI stored the
// upload under (the same name, unless the server renamed it).
func setImage(b *workflow.Built, name string) {
	if name == "" || name == b.ImageName {
		return
	}
	if n, ok := b.Graph[b.ImageNode]; ok {
		n.Inputs["image"] = name
	}
	b.ImageName = name
}

// warmupImage is a mid-grey PNG of the warm-up graph's size.
func warmupImage() []byte {
	img := image.NewGray(image.Rect(0, 0, workflow.WarmupWidth, workflow.WarmupHeight))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(fmt.Sprintf("encoding a fixed grey PNG: %v", err)) // cannot happen with an in-memory writer
	}
	return buf.Bytes()
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}
