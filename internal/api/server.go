// Package api is the local, RunPod-compatible HTTP API (`serve --api`): the
// client-facing routes of a RunPod Serverless endpoint (/run, /runsync,
// /status, /status-sync, /stream, /cancel, /retry, /health, /purge-queue, also under
// /v2/{endpoint_id}/) with RunPod's response shapes and job states, over a
// bounded queue that feeds one job at a time to a worker.Handler.
//
// Results and errors take the shape result.Finish gives them, the same as on
// RunPod: "output" holds the result, or {"error": {...}} next to an "error"
// string "CODE: message".
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/docs"
	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/playground"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/result"
	"github.com/wan22-worker/wan22-worker/internal/startup"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

// Job states, as RunPod names them.
const (
	InQueue    = "IN_QUEUE"
	InProgress = "IN_PROGRESS"
	Completed  = "COMPLETED"
	Failed     = "FAILED"
	Cancelled  = "CANCELLED"
	TimedOut   = "TIMED_OUT"
)

// Limits of RunPod's policy values.
const (
	maxPolicy      = 7 * 24 * time.Hour
	defaultTTL     = 24 * time.Hour
	streamBacklog  = 256 // progress chunks kept for /stream between reads
	runsyncMinWait = time.Second
	runsyncMaxWait = 300 * time.Second
)

// Server is the local API.
type Server struct {
	o    Options
	h    worker.Handler
	log  *slog.Logger
	mux  *http.ServeMux
	page http.Handler // the playground at /

	mu      sync.Mutex
	jobs    map[string]*job
	queue   []*job // IN_QUEUE jobs, oldest first
	running *job
	counts  struct{ completed, failed, retried int }
	wake    chan struct{} // a job was queued
	closing chan struct{} // closed when shutdown begins
	close   sync.Once
	hooks   sync.WaitGroup
	hookCtx context.Context
	stopHks context.CancelFunc
}

// job is one submitted job.
type job struct {
	id          string
	input       json.RawMessage
	webhook     string
	execTimeout time.Duration
	expires     time.Time // hard TTL from submission; results also expire ResultTTL after finishing
	status      string
	submitted   time.Time
	started     time.Time
	finished    time.Time
	output      json.RawMessage   // latest progress while running; the result or {"error":...} when done
	errStr      string            // "CODE: message" when it failed
	stream      []json.RawMessage // progress chunks not yet read through /stream
	retries     int
	cancel      context.CancelCauseFunc // set while running
	done        chan struct{}           // closed on reaching a final state
}

// New returns the API for h. Run or Serve starts it.
func New(o Options, h worker.Handler, log *slog.Logger) *Server {
	o = o.withDefaults()
	s := &Server{o: o, h: h, log: log, jobs: map[string]*job{}, wake: make(chan struct{}, 1),
		closing: make(chan struct{}), page: playground.Handler()}
	s.hookCtx, s.stopHks = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	for _, p := range []string{"", "/v2/{endpoint_id}"} {
		s.mux.HandleFunc("POST "+p+"/run", s.handleRun)
		s.mux.HandleFunc("POST "+p+"/runsync", s.handleRunsync)
		s.mux.HandleFunc("GET "+p+"/status/{id}", s.handleStatus)
		s.mux.HandleFunc("POST "+p+"/status/{id}", s.handleStatus)
		s.mux.HandleFunc("GET "+p+"/status-sync/{id}", s.handleStatusSync)
		s.mux.HandleFunc("POST "+p+"/status-sync/{id}", s.handleStatusSync)
		s.mux.HandleFunc("GET "+p+"/stream/{id}", s.handleStream)
		s.mux.HandleFunc("POST "+p+"/stream/{id}", s.handleStream)
		s.mux.HandleFunc("POST "+p+"/cancel/{id}", s.handleCancel)
		s.mux.HandleFunc("POST "+p+"/retry/{id}", s.handleRetry)
		s.mux.HandleFunc("GET "+p+"/health", s.handleHealth)
		s.mux.HandleFunc("POST "+p+"/purge-queue", s.handlePurge)
	}
	return s
}

// Handler returns the routes, with authentication and body limits. Jobs run
// only while Run or Serve runs. The OpenAPI document and the playground page
// need no token (the page asks for it and sends it with every API call).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openapi.json" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(docs.OpenAPI())
			return
		}
		if playground.Serves(r) {
			s.page.ServeHTTP(w, r)
			return
		}
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wan22-worker"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized: send Authorization: Bearer <API_TOKEN>"})
			return
		}
		if r.ContentLength > s.o.MaxBodyBytes {
			writeJSON(w, http.StatusRequestEntityTooLarge, s.tooLarge())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
		if _, pattern := s.mux.Handler(r); pattern == "" {
			s.noRoute(w, r)
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// noRoute answers an unknown route or method in JSON, as every route does.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: r.Method + " is not allowed on " + r.URL.Path + "; use " + strings.Join(allow, " or ")})
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody{Error: "no route " + r.URL.Path + "; see /openapi.json"})
}

// Run listens on Options.Addr and serves until ctx ends, then shuts down
// gracefully. It refuses a non-loopback address without a token.
func (s *Server) Run(ctx context.Context) error {
	if err := CheckAddr(s.o.Addr, s.o.Token, s.o.AllowInsecure); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("local API: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln and runs the jobs until ctx ends. On shutdown it stops
// accepting requests, lets the running job finish within ShutdownGrace
// (then cancels it), and gives webhooks in flight the same grace.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	runnerDone := make(chan struct{})
	go func() {
		defer close(runnerDone)
		s.runJobs()
	}()
	janitorCtx, stopJanitor := context.WithCancel(ctx)
	defer stopJanitor()
	go s.janitor(janitorCtx)

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	s.log.Info("local API listening", "addr", ln.Addr().String(), "auth", s.o.Token != "")

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	s.shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownGrace)
	defer cancel()
	_ = hs.Shutdown(sctx)

	// Let the running job finish within the grace, then cancel it.
	select {
	case <-runnerDone:
	case <-sctx.Done():
		s.mu.Lock()
		if s.running != nil && s.running.cancel != nil {
			s.running.cancel(apperr.New(apperr.Cancelled, "the local API is shutting down", "submit the job again after the restart"))
		}
		s.mu.Unlock()
		<-runnerDone
	}
	hooksDone := make(chan struct{})
	go func() { s.hooks.Wait(); close(hooksDone) }()
	select {
	case <-hooksDone:
	case <-sctx.Done():
		s.stopHks()
		<-hooksDone
	}
	s.stopHks()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) shutdown() { s.close.Do(func() { close(s.closing) }) }

// --- routes -------------------------------------------------------------

// runRequest is the body of /run and /runsync.
type runRequest struct {
	Input   json.RawMessage `json:"input"`
	Webhook string          `json:"webhook"`
	Policy  *struct {
		ExecutionTimeout *int64 `json:"executionTimeout"`
		TTL              *int64 `json:"ttl"`
		LowPriority      bool   `json:"lowPriority"`
	} `json:"policy"`
	S3Config json.RawMessage `json:"s3Config"` // accepted; delivery uses the worker's bucket settings
}

// statusBody is RunPod's status object.
type statusBody struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	DelayTime     *int64          `json:"delayTime,omitempty"`
	ExecutionTime *int64          `json:"executionTime,omitempty"`
	Output        json.RawMessage `json:"output,omitempty"`
	Error         string          `json:"error,omitempty"`
	WorkerID      string          `json:"workerId,omitempty"`
	Retries       int             `json:"retries,omitempty"`
}

type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	j, ok := s.submit(w, r, "")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, statusBody{ID: j.id, Status: InQueue})
}

// waitParam reads ?wait= (milliseconds, clamped to 1 s to 300 s, as RunPod
// does); def when absent. It answers a bad value itself and reports false.
func waitParam(w http.ResponseWriter, r *http.Request, def time.Duration) (time.Duration, bool) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return def, true
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "wait must be a whole number of milliseconds (1000 to 300000)"})
		return 0, false
	}
	return min(max(time.Duration(ms)*time.Millisecond, runsyncMinWait), runsyncMaxWait), true
}

func (s *Server) handleRunsync(w http.ResponseWriter, r *http.Request) {
	wait, ok := waitParam(w, r, s.o.RunsyncWait)
	if !ok {
		return
	}
	j, ok := s.submit(w, r, "sync-")
	if !ok {
		return
	}
	s.answerWhenDone(w, r, j, wait)
}

// handleStatusSync is /status-sync/{id}?wait=ms: /status, but it first waits
// up to wait (RUNSYNC_WAIT by default) for the job to end, as RunPod's does
// (its JavaScript SDK polls it after a /runsync that outlived its wait).
func (s *Server) handleStatusSync(w http.ResponseWriter, r *http.Request) {
	wait, ok := waitParam(w, r, s.o.RunsyncWait)
	if !ok {
		return
	}
	s.mu.Lock()
	j := s.lookupLocked(r.PathValue("id"))
	s.mu.Unlock()
	if j == nil {
		writeNotFound(w, r.PathValue("id"))
		return
	}
	s.answerWhenDone(w, r, j, wait)
}

// answerWhenDone answers j's status once it has ended, or after wait.
func (s *Server) answerWhenDone(w http.ResponseWriter, r *http.Request, j *job, wait time.Duration) {
	s.mu.Lock()
	done := j.done
	s.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-r.Context().Done():
		return
	case <-s.closing:
	}
	s.mu.Lock()
	body := s.statusLocked(j)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// queueRetryAfter is the Retry-After of a queue-full answer.
const queueRetryAfter = 5 * time.Second

// queueFullBody is the 429 answer to a job the queue has no room for.
type queueFullBody struct {
	Error             string `json:"error"`
	InQueue           int    `json:"inQueue"`
	QueueSize         int    `json:"queueSize"`
	RetryAfterSeconds int    `json:"retryAfterSeconds"`
}

// writeQueueFullLocked answers 429 (RunPod's answer too), saying how full the
// queue is and when to retry; s.mu is held.
func (s *Server) writeQueueFullLocked(w http.ResponseWriter) {
	secs := int(queueRetryAfter / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, queueFullBody{
		Error: fmt.Sprintf("the queue is full: %d of %d places taken (API_QUEUE_SIZE) and a job running; retry in %d s",
			len(s.queue), s.o.QueueSize, secs),
		InQueue: len(s.queue), QueueSize: s.o.QueueSize, RetryAfterSeconds: secs})
}

// submit parses a run request and queues the job; it answers the error
// itself and reports false when the request is refused.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, prefix string) (*job, bool) {
	var req runRequest
	if !s.decode(w, r, &req) {
		return nil, false
	}
	in := []byte(strings.TrimSpace(string(req.Input)))
	if len(in) == 0 || in[0] != '{' {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: `the body must be {"input": {...}}: "input" is missing or not a JSON object`})
		return nil, false
	}
	now := s.o.Now()
	j := &job{id: prefix + newID(), input: in, webhook: req.Webhook, execTimeout: s.o.JobTimeout,
		expires: now.Add(defaultTTL), status: InQueue, submitted: now, done: make(chan struct{})}
	if req.Webhook != "" {
		if err := checkWebhook(req.Webhook); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
			return nil, false
		}
	}
	if p := req.Policy; p != nil {
		if p.ExecutionTimeout != nil {
			d, err := policyDuration("policy.executionTimeout", *p.ExecutionTimeout)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
				return nil, false
			}
			j.execTimeout = d
		}
		if p.TTL != nil {
			d, err := policyDuration("policy.ttl", *p.TTL)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
				return nil, false
			}
			j.expires = now.Add(d)
		}
	}
	select {
	case <-s.closing:
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the local API is shutting down"})
		return nil, false
	default:
	}
	s.mu.Lock()
	if len(s.queue) >= s.o.QueueSize {
		s.writeQueueFullLocked(w)
		s.mu.Unlock()
		return nil, false
	}
	s.jobs[j.id] = j
	s.queue = append(s.queue, j)
	s.mu.Unlock()
	s.signal()
	logging.WithJob(s.log, j.id).Info("job queued")
	return j, true
}

func policyDuration(name string, ms int64) (time.Duration, error) {
	d := time.Duration(ms) * time.Millisecond
	if ms <= 0 || d > maxPolicy {
		return 0, fmt.Errorf("%s must be between 1 and %d milliseconds (7 days)", name, maxPolicy.Milliseconds())
	}
	return d, nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.lookupLocked(r.PathValue("id"))
	if j == nil {
		writeNotFound(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, s.statusLocked(j))
}

// streamBody is /stream's answer: the progress updates since the last read.
type streamBody struct {
	ID     string        `json:"id"`
	Status string        `json:"status"`
	Stream []streamChunk `json:"stream"`
}

type streamChunk struct {
	Output json.RawMessage `json:"output"`
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.lookupLocked(r.PathValue("id"))
	if j == nil {
		writeNotFound(w, r.PathValue("id"))
		return
	}
	body := streamBody{ID: j.id, Status: j.status, Stream: make([]streamChunk, 0, len(j.stream))}
	for _, c := range j.stream {
		body.Stream = append(body.Stream, streamChunk{Output: c})
	}
	j.stream = nil
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j := s.lookupLocked(r.PathValue("id"))
	if j == nil {
		s.mu.Unlock()
		writeNotFound(w, r.PathValue("id"))
		return
	}
	switch j.status {
	case InQueue:
		s.removeQueuedLocked(j)
		s.finishLocked(j, Cancelled, result.Outcome{})
	case InProgress:
		j.cancel(apperr.New(apperr.Cancelled, "the job was cancelled through /cancel", ""))
		// The runner records CANCELLED once the handler has stopped; the
		// answer already says CANCELLED, as RunPod's does.
	}
	status := j.status
	if status == InProgress {
		status = Cancelled
	}
	s.mu.Unlock()
	logging.WithJob(s.log, j.id).Info("job cancel asked", "was", status)
	writeJSON(w, http.StatusOK, statusBody{ID: j.id, Status: status})
}

func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j := s.lookupLocked(r.PathValue("id"))
	if j == nil {
		s.mu.Unlock()
		writeNotFound(w, r.PathValue("id"))
		return
	}
	if j.status != Failed && j.status != TimedOut {
		st := j.status
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "only FAILED or TIMED_OUT jobs can be retried; this one is " + st})
		return
	}
	if len(s.queue) >= s.o.QueueSize {
		s.writeQueueFullLocked(w)
		s.mu.Unlock()
		return
	}
	j.status, j.output, j.errStr, j.stream = InQueue, nil, "", nil
	j.started, j.finished = time.Time{}, time.Time{}
	j.retries++
	j.done = make(chan struct{})
	s.counts.retried++
	s.queue = append(s.queue, j)
	s.mu.Unlock()
	s.signal()
	writeJSON(w, http.StatusOK, statusBody{ID: j.id, Status: InQueue})
}

// healthBody is /health's answer.
type healthBody struct {
	Jobs struct {
		Completed  int `json:"completed"`
		Failed     int `json:"failed"`
		InProgress int `json:"inProgress"`
		InQueue    int `json:"inQueue"`
		Retried    int `json:"retried"`
	} `json:"jobs"`
	Workers struct {
		Idle         int `json:"idle"`
		Initializing int `json:"initializing"`
		Ready        int `json:"ready"`
		Running      int `json:"running"`
		Throttled    int `json:"throttled"`
		Unhealthy    int `json:"unhealthy"`
	} `json:"workers"`
	// Startup is the worker's start-up timeline (not in RunPod's answer), when the handler records one.
	Startup *startup.Report `json:"startup,omitempty"`
}

// timelineSource is a handler that records its start-up timeline (worker.Pipeline).
type timelineSource interface{ StartupTimeline() startup.Report }

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	healthy, reason := s.h.Healthy()
	var b healthBody
	s.mu.Lock()
	b.Jobs.Completed, b.Jobs.Failed, b.Jobs.Retried = s.counts.completed, s.counts.failed, s.counts.retried
	b.Jobs.InQueue = len(s.queue)
	if s.running != nil {
		b.Jobs.InProgress = 1
	}
	switch {
	case !healthy:
		b.Workers.Unhealthy = 1
	case s.running != nil:
		b.Workers.Running = 1
	default:
		b.Workers.Idle, b.Workers.Ready = 1, 1
	}
	s.mu.Unlock()
	if !healthy {
		s.log.Debug("health: handler unhealthy", "reason", reason)
	}
	if ts, ok := s.h.(timelineSource); ok {
		r := ts.StartupTimeline()
		b.Startup = &r
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handlePurge(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	queued := s.queue
	s.queue = nil
	for _, j := range queued {
		s.finishLocked(j, Cancelled, result.Outcome{})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"removed": len(queued), "status": "completed"})
}

// --- jobs ---------------------------------------------------------------

// runJobs feeds queued jobs to the handler one at a time until shutdown.
func (s *Server) runJobs() {
	for {
		j, ctx := s.next()
		if j == nil {
			return
		}
		s.execute(ctx, j)
	}
}

// next waits for a queued job and marks it running, with the context that
// /cancel and shutdown cancel; nil once shutdown began.
func (s *Server) next() (*job, context.Context) {
	for {
		select {
		case <-s.closing:
			return nil, nil
		default:
		}
		s.mu.Lock()
		now := s.o.Now()
		for len(s.queue) > 0 {
			j := s.queue[0]
			s.queue = s.queue[1:]
			if now.After(j.expires) {
				delete(s.jobs, j.id) // TTL passed while queued: gone, as on RunPod
				continue
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			j.status, j.started, j.cancel = InProgress, now, cancel
			s.running = j
			s.mu.Unlock()
			return j, ctx
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.closing:
			return nil, nil
		}
	}
}

func (s *Server) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// execute runs one job under its execution timeout and TTL.
func (s *Server) execute(ctx context.Context, j *job) {
	log := logging.WithJob(s.log, j.id)
	ttlLeft := j.expires.Sub(s.o.Now())
	execErr := apperr.New(apperr.Timeout, fmt.Sprintf("the job ran longer than its execution timeout (%s)", j.execTimeout),
		"raise policy.executionTimeout (milliseconds) or JOB_TIMEOUT, or ask for fewer frames or steps")
	ttlErr := apperr.New(apperr.Timeout, "the job's TTL passed", "raise policy.ttl (milliseconds)")
	ctx, cancelExec := context.WithTimeoutCause(ctx, j.execTimeout, execErr)
	defer cancelExec()
	ctx, cancelTTL := context.WithTimeoutCause(ctx, ttlLeft, ttlErr)
	defer cancelTTL()

	log.Info("job started")

	res, err := result.Call(ctx, s.h, j.id, j.input, func(p progress.Progress) {
		b, merr := json.Marshal(p)
		if merr != nil {
			return
		}
		s.mu.Lock()
		if j.status == InProgress {
			j.output = b
			if len(j.stream) >= streamBacklog {
				j.stream = j.stream[1:]
			}
			j.stream = append(j.stream, b)
		}
		s.mu.Unlock()
	})
	cause := context.Cause(ctx)
	out := result.Finish(res, err, cause)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = nil
	j.cancel(nil)
	j.cancel = nil
	state := Completed
	switch {
	case ctx.Err() != nil && errors.Is(cause, ttlErr):
		delete(s.jobs, j.id) // a hard TTL deletes even a running job
		close(j.done)
		log.Warn("job TTL passed while running; job deleted")
		return
	case ctx.Err() != nil && errors.Is(cause, execErr):
		state = TimedOut
	case ctx.Err() != nil && apperr.CodeOf(cause) == apperr.Cancelled:
		state, out = Cancelled, result.Outcome{}
	case out.Failed():
		state = Failed
	}
	s.finishLocked(j, state, out)
	log.Info("job finished", "status", state, "error", out.Error, "execution_ms", j.finished.Sub(j.started).Milliseconds())
}

// finishLocked records a final state, wakes waiters and sends the webhook.
func (s *Server) finishLocked(j *job, state string, out result.Outcome) {
	j.status, j.finished = state, s.o.Now()
	j.output, j.errStr = out.Output.JSON(), out.Error
	if state == Cancelled {
		j.output = nil
	}
	switch state {
	case Completed:
		s.counts.completed++
	case Failed, TimedOut:
		s.counts.failed++
	}
	close(j.done)
	if j.webhook != "" {
		body, _ := json.Marshal(s.statusLocked(j))
		id, hook := j.id, j.webhook
		s.hooks.Go(func() { s.deliver(s.hookCtx, id, hook, body) })
	}
}

// statusLocked renders a job's status object.
func (s *Server) statusLocked(j *job) statusBody {
	b := statusBody{ID: j.id, Status: j.status, Retries: j.retries}
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	if !j.started.IsZero() {
		b.DelayTime = ms(j.started.Sub(j.submitted))
		end := j.finished
		if end.IsZero() {
			end = s.o.Now()
		}
		b.ExecutionTime = ms(end.Sub(j.started))
		b.WorkerID = s.o.WorkerID
	} else if !j.finished.IsZero() {
		b.DelayTime = ms(j.finished.Sub(j.submitted))
	}
	if j.status != InQueue {
		b.Output = j.output
		b.Error = j.errStr
	}
	return b
}

// lookupLocked finds a job, dropping it when it has expired: finished jobs
// ResultTTL after finishing, any job at its hard TTL.
func (s *Server) lookupLocked(id string) *job {
	j := s.jobs[id]
	if j == nil {
		return nil
	}
	if s.expiredLocked(j, s.o.Now()) {
		s.dropLocked(j)
		return nil
	}
	return j
}

func (s *Server) expiredLocked(j *job, now time.Time) bool {
	if j.status == InProgress {
		return false // the runner ends it at its TTL
	}
	if now.After(j.expires) {
		return true
	}
	return !j.finished.IsZero() && now.Sub(j.finished) > s.o.ResultTTL
}

func (s *Server) dropLocked(j *job) {
	delete(s.jobs, j.id)
	if j.status == InQueue {
		s.removeQueuedLocked(j)
	}
}

func (s *Server) removeQueuedLocked(j *job) {
	for i, q := range s.queue {
		if q == j {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
		}
	}
}

// janitor drops expired jobs now and then so memory stays bounded.
func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(min(s.o.ResultTTL, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		now := s.o.Now()
		for _, j := range s.jobs {
			if s.expiredLocked(j, now) {
				s.dropLocked(j)
			}
		}
		s.mu.Unlock()
	}
}

// --- helpers ------------------------------------------------------------

func (s *Server) authorized(r *http.Request) bool {
	if s.o.Token == "" {
		return true
	}
	got := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(got, "Bearer "); ok {
		got = strings.TrimSpace(t)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) == 1
}

func (s *Server) tooLarge() errorBody {
	return errorBody{Error: fmt.Sprintf("the request body is over %d bytes (API_MAX_BODY_BYTES); "+
		"send the image as a URL instead of base64, or raise API_MAX_BODY_BYTES", s.o.MaxBodyBytes)}
}

// decode reads a JSON body; an empty body is an empty object.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeJSON(w, http.StatusRequestEntityTooLarge, s.tooLarge())
		default:
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "the body is not valid JSON: " + err.Error()})
		}
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"response could not be encoded"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeNotFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("job %q not found (unknown, or expired after its TTL)", id)})
}

// newID returns a random UUID (version 4), RunPod's job id form.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
