package cli

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/endpoint"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// exitInterrupted is the exit code after Ctrl-C.
const exitInterrupted = 130

// submitFlags are submit's own flags.
type submitFlags struct {
	endpoint, apiURL, out, resume string
	batch, outDir, state          string
	concurrency                   int
	poll                          time.Duration
}

func submitCommand() *command {
	c := &command{
		name: "submit",
		usage: "submit (--endpoint ID | --api-url URL) --image PATH|URL --prompt TEXT [--prompt TEXT ...] [option flags] -o out.mp4\n" +
			"       wan22-worker submit (--endpoint ID | --api-url URL) [flags] JOB.json -o out.mp4\n" +
			"       wan22-worker submit (--endpoint ID | --api-url URL) --resume JOB_ID -o out.mp4\n" +
			"       wan22-worker submit (--endpoint ID | --api-url URL) --batch JOBS.jsonl --out-dir DIR [--concurrency N]",
		summary: "send a job (or a chain of clips, or a batch) to a deployed endpoint or to `serve --api`, " +
			"follow its progress and write the MP4",
	}
	c.run = func(ctx context.Context, env *Env, args []string) int {
		fs := newFlagSet(env, c)
		var g jobFlags
		g.register(fs)
		var sf submitFlags
		fs.StringVar(&sf.endpoint, "endpoint", "", "RunPod endpoint id (https://api.runpod.ai/v2/<id>); the key comes from RUNPOD_API_KEY")
		fs.StringVar(&sf.apiURL, "api-url", "", "base URL of a local API (serve --api), e.g. http://127.0.0.1:8000; the token comes from API_TOKEN")
		fs.StringVar(&sf.out, "o", "out.mp4", "output MP4 file")
		fs.StringVar(&sf.resume, "resume", "", "attach to this job (running or finished) instead of submitting one, and fetch its result")
		fs.StringVar(&sf.batch, "batch", "", "a JSON Lines file of jobs, one {\"input\": {...}} a line")
		fs.StringVar(&sf.outDir, "out-dir", "", "batch: folder for the MP4s, result JSONs and the state file")
		fs.StringVar(&sf.state, "state", "", "batch: the state file (default <out-dir>/batch-state.json)")
		fs.IntVar(&sf.concurrency, "concurrency", 2, "batch: jobs in flight at once")
		fs.DurationVar(&sf.poll, "poll", time.Second, "how often /status is asked")
		cfg, code, ok := parseConfigFlags(env, fs, c.name, args)
		if !ok {
			return code
		}
		client, err := sf.client(env, cfg)
		if err != nil {
			fmt.Fprintf(env.Stderr, "submit: %v\n", err)
			return exitInvalid
		}
		abort, stop := secondInterrupt(ctx)
		defer stop()
		s := &submitter{env: env, c: client, poll: sf.poll, abort: abort}
		switch {
		case sf.batch != "":
			return s.runBatch(ctx, cfg, sf)
		case sf.resume != "":
			out, err := filepath.Abs(sf.out)
			if err != nil {
				fmt.Fprintf(env.Stderr, "submit: %v\n", err)
				return exitInvalid
			}
			wantLast := false
			if g.given()["last-frame"] {
				v, err := flagValue("bool", *g.opts["last-frame"])
				if err != nil {
					fmt.Fprintf(env.Stderr, "submit: --last-frame: %v\n", err)
					return exitInvalid
				}
				wantLast = v.(bool)
			}
			return s.single(ctx, "", sf.resume, out, wantLast)
		}
		prompts, err := g.promptList()
		if err != nil {
			fmt.Fprintf(env.Stderr, "submit: %v\n", err)
			return exitInvalid
		}
		var input map[string]any
		switch {
		case fs.NArg() > 0:
			if len(prompts) > 0 || g.image != "" {
				fmt.Fprintln(env.Stderr, "submit: give a job file or --image and --prompt, not both")
				return exitInvalid
			}
			data, name, err := readInput(env, fs.Args())
			if err != nil {
				fmt.Fprintf(env.Stderr, "submit: %v\n", err)
				return exitInvalid
			}
			if input, err = jobFileInput(data, filepath.Dir(name)); err != nil {
				fmt.Fprintf(env.Stderr, "submit: %s: %v\n", name, err)
				return exitInvalid
			}
		case g.image == "" || len(prompts) == 0:
			fmt.Fprintln(env.Stderr, "submit: --image and --prompt (or a job file) are required")
			fs.Usage()
			return exitInvalid
		default:
			if input, err = g.input(prompts[0]); err != nil {
				fmt.Fprintf(env.Stderr, "submit: %v\n", err)
				return exitInvalid
			}
		}
		// The local checks of `validate`, so that a bad file fails before
		// any network call.
		if err := checkLocally(ctx, cfg, input); err != nil {
			printValidationErrors(env, err)
			return exitInvalid
		}
		out, err := filepath.Abs(sf.out)
		if err != nil {
			fmt.Fprintf(env.Stderr, "submit: %v\n", err)
			return exitInvalid
		}
		wantLast, _ := optionsOf(input)["last_frame"].(bool)
		if len(prompts) > 1 {
			s.r = newRenderer(env)
			return runChain(ctx, env, s.r, chainSpec{cmd: "submit", args: args, prompts: prompts, input: input,
				out: out, flags: g.chain, report: s.report}, s.clip)
		}
		body, err := json.Marshal(map[string]any{"input": input})
		if err != nil {
			fmt.Fprintf(env.Stderr, "submit: %v\n", err)
			return exitFailed
		}
		return s.single(ctx, string(body), "", out, wantLast)
	}
	return c
}

// client returns the endpoint client the flags name.
func (sf *submitFlags) client(env *Env, cfg *config.Config) (*endpoint.Client, error) {
	o := endpoint.Options{}
	switch {
	case sf.endpoint != "" && sf.apiURL != "":
		return nil, errors.New("give --endpoint or --api-url, not both")
	case sf.endpoint != "":
		o.Base = endpoint.RunPodBase + "/" + sf.endpoint
		o.Token = env.Getenv("RUNPOD_API_KEY")
		if o.Token == "" {
			return nil, errors.New("RUNPOD_API_KEY is not set: export your RunPod API key (runpod.io → Settings → API Keys)")
		}
	case sf.apiURL != "":
		if !isURL(sf.apiURL) {
			return nil, fmt.Errorf("--api-url %q: want http://host:port", sf.apiURL)
		}
		o.Base = sf.apiURL
		o.Token = cfg.APIToken
	default:
		return nil, errors.New("say where to send the job: --endpoint <RunPod endpoint id> or --api-url http://host:8000")
	}
	o.OnRetry = func(op string, attempt int, wait time.Duration, err error) {
		fmt.Fprintf(env.Stderr, "submit: %v; retry %d in %s\n", err, attempt, wait.Round(100*time.Millisecond))
	}
	return endpoint.New(o), nil
}

// secondInterrupt returns a context cancelled by the second SIGINT or
// SIGTERM (the first cancels ctx, in main): the second means "quit now".
func secondInterrupt(ctx context.Context) (context.Context, func()) {
	abort, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-ch:
				if n++; n >= 2 {
					cancel()
				}
			case <-done:
				return
			}
		}
	}()
	return abort, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

// jobFileInput reads a job file's input; a local image path in it (relative
// to the file's folder) is read and sent as base64.
func jobFileInput(data []byte, dir string) (map[string]any, error) {
	req, err := job.DecodeRequest(data)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(strings.NewReader(string(req.Input)))
	d.UseNumber()
	var in map[string]any
	if err := d.Decode(&in); err != nil {
		return nil, err
	}
	if img, ok := in["image"].(string); ok && looksLikePath(img) {
		p := img
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if b, err := os.ReadFile(p); err == nil {
			in["image"] = base64.StdEncoding.EncodeToString(b)
		}
	}
	return in, nil
}

// looksLikePath tells a file name from base64, a data: URI or a URL.
func looksLikePath(s string) bool {
	return len(s) < 4096 && !isURL(s) && !strings.HasPrefix(s, "data:") &&
		strings.ContainsAny(s, "./") && !strings.ContainsAny(s, "\n=")
}

func optionsOf(input map[string]any) map[string]any {
	o, _ := input["options"].(map[string]any)
	return o
}

// checkLocally runs validate's checks on the input; an image URL is not
// fetched (the endpoint does that).
func checkLocally(ctx context.Context, cfg *config.Config, input map[string]any) error {
	data, err := json.Marshal(map[string]any{"input": input})
	if err != nil {
		return err
	}
	req, err := job.DecodeRequest(data)
	if err != nil {
		return err
	}
	_, err = job.Parse(ctx, "local-check", req.Input, job.LimitsFrom(cfg), nil)
	if e := apperr.As(err); e != nil && e.Code == apperr.ImageFetchFailed && e.Field == "image" {
		if img, _ := input["image"].(string); isURL(img) {
			return nil
		}
	}
	return err
}

// printValidationErrors prints every problem on stderr and the errors JSON
// (as `validate` prints it) on stdout.
func printValidationErrors(env *Env, err error) {
	var list apperr.List
	if !errors.As(err, &list) {
		list = apperr.List{apperr.From(err)}
	}
	for _, e := range list {
		fmt.Fprintf(env.Stderr, "submit: %s\n", e.Error())
		if e.Hint != "" {
			fmt.Fprintf(env.Stderr, "  hint: %s\n", e.Hint)
		}
	}
	fmt.Fprintln(env.Stderr, "submit: nothing was sent")
	_ = writeJSON(env.Stdout, map[string]any{"errors": list})
}

// submitter sends jobs to one endpoint and follows them.
type submitter struct {
	env    *Env
	c      *endpoint.Client
	poll   time.Duration
	abort  context.Context // cancelled by a second Ctrl-C
	r      *progress.Renderer
	quiet  bool // batch: no progress bars
	detach bool // batch: Ctrl-C leaves jobs running (a re-run re-attaches)
}

func newRenderer(env *Env) *progress.Renderer {
	return progress.NewRenderer(env.Stderr, progress.RenderOptions{Plain: !isTerminal(env.Stderr)})
}

// interruptedError is a job cancelled by Ctrl-C.
type interruptedError struct {
	id        string
	cancelled bool // the endpoint confirmed the cancel
}

func (e *interruptedError) Error() string {
	if e.cancelled {
		return fmt.Sprintf("interrupted: job %s was cancelled on the endpoint", e.id)
	}
	return fmt.Sprintf("interrupted: job %s may still be running on the endpoint (fetch it with --resume %s)", e.id, e.id)
}

// single submits one job (or, with id set, attaches to it), waits for it,
// saves its result and prints it.
func (s *submitter) single(ctx context.Context, body, id, out string, wantLast bool) int {
	s.r = newRenderer(s.env)
	res, _, err := s.job(ctx, body, id, out, wantLast)
	s.r.Stop()
	if err != nil {
		return s.report(err)
	}
	return s.printResult(res, out)
}

// clip is the clipRunner of a chain on the endpoint.
func (s *submitter) clip(ctx context.Context, k int, input map[string]any, out string) (map[string]any, []byte, error) {
	body, err := json.Marshal(map[string]any{"input": input})
	if err != nil {
		return nil, nil, err
	}
	wantLast, _ := optionsOf(input)["last_frame"].(bool)
	return s.job(ctx, string(body), "", out, wantLast)
}

// job runs one job to its end: submit (unless id is given), wait, save.
func (s *submitter) job(ctx context.Context, body, id, out string, wantLast bool) (map[string]any, []byte, error) {
	if id == "" {
		// A submission that has started is finished even after Ctrl-C, so
		// that its id is known and the job can be cancelled.
		st, err := s.c.Run(context.WithoutCancel(ctx), []byte(body))
		if err != nil {
			return nil, nil, err
		}
		id = st.ID
		s.r.Println(fmt.Sprintf("job %s submitted to %s", id, s.c.Base()))
	} else {
		s.r.Println(fmt.Sprintf("attaching to job %s at %s", id, s.c.Base()))
	}
	st, err := s.wait(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if st.Status != endpoint.Completed {
		return nil, nil, jobError(st)
	}
	return s.save(ctx, st, out, wantLast)
}

// wait follows the job until it ends, drawing its progress. The first
// Ctrl-C (ctx done) cancels the job on the endpoint; the second quits.
func (s *submitter) wait(ctx context.Context, id string) (*endpoint.Status, error) {
	q := &queueLine{id: id, start: time.Now()}
	if !s.quiet {
		s.r.Add(q)
	}
	var bar *jobBar
	useStream := true
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		st, err := s.c.Status(ctx, id)
		if ctx.Err() != nil {
			return s.interrupted(id)
		}
		if err != nil {
			return nil, fmt.Errorf("following job %s (it may still be running; attach again with --resume %s): %w", id, id, err)
		}
		if st.Status == endpoint.InProgress || endpoint.Final(st.Status) {
			q.started(st.DelayTime)
			// /stream has every update since the last read (the local
			// API); RunPod has the latest in /status's output.
			var ups []progress.Progress
			if useStream {
				ups, useStream = s.streamed(ctx, id)
			}
			var p progress.Progress
			if st.Status == endpoint.InProgress && json.Unmarshal(st.Output, &p) == nil && p.Stage != "" {
				ups = append(ups, p)
			}
			if bar == nil && (st.Status == endpoint.InProgress || st.Status == endpoint.Completed || len(ups) > 0) {
				bar = newJobBar()
				if !s.quiet {
					s.r.Add(bar)
				}
			}
			for _, p := range ups {
				bar.set(p)
				if !s.quiet {
					s.r.Render()
				}
			}
		}
		if endpoint.Final(st.Status) {
			if bar != nil && st.Status == endpoint.Completed {
				bar.set(progress.Progress{Stage: "done", Percent: 100})
			}
			return st, nil
		}
		select {
		case <-ctx.Done():
			return s.interrupted(id)
		case <-t.C:
		}
	}
}

// streamed returns the progress updates /stream has for the job, and
// whether /stream is worth asking again (it answers).
func (s *submitter) streamed(ctx context.Context, id string) ([]progress.Progress, bool) {
	sr, err := s.c.Stream(ctx, id)
	if err != nil {
		return nil, false
	}
	var out []progress.Progress
	for _, c := range sr.Stream {
		var p progress.Progress
		if json.Unmarshal(c.Output, &p) == nil && p.Stage != "" {
			out = append(out, p)
		}
	}
	return out, true
}

// interrupted handles Ctrl-C while following a job: the job is cancelled on
// the endpoint, or in a batch left running.
func (s *submitter) interrupted(id string) (*endpoint.Status, error) {
	if s.detach {
		return nil, &interruptedError{id: id}
	}
	return s.cancel(id)
}

// cancel cancels the job on the endpoint after Ctrl-C.
func (s *submitter) cancel(id string) (*endpoint.Status, error) {
	s.r.Println(fmt.Sprintf("cancelling job %s on the endpoint (Ctrl-C again to quit at once)", id))
	ctx, stop := context.WithTimeout(s.abort, 30*time.Second)
	defer stop()
	st, err := s.c.Cancel(ctx, id)
	if err != nil {
		if s.abort.Err() == nil {
			s.r.Println(fmt.Sprintf("cancelling job %s failed: %v", id, err))
		}
		return nil, &interruptedError{id: id}
	}
	s.r.Println(fmt.Sprintf("job %s: %s", id, st.Status))
	return nil, &interruptedError{id: id, cancelled: st.Status == endpoint.Cancelled}
}

// jobError is the typed error of a failed job's status.
func jobError(st *endpoint.Status) error {
	var out struct {
		Error *apperr.Error `json:"error"`
	}
	if json.Unmarshal(st.Output, &out) == nil && out.Error != nil && out.Error.Code != "" {
		return out.Error
	}
	code, msg, ok := strings.Cut(st.Error, ": ")
	if ok && strings.ToUpper(code) == code && !strings.Contains(code, " ") {
		return &apperr.Error{Code: apperr.Code(code), Message: msg}
	}
	msg = st.Error
	if msg == "" {
		msg = "the job ended " + st.Status
	}
	if st.Status == endpoint.Cancelled {
		return &apperr.Error{Code: apperr.Cancelled, Message: "job " + st.ID + " was cancelled"}
	}
	if st.Status == endpoint.TimedOut {
		return &apperr.Error{Code: apperr.Timeout, Message: msg, Hint: "raise the endpoint's execution timeout, or make the job shorter"}
	}
	return &apperr.Error{Code: apperr.ExecutionFailed, Message: msg}
}

// report prints err and returns the exit code: 2 for a job's input error,
// 130 after Ctrl-C, 1 for anything else.
func (s *submitter) report(err error) int {
	var ie *interruptedError
	var ee *endpoint.Error
	var ae *apperr.Error
	switch {
	case errors.As(err, &ie):
		fmt.Fprintf(s.env.Stderr, "submit: %v\n", ie)
		return exitInterrupted
	case errors.As(err, &ee):
		fmt.Fprintf(s.env.Stderr, "submit: %v\n", err)
		if h := ee.Hint(); h != "" {
			fmt.Fprintf(s.env.Stderr, "hint: %s\n", h)
		}
		return exitFailed
	case errors.As(err, &ae):
		printJobError(s.env, "submit", ae)
		if inputCode(ae.Code) {
			return exitInvalid
		}
		return exitFailed
	}
	fmt.Fprintf(s.env.Stderr, "submit: %v\n", err)
	return exitFailed
}

// save writes the result's video to out (inline base64, or downloaded from
// video_url), checks its size and SHA-256, writes the last frame when
// asked, and returns the result without base64 and the last frame's PNG.
func (s *submitter) save(ctx context.Context, st *endpoint.Status, out string, wantLast bool) (map[string]any, []byte, error) {
	d := json.NewDecoder(strings.NewReader(string(st.Output)))
	d.UseNumber()
	var res map[string]any
	if err := d.Decode(&res); err != nil || res == nil {
		return nil, nil, fmt.Errorf("job %s: the output is not a result object: %s", st.ID, st.Output)
	}
	str := func(k string) string { v, _ := res[k].(string); return v }
	switch {
	case str("video") != "":
		b, err := base64.StdEncoding.DecodeString(str("video"))
		if err != nil {
			return nil, nil, fmt.Errorf("job %s: the video is not base64: %w", st.ID, err)
		}
		if err := writeFileAtomic(out, b); err != nil {
			return nil, nil, err
		}
		delete(res, "video")
	case str("video_url") != "":
		var total int64
		if n, ok := res["size_bytes"].(json.Number); ok {
			total, _ = n.Int64()
		}
		bar := progress.NewBar(filepath.Base(out), total, 0)
		if !s.quiet {
			s.r.Add(bar)
		}
		if _, err := s.c.Download(ctx, str("video_url"), out, func(done, _ int64) { bar.Set(done) }); err != nil {
			bar.Finish("failed")
			return nil, nil, fmt.Errorf("job %s: downloading the video: %w", st.ID, err)
		}
		bar.Finish("done")
	case str("video_path") != "":
		return nil, nil, &apperr.Error{Code: apperr.OutputMissing,
			Message: fmt.Sprintf("job %s wrote the video to the endpoint's volume (%s), which submit cannot read", st.ID, str("video_path")),
			Hint:    `send the job with "options": {"output": "inline"} or "s3", or copy the file from the volume`}
	default:
		return nil, nil, &apperr.Error{Code: apperr.OutputMissing, Message: fmt.Sprintf("job %s: the result has no video", st.ID)}
	}
	if err := verify(out, res); err != nil {
		return nil, nil, fmt.Errorf("job %s: %w", st.ID, err)
	}
	res["video_path"] = out
	var png []byte
	if b64 := str("last_frame"); b64 != "" {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, nil, fmt.Errorf("job %s: the last frame is not base64: %w", st.ID, err)
		}
		png = b
		delete(res, "last_frame")
	} else if u := str("last_frame_url"); u != "" {
		tmp := lastFramePath(out) + ".download"
		if _, err := s.c.Download(ctx, u, tmp, nil); err != nil {
			return nil, nil, fmt.Errorf("job %s: downloading the last frame: %w", st.ID, err)
		}
		b, err := os.ReadFile(tmp)
		os.Remove(tmp)
		if err != nil {
			return nil, nil, err
		}
		png = b
	}
	if wantLast && png != nil {
		p := lastFramePath(out)
		if err := writeFileAtomic(p, png); err != nil {
			return nil, nil, err
		}
		res["last_frame_path"] = p
	}
	res["job_id"] = st.ID
	res["execution_ms"] = st.ExecutionTime
	res["delay_ms"] = st.DelayTime
	return res, png, nil
}

// verify checks the file against the result's size_bytes and sha256.
func verify(path string, res map[string]any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if v, ok := res["size_bytes"].(json.Number); ok {
		if want, _ := v.Int64(); want != n {
			return fmt.Errorf("the video has %d bytes, the result says %d", n, want)
		}
	}
	if want, _ := res["sha256"].(string); want != "" && !strings.EqualFold(want, hex.EncodeToString(h.Sum(nil))) {
		return fmt.Errorf("the video's SHA-256 is %s, the result says %s", hex.EncodeToString(h.Sum(nil)), want)
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".part"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// printResult prints the result JSON on stdout and a summary on stderr.
func (s *submitter) printResult(res map[string]any, out string) int {
	fmt.Fprintf(s.env.Stderr, "submit: wrote %s: %vx%v, %v frames, %v s, %v bytes; seed %v; waited %s, ran %s\n",
		out, res["width"], res["height"], res["frames"], res["duration_s"], res["size_bytes"], res["seed"],
		ms(res["delay_ms"]), ms(res["execution_ms"]))
	if p, ok := res["last_frame_path"]; ok {
		fmt.Fprintf(s.env.Stderr, "submit: last frame: %v\n", p)
	}
	if err := writeJSON(s.env.Stdout, res); err != nil {
		return exitFailed
	}
	return exitOK
}

func ms(v any) time.Duration {
	n, _ := v.(int64)
	return (time.Duration(n) * time.Millisecond).Round(100 * time.Millisecond)
}

// queueLine shows the time a job waits for a worker (IN_QUEUE), apart from
// its progress bar.
type queueLine struct {
	mu     sync.Mutex
	id     string
	start  time.Time
	waited time.Duration // set once the job has started
	done   bool
}

func (q *queueLine) started(delayMS int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done {
		return
	}
	q.done = true
	q.waited = time.Since(q.start)
	if delayMS > 0 {
		q.waited = time.Duration(delayMS) * time.Millisecond
	}
}

func (q *queueLine) String() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done {
		return fmt.Sprintf("job %s: waited for a worker %s", q.id, q.waited.Round(time.Second))
	}
	return fmt.Sprintf("job %s: waiting for a worker %s", q.id, time.Since(q.start).Round(time.Second))
}

// Milestone prints the waiting line every 5 s in plain mode.
func (q *queueLine) Milestone() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done {
		return "started"
	}
	return fmt.Sprint(int(time.Since(q.start) / (5 * time.Second)))
}
