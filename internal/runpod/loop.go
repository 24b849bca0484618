package runpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wan22-worker/wan22-worker/internal/result"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

// ErrUnhealthy is returned (wrapped) by Run when the handler reports itself
// unhealthy or a job would not stop: the worker has asked RunPod for a fresh
// one and should exit.
var ErrUnhealthy = errors.New("worker unhealthy")

// Run is the worker loop. It takes one job at a time from RunPod, runs it on
// h and posts the result, with the heartbeat and the stop channel running
// alongside, until ctx is cancelled (SIGTERM/SIGINT) or the worker asks to be
// replaced. On cancellation it stops taking jobs, lets the running job
// finish within ShutdownGrace (then cancels it and posts CANCELLED), and
// keeps pinging until it returns. The caller stops ComfyUI afterwards.
//
// Run returns nil after a shutdown or a REFRESH_WORKER exit, an error
// wrapping ErrUnhealthy when the handler became unhealthy, or a
// configuration error.
func Run(ctx context.Context, o Options, h worker.Handler, log *slog.Logger) error {
	if err := o.validate(); err != nil {
		return err
	}
	o = o.withDefaults()
	w := &loop{o: o, h: h, log: log, c: newClient(o), inflight: map[string]*jobState{}, workerID: o.PodID}
	if w.workerID == "" {
		w.workerID = randomID()
	}
	w.takeURL = WorkerURL(o.GetJobURL, w.workerID)
	w.stopURL = StopURL(w.takeURL)
	return w.run(ctx)
}

// loop is the state of one Run.
type loop struct {
	o        Options
	h        worker.Handler
	log      *slog.Logger
	c        *client
	workerID string
	takeURL  string
	stopURL  string

	mu       sync.Mutex
	inflight map[string]*jobState // taken jobs whose final post has not returned
}

// jobState is one taken job.
type jobState struct {
	id        string
	mu        sync.Mutex
	cancel    context.CancelCauseFunc // set while the handler runs
	stopped   bool                    // RunPod asked to stop it: post nothing
	finishing bool                    // the final post has begun: stops no longer apply
}

// stop marks the job stopped and cancels it if it runs; false once the
// final post has begun.
func (s *jobState) stop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finishing {
		return false
	}
	s.stopped = true
	if s.cancel != nil {
		s.cancel(apperr.New(apperr.Cancelled, "the job was stopped by RunPod (cancel, timeout or TTL)",
			"RunPod stops a job on /cancel, on its execution timeout and on its TTL; raise policy.executionTimeout or ttl if it ran out of time"))
	}
	return true
}

// finish marks the final post as begun and reports whether the job was stopped.
func (s *jobState) finish() (stopped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishing = true
	return s.stopped
}

func (w *loop) run(ctx context.Context) error {
	var wg sync.WaitGroup
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		stopHeartbeat()
		wg.Wait()
	}()
	if w.stopURL != "" {
		wg.Go(func() { w.pollStops(hbCtx) })
	}
	if w.o.pingEnabled() {
		wg.Go(func() { w.heartbeat(hbCtx) })
	} else {
		w.log.Warn("heartbeat off: RUNPOD_WEBHOOK_PING, RUNPOD_AI_API_KEY and RUNPOD_POD_ID are all needed")
	}
	w.log.Info("worker loop started", "worker_id", w.workerID, "stop_channel", w.stopURL != "",
		"ping_interval", w.o.PingInterval.String())

	bo := backoff{min: w.o.RetryMin, max: w.o.RetryMax}
	for ctx.Err() == nil {
		if ok, reason := w.h.Healthy(); !ok {
			w.reportUnhealthy(reason)
			return fmt.Errorf("%w: %s", ErrUnhealthy, reason)
		}
		start := time.Now()
		jobs, err := w.take(ctx)
		if ctx.Err() != nil && len(jobs) == 0 {
			break
		}
		if err != nil && len(jobs) == 0 {
			wait := bo.next()
			var rl rateLimited
			if errors.As(err, &rl) {
				wait = max(wait, w.o.RateLimitWait)
			}
			w.log.Warn("job-take failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
			sleep(ctx, wait)
			continue
		}
		bo.reset()
		if len(jobs) == 0 {
			sleep(ctx, w.o.IdlePause-time.Since(start))
			continue
		}
		exit, err := w.process(ctx, jobs)
		if err != nil {
			return err
		}
		if exit {
			w.log.Info("worker asked RunPod for a fresh worker (stopPod); exiting")
			return nil
		}
	}
	w.log.Info("worker loop stopped: shutting down")
	return nil
}

// rateLimited is a 429 from job-take.
type rateLimited struct{ status int }

func (e rateLimited) Error() string { return fmt.Sprintf("HTTP %d (rate limited)", e.status) }

// takenJob is one job of a job-take body, checked.
type takenJob struct {
	id    string
	input json.RawMessage
	bad   *apperr.Error // non-nil: the job is malformed; post this error for it
}

// take asks RunPod for a job. No job (204, 400, empty body) is (nil, nil);
// a malformed body is logged loudly; jobs without an id cannot be reported
// and are dropped after the log line.
func (w *loop) take(ctx context.Context) ([]takenJob, error) {
	u := AppendQuery(w.takeURL, "job_in_progress="+w.inProgressFlag())
	tctx, cancel := context.WithTimeout(ctx, w.o.TakeTimeout)
	defer cancel()
	status, hdr, body, err := w.c.get(tctx, u, w.o.MaxJobBytes)
	switch {
	case err != nil && status == 0:
		return nil, err
	case status == http.StatusNoContent:
		return nil, nil
	case status == http.StatusBadRequest: // FlashBoot: expected, means no job
		w.log.Debug("job-take: 400, no job")
		return nil, nil
	case status == http.StatusTooManyRequests:
		return nil, rateLimited{status}
	case status < 200 || status > 299:
		return nil, fmt.Errorf("job-take: HTTP %d: %s", status, excerpt(body))
	case err != nil:
		return nil, fmt.Errorf("job-take: reading the job: %w", err)
	}
	body = []byte(strings.TrimSpace(string(body)))
	if len(body) == 0 {
		return nil, nil
	}
	if ct, _, _ := mime.ParseMediaType(hdr.Get("Content-Type")); ct != "application/json" {
		w.log.Warn("job-take: answer is not application/json; reading it as JSON anyway", "content_type", hdr.Get("Content-Type"))
	}
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, w.malformed(body, err)
		}
		if len(raws) > 0 {
			w.log.Warn("job-take returned a batch of jobs; running them one after another", "jobs", len(raws))
		}
	} else {
		raws = []json.RawMessage{body}
	}
	var jobs []takenJob
	for _, raw := range raws {
		var j struct {
			ID    json.RawMessage `json:"id"`
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, w.malformed(raw, err)
		}
		var id string
		if err := json.Unmarshal(j.ID, &id); err != nil || id == "" {
			w.log.Error("job-take returned a job without a usable id; it cannot be run or reported",
				"body", excerpt(raw))
			continue
		}
		tj := takenJob{id: id, input: j.Input}
		if len(j.Input) == 0 || string(j.Input) == "null" {
			w.log.Error("job-take returned a job without input; reporting INVALID_INPUT for it",
				logging.RequestIDKey, id, "body", excerpt(raw))
			tj.bad = errInvalidJob(`the job has no "input"`)
		}
		jobs = append(jobs, tj)
	}
	return jobs, nil
}

func (w *loop) malformed(body []byte, err error) error {
	w.log.Error("job-take returned a body that is not a job; nothing can be run or reported",
		"err", err, "body", excerpt(body))
	return fmt.Errorf("job-take: malformed job body: %w", err)
}

// process runs the jobs of one take, one after another. It reports whether the worker must
// exit (stopPod was posted), or an error wrapping ErrUnhealthy.
func (w *loop) process(ctx context.Context, jobs []takenJob) (exit bool, err error) {
	var states []*jobState
	w.mu.Lock()
	kept := jobs[:0]
	for _, j := range jobs {
		if _, dup := w.inflight[j.id]; dup {
			w.log.Warn("job-take returned a job id this worker already holds; running it once", logging.RequestIDKey, j.id)
			continue
		}
		st := &jobState{id: j.id}
		w.inflight[j.id] = st
		states = append(states, st)
		kept = append(kept, j)
	}
	w.mu.Unlock()

	for i, j := range kept {
		if (exit || err != nil) && j.bad == nil {
			// The worker is being replaced: report the rest rather than run them.
			j.bad = apperr.New(apperr.Cancelled, "the worker is being replaced and did not start the job",
				"submit the job again; it will run on another worker")
		}
		jexit, jerr := w.runJob(ctx, j, states[i])
		exit = exit || jexit
		if jerr != nil && err == nil {
			err = jerr
		}
	}
	return exit, err
}

// runJob runs one job and posts its outcome (unless RunPod stopped it). The
// job leaves the in-flight set only after its final post returns.
func (w *loop) runJob(ctx context.Context, j takenJob, st *jobState) (exit bool, err error) {
	log := logging.WithJob(w.log, j.id)
	defer func() {
		w.mu.Lock()
		delete(w.inflight, j.id)
		w.mu.Unlock()
	}()
	start := time.Now()
	deadline := start.Add(w.o.JobTimeout)

	var out result.Outcome
	switch {
	case j.bad != nil:
		out = result.Fail(j.bad)
	case ctx.Err() != nil:
		out = result.Fail(errShutdown())
	default:
		var abandoned bool
		out, abandoned = w.execute(ctx, j, st, deadline, log)
		if abandoned {
			err = fmt.Errorf("%w: job %s did not stop after its context ended", ErrUnhealthy, j.id)
			out.StopPod = true
		}
	}
	if st.finish() {
		log.Info("job stopped by RunPod; no result posted", "elapsed_ms", time.Since(start).Milliseconds())
		return err != nil, err
	}
	if ok, reason := w.h.Healthy(); !ok {
		log.Error("worker unhealthy after the job; asking RunPod for a fresh worker", "reason", reason)
		out.StopPod = true
		if err == nil {
			err = fmt.Errorf("%w: %s", ErrUnhealthy, reason)
		}
	}
	if w.o.RefreshWorker {
		out.StopPod = true
	}
	w.postResult(j.id, out, deadline, log)
	if out.Failed() {
		log.Warn("job failed", "code", out.Err.Code, "err", out.Error, "elapsed_ms", time.Since(start).Milliseconds())
	} else {
		log.Info("job done", "elapsed_ms", time.Since(start).Milliseconds())
	}
	return out.StopPod, err
}

// execute runs the handler under the job's context: JobTimeout from take,
// stop signals, and shutdown (ShutdownGrace after ctx ends). A handler that
// does not return within AbandonAfter of its context ending is abandoned.
func (w *loop) execute(ctx context.Context, j takenJob, st *jobState, deadline time.Time, log *slog.Logger) (result.Outcome, bool) {
	jobCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	jobCtx, cancelDeadline := context.WithDeadlineCause(jobCtx, deadline, errJobTimeout(w.o.JobTimeout.String()))
	defer cancelDeadline()

	st.mu.Lock()
	stopped := st.stopped
	st.cancel = cancel
	st.mu.Unlock()
	if stopped { // stopped before it started: nothing to run, nothing to post
		return result.Fail(apperr.New(apperr.Cancelled, "the job was stopped by RunPod before it started",
			"RunPod stops a job on /cancel, on its execution timeout and on its TTL")), false
	}

	done := make(chan struct{})
	defer close(done)
	go func() { // shutdown: let the job finish within the grace, then cancel it
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		log.Info("shutting down: waiting for the running job", "grace", w.o.ShutdownGrace.String())
		t := time.NewTimer(w.o.ShutdownGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			log.Warn("shutdown grace over: cancelling the job")
			cancel(errShutdown())
		}
	}()

	ps := newProgressSender(w, j.id, log)
	type returned struct {
		res *worker.Result
		err error
	}
	results := make(chan returned, 1)
	go func() {
		res, err := result.Call(jobCtx, w.h, j.id, j.input, ps.update)
		results <- returned{res, err}
	}()
	log.Info("job started")

	var r returned
	abandoned := false
	select {
	case r = <-results:
	case <-jobCtx.Done():
		t := time.NewTimer(w.o.AbandonAfter)
		select {
		case r = <-results:
		case <-t.C:
			log.Error("the job did not stop after its context ended; abandoning it", "waited", w.o.AbandonAfter.String())
			abandoned = true
			r = returned{err: errAbandoned(w.o.AbandonAfter.String())}
		}
		t.Stop()
	}
	ps.close() // no progress post after this point
	if r.err != nil {
		if e := apperr.As(r.err); e != nil && e.Err != nil {
			log.Debug("job error cause", "cause", e.Err.Error())
		}
	}
	return result.Finish(r.res, r.err, context.Cause(jobCtx)), abandoned
}

// postResult posts the final outcome to job-done until RunPod accepts it:
// network errors, 5xx, 408 and 429 are retried with backoff until the later
// of the job's deadline and ResultWindow from now; a refused (4xx) result is
// replaced once by a small error result, never silently dropped.
func (w *loop) postResult(jobID string, out result.Outcome, deadline time.Time, log *slog.Logger) {
	u := AppendQuery(JobURL(w.o.PostOutputURL, w.workerID, jobID), "isStream=false")
	body := out.Parts()
	until := deadline
	if d := time.Now().Add(w.o.ResultWindow); d.After(until) {
		until = d
	}
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	bo := backoff{min: w.o.RetryMin, max: w.o.RetryMax}
	replaced := false
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, w.o.PostTimeout)
		status, answer, err := w.c.postJob(actx, u, jobID, body...)
		acancel()
		if err == nil && status >= 200 && status <= 299 {
			if attempt > 1 || replaced {
				log.Info("result accepted", "attempt", attempt, "bytes", size(body))
			}
			return
		}
		if isTransient(status, err) {
			wait := bo.next()
			if time.Now().Add(wait).After(until) {
				log.Error("result LOST: RunPod did not accept it before the job's deadline",
					"attempts", attempt, "status", status, "err", errText(err), "answer", answer)
				return
			}
			log.Warn("result post failed; retrying", "attempt", attempt, "status", status, "err", errText(err),
				"retry_in", wait.Round(time.Millisecond).String())
			sleep(ctx, wait)
			continue
		}
		if replaced {
			log.Error("result LOST: RunPod refused the replacement error result too",
				"status", status, "answer", answer)
			return
		}
		var e *apperr.Error
		if status == http.StatusRequestEntityTooLarge || size(body) > w.o.SmallResultBytes || namesSize(answer) {
			e = errTooLarge(size(body), status)
		} else {
			e = errRejected(status, answer)
		}
		log.Error("RunPod refused the result; posting an error result instead",
			"status", status, "bytes", size(body), "answer", answer, "code", e.Code)
		small := result.Fail(e)
		small.StopPod = out.StopPod
		body = small.Parts()
		replaced = true
		bo.reset()
	}
}

// namesSize reports whether a refusal's answer says the body was too big,
// whatever its status code (RunPod has answered 400 "payload too large").
func namesSize(answer string) bool {
	a := strings.ToLower(answer)
	for _, s := range []string{"too large", "too big", "exceeds the maximum", "maximum size", "size limit", "body limit", "payload limit"} {
		if strings.Contains(a, s) {
			return true
		}
	}
	return false
}

// size is the length of a body sent in parts.
func size(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// inProgressFlag is job_in_progress: 1 while this worker holds any job.
func (w *loop) inProgressFlag() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.inflight) > 0 {
		return "1"
	}
	return "0"
}

// inflightIDs returns the held job ids, sorted.
func (w *loop) inflightIDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.inflight))
	for id := range w.inflight {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// stopJobs applies a jobsToStop list to the held jobs.
func (w *loop) stopJobs(ids []string) {
	for _, id := range ids {
		w.mu.Lock()
		st := w.inflight[id]
		w.mu.Unlock()
		if st == nil {
			w.log.Debug("job-stop names a job this worker does not hold", logging.RequestIDKey, id)
			continue
		}
		if st.stop() {
			w.log.Info("RunPod asked to stop the job; cancelling it", logging.RequestIDKey, id)
		}
	}
}

// heartbeat pings RunPod every PingInterval with the held job ids, from its
// own goroutine so that no job work can delay it, until ctx ends.
func (w *loop) heartbeat(ctx context.Context) {
	u := WorkerURL(w.o.PingURL, w.workerID)
	t := time.NewTicker(w.o.PingInterval)
	defer t.Stop()
	failures := 0
	for {
		params := []string{}
		if ids := w.inflightIDs(); len(ids) > 0 {
			params = append(params, "job_id="+url.QueryEscape(strings.Join(ids, ",")))
		}
		params = append(params, "runpod_version="+url.QueryEscape(w.o.Version))
		pctx, cancel := context.WithTimeout(ctx, w.o.PingInterval)
		status, _, _, err := w.c.get(pctx, AppendQuery(u, params...), 4096)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil || status < 200 || status > 299:
			failures++
			lvl := slog.LevelDebug
			if failures >= 3 {
				lvl = slog.LevelWarn
			}
			w.log.Log(ctx, lvl, "ping failed", "status", status, "err", errText(err), "consecutive", failures)
		default:
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reportUnhealthy sends the SDK's unhealthy ping once (best effort).
func (w *loop) reportUnhealthy(reason string) {
	w.log.Error("worker unhealthy; asking RunPod for a fresh worker", "reason", reason)
	if !w.o.pingEnabled() {
		return
	}
	if len(reason) > 256 {
		reason = reason[:256]
	}
	u := AppendQuery(WorkerURL(w.o.PingURL, w.workerID), "status=unhealthy", "check=handler",
		"reason="+url.QueryEscape(reason), "runpod_version="+url.QueryEscape(w.o.Version))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, _, _ = w.c.get(ctx, u, 4096)
}

// pollStops long-polls the job-stop channel until ctx ends (after the last
// job's result), as the SDK does; stops for jobs not held are ignored.
func (w *loop) pollStops(ctx context.Context) {
	bo := backoff{min: time.Second, max: w.o.RetryMax}
	for ctx.Err() == nil {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, w.o.StopPollTimeout)
		status, _, body, err := w.c.get(pctx, w.stopURL, 1<<20)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil || (status != http.StatusOK && status != http.StatusNoContent):
			wait := bo.next()
			if status == http.StatusTooManyRequests {
				wait = max(wait, w.o.RateLimitWait)
			}
			w.log.Debug("job-stop poll failed", "status", status, "err", errText(err))
			sleep(ctx, wait)
			continue
		case status == http.StatusOK && len(strings.TrimSpace(string(body))) > 0:
			var msg struct {
				JobsToStop []string `json:"jobsToStop"`
			}
			if err := json.Unmarshal(body, &msg); err != nil {
				w.log.Warn("job-stop answer is not {\"jobsToStop\": [...]}; ignored", "body", excerpt(body))
			} else {
				w.stopJobs(msg.JobsToStop)
			}
		}
		bo.reset()
		sleep(ctx, w.o.StopPollMinInterval-time.Since(start))
	}
}

// excerpt is a short, log-safe view of a body.
func excerpt(b []byte) string {
	const n = 300
	if len(b) > n {
		return string(b[:n]) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return string(b)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
