// Package runpodtest is a fake RunPod job server for tests: job-take,
// job-stop, job-done (results and progress), job-stream and ping, shaped like
// the platform's URLs, with fault injection (status codes, connection resets,
// delays, malformed bodies) and a record of every request, so that tests can
// assert that no result is lost or posted twice and that pings keep flowing.
//
// Server is an http.Handler: wrap it in httptest.NewServer, or run it
// standalone with cmd/fakerunpod (control routes under /_fake/).
package runpodtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Route is one part of the protocol.
type Route string

// The routes.
const (
	Take   Route = "job-take"
	Stop   Route = "job-stop"
	Done   Route = "job-done"
	Stream Route = "job-stream"
	Ping   Route = "ping"
)

// Fault is one injected misbehaviour, consumed by one request of its route.
type Fault struct {
	status      int
	contentType string
	body        string
	reset       bool
	delay       time.Duration
}

// Status answers with an HTTP status and an empty body.
func Status(code int) Fault { return Fault{status: code} }

// Respond answers with a status, content type and body (malformed jobs,
// odd stop answers).
func Respond(code int, contentType, body string) Fault {
	return Fault{status: code, contentType: contentType, body: body}
}

// Reset reads the request and drops the connection without an answer;
// nothing the request carried is accepted.
func Reset() Fault { return Fault{reset: true} }

// Delay holds the request for d (or until the client gives up), then serves
// it normally.
func Delay(d time.Duration) Fault { return Fault{delay: d} }

// Job is one queued job.
type Job struct {
	ID    string
	Input any
	// Raw, when set, is sent as the job-take body as is (malformed jobs).
	Raw []byte
	// ContentType of the job-take answer; default application/json.
	ContentType string
}

// Request is one recorded request.
type Request struct {
	Route    Route       `json:"route"`
	Seq      int         `json:"seq"` // order of arrival over all routes
	At       time.Time   `json:"at"`
	Pod      string      `json:"pod"`
	JobID    string      `json:"job_id,omitempty"` // job-done/stream: from the path; job-take: the job handed out
	Query    url.Values  `json:"query"`
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
	Body     []byte      `json:"body,omitempty"`
	Status   int         `json:"status"`   // the fake's answer; 0 for a reset
	Progress bool        `json:"progress"` // a job-done body with "status": "IN_PROGRESS"
}

// Accepted reports whether the fake answered 2xx.
func (r Request) Accepted() bool { return r.Status >= 200 && r.Status <= 299 }

// Options shape the fake.
type Options struct {
	// EndpointID is the endpoint in the URLs; default "ep".
	EndpointID string
	// Hold is how long job-take and job-stop wait for something to hand out
	// before answering 204 (the platform long-polls); default 0.
	Hold time.Duration
	// MaxResultBytes, when positive, refuses larger job-done bodies with
	// TooLargeStatus.
	MaxResultBytes int
	// TooLargeStatus answers an oversized result; default 413.
	TooLargeStatus int
	// RequireOutput answers 400 to a final result without an "output" key,
	// as RunPod's sls-local-server does.
	RequireOutput bool
	// Query is the query string in the URL templates; default
	// "gpu=NVIDIA+RTX+A5000", as on the platform.
	Query string
}

// Server is the fake.
type Server struct {
	o       Options
	mux     *http.ServeMux
	mu      sync.Mutex
	queue   []Job
	stops   []string
	faults  map[Route][]Fault
	reqs    []Request
	changed chan struct{} // closed and replaced on every change
	// per job id: deliveries, accepted finals, violations
	delivered map[string]int
	finals    map[string]int
	problems  []string
}

// New returns a fake with an empty queue.
func New(o Options) *Server {
	if o.EndpointID == "" {
		o.EndpointID = "ep"
	}
	if o.TooLargeStatus == 0 {
		o.TooLargeStatus = http.StatusRequestEntityTooLarge
	}
	if o.Query == "" {
		o.Query = "gpu=NVIDIA+RTX+A5000"
	}
	s := &Server{o: o, mux: http.NewServeMux(), faults: map[Route][]Fault{}, changed: make(chan struct{}),
		delivered: map[string]int{}, finals: map[string]int{}}
	s.mux.HandleFunc("GET /v2/{ep}/job-take/{pod}", s.take)
	s.mux.HandleFunc("GET /v2/{ep}/job-stop/{pod}", s.stop)
	s.mux.HandleFunc("POST /v2/{ep}/job-done/{pod}/{job}", s.done)
	s.mux.HandleFunc("POST /v2/{ep}/job-stream/{pod}/{job}", s.stream)
	s.mux.HandleFunc("GET /v2/{ep}/ping/{pod}", s.ping)
	s.mux.HandleFunc("POST /_fake/jobs", s.ctlJobs)
	s.mux.HandleFunc("POST /_fake/stop", s.ctlStop)
	s.mux.HandleFunc("GET /_fake/requests", s.ctlRequests)
	return s
}

// ServeHTTP serves the protocol and the control routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Templates are the RUNPOD_WEBHOOK_* values that point a worker at a fake.
type Templates struct {
	GetJob, PostOutput, PostStream, Ping string
}

// Templates returns the URL templates for the fake served at base (e.g. an
// httptest server's URL), in the platform's shape: job-take/$ID,
// job-done/$RUNPOD_POD_ID/$ID, ping/$RUNPOD_POD_ID, each with a query.
func (s *Server) Templates(base string) Templates {
	p := strings.TrimRight(base, "/") + "/v2/" + s.o.EndpointID
	q := "?" + s.o.Query
	return Templates{
		GetJob:     p + "/job-take/$ID" + q,
		PostOutput: p + "/job-done/$RUNPOD_POD_ID/$ID" + q,
		PostStream: p + "/job-stream/$RUNPOD_POD_ID/$ID" + q,
		Ping:       p + "/ping/$RUNPOD_POD_ID" + q,
	}
}

// Env returns the templates as NAME=value lines for a worker's environment.
func (t Templates) Env() []string {
	return []string{
		"RUNPOD_WEBHOOK_GET_JOB=" + t.GetJob,
		"RUNPOD_WEBHOOK_POST_OUTPUT=" + t.PostOutput,
		"RUNPOD_WEBHOOK_POST_STREAM=" + t.PostStream,
		"RUNPOD_WEBHOOK_PING=" + t.Ping,
	}
}

// Enqueue adds jobs to the queue.
func (s *Server) Enqueue(jobs ...Job) {
	s.mu.Lock()
	s.queue = append(s.queue, jobs...)
	s.notifyLocked()
	s.mu.Unlock()
}

// StopJobs makes the next job-stop answer list ids.
func (s *Server) StopJobs(ids ...string) {
	s.mu.Lock()
	s.stops = append(s.stops, ids...)
	s.notifyLocked()
	s.mu.Unlock()
}

// Fail queues faults for a route; each request of the route consumes one.
func (s *Server) Fail(r Route, faults ...Fault) {
	s.mu.Lock()
	s.faults[r] = append(s.faults[r], faults...)
	s.mu.Unlock()
}

// Requests returns the recorded requests of a route ("" for all), in order.
func (s *Server) Requests(r Route) []Request {
	return s.filter(func(q *Request) bool { return r == "" || q.Route == r })
}

// Results returns the accepted final results posted for a job.
func (s *Server) Results(jobID string) []Request {
	return s.filter(func(q *Request) bool { return q.Route == Done && q.JobID == jobID && !q.Progress && q.Accepted() })
}

// Progress returns the progress posts received for a job.
func (s *Server) Progress(jobID string) []Request {
	return s.filter(func(q *Request) bool { return q.Route == Done && q.JobID == jobID && q.Progress })
}

func (s *Server) filter(keep func(*Request) bool) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for i := range s.reqs {
		if keep(&s.reqs[i]) {
			out = append(out, s.reqs[i])
		}
	}
	return out
}

// Finals returns how many final results were accepted for a job.
func (s *Server) Finals(jobID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finals[jobID]
}

// Delivered returns how many times a job was handed out.
func (s *Server) Delivered(jobID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[jobID]
}

// Problems lists protocol violations seen: a final result accepted more
// often than its job was handed out, a progress update after the final
// result.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// Queued returns how many jobs wait to be handed out.
func (s *Server) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Wait returns when cond reports true (checked after every request the
// fake records or job it queues) or ctx ends.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runpodtest: condition not met: %w", context.Cause(ctx))
		case <-ch:
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// record stores a request and returns its index.
func (s *Server) record(q Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q.Seq = len(s.reqs) + 1
	s.reqs = append(s.reqs, q)
	if q.Route == Done && q.Accepted() {
		switch {
		case q.Progress && s.finals[q.JobID] >= s.delivered[q.JobID] && s.finals[q.JobID] > 0:
			s.problems = append(s.problems, fmt.Sprintf("progress for job %s after its final result (request %d)", q.JobID, q.Seq))
		case !q.Progress:
			s.finals[q.JobID]++
			if s.finals[q.JobID] > s.delivered[q.JobID] {
				s.problems = append(s.problems, fmt.Sprintf("job %s: %d results accepted for %d deliveries (request %d)",
					q.JobID, s.finals[q.JobID], s.delivered[q.JobID], q.Seq))
			}
		}
	}
	s.notifyLocked()
}

func (s *Server) newRequest(route Route, r *http.Request, body []byte) Request {
	return Request{Route: route, At: time.Now(), Pod: r.PathValue("pod"), JobID: r.PathValue("job"),
		Query: r.URL.Query(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
}

// fault pops the next fault of a route and applies it. It reports whether
// the request was answered (or dropped) by the fault.
func (s *Server) fault(route Route, w http.ResponseWriter, r *http.Request, q Request) bool {
	s.mu.Lock()
	var f *Fault
	if fs := s.faults[route]; len(fs) > 0 {
		f = &fs[0]
		s.faults[route] = fs[1:]
	}
	s.mu.Unlock()
	if f == nil {
		return false
	}
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		return false
	}
	if f.reset {
		q.Status = 0
		s.record(q)
		panic(http.ErrAbortHandler) // drops the connection without an answer
	}
	q.Status = f.status
	s.record(q)
	if f.contentType != "" {
		w.Header().Set("Content-Type", f.contentType)
	}
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
	return true
}

// waitFor waits until ready reports true (under the lock), up to Hold.
func (s *Server) waitFor(ctx context.Context, ready func() bool) bool {
	deadline := time.Now().Add(s.o.Hold)
	for {
		s.mu.Lock()
		ok := ready()
		ch := s.changed
		s.mu.Unlock()
		left := time.Until(deadline)
		if ok || left <= 0 {
			return ok
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		case <-ch:
		}
		t.Stop()
	}
}

func (s *Server) take(w http.ResponseWriter, r *http.Request) {
	q := s.newRequest(Take, r, nil)
	if s.fault(Take, w, r, q) {
		return
	}
	var job Job
	got := s.waitFor(r.Context(), func() bool {
		if len(s.queue) == 0 {
			return false
		}
		job, s.queue = s.queue[0], s.queue[1:]
		if job.ID != "" {
			s.delivered[job.ID]++
		}
		return true
	})
	if !got {
		q.Status = http.StatusNoContent
		s.record(q)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body := job.Raw
	if body == nil {
		body, _ = json.Marshal(map[string]any{"id": job.ID, "input": job.Input})
	}
	ct := job.ContentType
	if ct == "" {
		ct = "application/json"
	}
	q.JobID, q.Status = job.ID, http.StatusOK
	s.record(q)
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(body)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	q := s.newRequest(Stop, r, nil)
	if s.fault(Stop, w, r, q) {
		return
	}
	var ids []string
	got := s.waitFor(r.Context(), func() bool {
		if len(s.stops) == 0 {
			return false
		}
		ids, s.stops = s.stops, nil
		return true
	})
	if !got {
		q.Status = http.StatusNoContent
		s.record(q)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q.Status = http.StatusOK
	q.Body, _ = json.Marshal(map[string]any{"jobsToStop": ids})
	s.record(q)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(q.Body)
}

func (s *Server) done(w http.ResponseWriter, r *http.Request)   { s.post(Done, w, r) }
func (s *Server) stream(w http.ResponseWriter, r *http.Request) { s.post(Stream, w, r) }

func (s *Server) post(route Route, w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	q := s.newRequest(route, r, body)
	if err != nil {
		q.Status = 0
		s.record(q)
		return
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(body, &fields)
	q.Progress = string(fields["status"]) == `"IN_PROGRESS"`
	if s.fault(route, w, r, q) {
		return
	}
	status := http.StatusOK
	switch {
	case fields == nil:
		status = http.StatusBadRequest
	case s.o.MaxResultBytes > 0 && len(body) > s.o.MaxResultBytes:
		status = s.o.TooLargeStatus
	case s.o.RequireOutput && route == Done && !q.Progress && fields["output"] == nil:
		status = http.StatusBadRequest
	}
	q.Status = status
	s.record(q)
	w.WriteHeader(status)
}

// readBody reads a request's body into one buffer of its announced length
// (growing a buffer instead would copy a multi-megabyte result several
// times, and make the fake, not the worker, what a benchmark measures).
// The server stops a body at its Content-Length.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 || r.ContentLength > 1<<30 {
		return io.ReadAll(r.Body)
	}
	body := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, body)
	return body[:n], err
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	q := s.newRequest(Ping, r, nil)
	if s.fault(Ping, w, r, q) {
		return
	}
	q.Status = http.StatusOK
	s.record(q)
	w.WriteHeader(http.StatusOK)
}

// --- control routes (standalone use) ---

func (s *Server) ctlJobs(w http.ResponseWriter, r *http.Request) {
	type ctlJob struct {
		ID    string          `json:"id"`
		Input json.RawMessage `json:"input"`
	}
	var jobs []ctlJob
	b, err := io.ReadAll(r.Body)
	if err == nil {
		if strings.HasPrefix(strings.TrimSpace(string(b)), "[") {
			err = json.Unmarshal(b, &jobs)
		} else {
			var one ctlJob
			err = json.Unmarshal(b, &one)
			jobs = append(jobs, one)
		}
	}
	if err != nil {
		http.Error(w, `body must be a job {"id", "input"} or a list of them: `+err.Error(), http.StatusBadRequest)
		return
	}
	for i, j := range jobs {
		if j.ID == "" {
			j.ID = fmt.Sprintf("job-%d-%d", time.Now().UnixNano(), i)
		}
		s.Enqueue(Job{ID: j.ID, Input: j.Input})
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) ctlStop(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		JobsToStop []string `json:"jobsToStop"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, `body must be {"jobsToStop": [...]}`, http.StatusBadRequest)
		return
	}
	s.StopJobs(msg.JobsToStop...)
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) ctlRequests(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"requests": s.Requests(Route(r.URL.Query().Get("route"))),
		"problems": s.Problems()})
}
