package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/api"
)

// rpClient behaves like runpod-python's endpoint client (runpod/endpoint/
// runner.py): Bearer key, JSON bodies, no body on cancel/purge, raise on
// HTTP errors, and it reads exactly the fields that client reads.
type rpClient struct {
	t    *testing.T
	base string // .../v2
	key  string
	poll time.Duration // the client sleeps 1 s between polls; shorter here
}

var (
	finalStates = []string{"COMPLETED", "FAILED", "TIMED_OUT"}
	completed   = []string{"COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"} // is_completed
)

func (c *rpClient) request(method, endpoint string, data any) (map[string]any, error) {
	var body io.Reader
	if data != nil {
		b, _ := json.Marshal(data)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+"/"+endpoint, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == 401 {
		return nil, fmt.Errorf("401 Unauthorized | Make sure Runpod API key is set and valid")
	}
	if resp.StatusCode >= 400 {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("response.json(): %w", err)
	}
	return m, nil
}

// str reads a key that the client indexes with [] (KeyError when absent) as
// a string.
func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Fatalf("KeyError %q in %v", key, m)
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%q is %T, want a string", key, v)
	}
	return s
}

type rpEndpoint struct {
	c  *rpClient
	id string
}

type rpJob struct {
	e         *rpEndpoint
	id        string
	jobStatus string
	jobOutput any
	hasOutput bool
}

// run is Endpoint.run: it wraps the payload in {"input"} unless it has one.
func (e *rpEndpoint) run(requestInput map[string]any) *rpJob {
	e.c.t.Helper()
	if v, ok := requestInput["input"]; !ok || v == nil {
		requestInput = map[string]any{"input": requestInput}
	}
	m, err := e.c.request("POST", e.id+"/run", requestInput)
	if err != nil {
		e.c.t.Fatal(err)
	}
	return &rpJob{e: e, id: str(e.c.t, m, "id")}
}

// runSync is Endpoint.run_sync.
func (e *rpEndpoint) runSync(requestInput map[string]any, timeout time.Duration) any {
	e.c.t.Helper()
	if v, ok := requestInput["input"]; !ok || v == nil {
		requestInput = map[string]any{"input": requestInput}
	}
	m, err := e.c.request("POST", e.id+"/runsync", requestInput)
	if err != nil {
		e.c.t.Fatal(err)
	}
	if slices.Contains(finalStates, str(e.c.t, m, "status")) {
		return m["output"]
	}
	j := &rpJob{e: e, id: str(e.c.t, m, "id")}
	return j.output(timeout)
}

func (j *rpJob) fetch(source string) map[string]any {
	t := j.e.c.t
	t.Helper()
	m, err := j.e.c.request("GET", j.e.id+"/"+source+"/"+j.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := str(t, m, "status"); slices.Contains(completed, s) {
		j.jobStatus = s
		j.jobOutput, j.hasOutput = m["output"], m["output"] != nil
	}
	return m
}

func (j *rpJob) status() string {
	if j.jobStatus != "" {
		return j.jobStatus
	}
	return str(j.e.c.t, j.fetch("status"), "status")
}

// output is Job.output(timeout): poll status until completed, then output.
func (j *rpJob) output(timeout time.Duration) any {
	t := j.e.c.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !slices.Contains(completed, j.status()) {
		time.Sleep(j.e.c.poll)
		if time.Now().After(deadline) {
			t.Fatal("TimeoutError: Job timed out.")
		}
	}
	if j.hasOutput {
		return j.jobOutput
	}
	return j.fetch("status")["output"]
}

// stream is Job.stream: yields chunk["output"] until a final state with an
// empty stream.
func (j *rpJob) stream(timeout time.Duration) []any {
	t := j.e.c.t
	t.Helper()
	var out []any
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		time.Sleep(j.e.c.poll)
		p := j.fetch("stream")
		chunks, ok := p["stream"].([]any)
		if !ok {
			t.Fatalf("stream is %T, want a list", p["stream"])
		}
		if !slices.Contains(finalStates, str(t, p, "status")) || len(chunks) > 0 {
			for _, c := range chunks {
				cm, ok := c.(map[string]any)
				if !ok {
					t.Fatalf("chunk %v is not an object", c)
				}
				if _, ok := cm["output"]; !ok {
					t.Fatalf("KeyError output in chunk %v", cm)
				}
				out = append(out, cm["output"])
			}
			continue
		}
		return out
	}
	t.Fatal("stream did not end")
	return nil
}

func (j *rpJob) cancel() map[string]any {
	m, err := j.e.c.request("POST", j.e.id+"/cancel/"+j.id, nil)
	if err != nil {
		j.e.c.t.Fatal(err)
	}
	return m
}

func TestOfficialClientShapes(t *testing.T) {
	hs := start(t, func(o *api.Options) { o.Token = "rp_key" })
	c := &rpClient{t: t, base: hs.base + "/v2", key: "rp_key", poll: 5 * time.Millisecond}
	ep := &rpEndpoint{c: c, id: "my-endpoint"}

	// run + output(): the input is wrapped by the client.
	job := ep.run(map[string]any{"prompt": "a cat", "mode": "ok"})
	out, ok := job.output(10 * time.Second).(map[string]any)
	if !ok || out["prompt_id"] != job.id || out["filename"] != "wan2_2_00001.mp4" {
		t.Errorf("output() = %v", out)
	}
	if job.status() != "COMPLETED" {
		t.Errorf("status() = %s", job.status())
	}

	// A failing job: status FAILED, output carries {"error": {...}}.
	bad := ep.run(map[string]any{"input": map[string]any{"mode": "fail"}})
	bo, _ := bad.output(10 * time.Second).(map[string]any)
	if bad.status() != "FAILED" || bo["error"] == nil {
		t.Errorf("failed job: status %s output %v", bad.status(), bo)
	}

	// run_sync returns the output directly.
	so, _ := ep.runSync(map[string]any{"mode": "ok"}, 10*time.Second).(map[string]any)
	if so["video"] != "AAAA" {
		t.Errorf("run_sync() = %v", so)
	}

	// stream() yields progress updates until the job is final.
	sj := ep.run(map[string]any{"mode": "progress"})
	hs.waitStarted(sj.id)
	for str(t, sj.fetch("status"), "status") != "IN_PROGRESS" {
		time.Sleep(c.poll)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		hs.h.Release()
	}()
	chunks := sj.stream(10 * time.Second)
	if len(chunks) != 2 {
		t.Errorf("stream() yielded %d chunks, want 2: %v", len(chunks), chunks)
	}

	// cancel() on a finished job answers with its state; health and purge.
	if m := job.cancel(); str(t, m, "status") != "COMPLETED" || str(t, m, "id") != job.id {
		t.Errorf("cancel() = %v", m)
	}
	h, err := c.request("GET", ep.id+"/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := h["jobs"].(map[string]any)
	workers, _ := h["workers"].(map[string]any)
	for _, k := range []string{"completed", "failed", "inProgress", "inQueue", "retried"} {
		if _, ok := jobs[k].(float64); !ok {
			t.Errorf("health.jobs.%s = %v", k, jobs[k])
		}
	}
	for _, k := range []string{"idle", "running", "initializing", "ready", "throttled"} {
		if _, ok := workers[k].(float64); !ok {
			t.Errorf("health.workers.%s = %v", k, workers[k])
		}
	}
	p, err := c.request("POST", ep.id+"/purge-queue", nil)
	if err != nil || p["removed"] != float64(0) || p["status"] != "completed" {
		t.Errorf("purge_queue() = %v %v", p, err)
	}

	// A wrong key is what the client reports as unauthorized.
	bc := &rpClient{t: t, base: c.base, key: "wrong"}
	if _, err := bc.request("GET", ep.id+"/health", nil); err == nil {
		t.Error("wrong key accepted")
	}
}
