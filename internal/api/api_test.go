package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/api"
	"github.com/wan22-worker/wan22-worker/internal/config"
)

func TestLifecycleAndProgress(t *testing.T) {
	hs := start(t, nil)
	code, m := hs.call("POST", "/run", `{"input":{"mode":"progress"}}`)
	if code != 200 || m["status"] != "IN_QUEUE" {
		t.Fatalf("/run = %d %v", code, m)
	}
	id := m["id"].(string)
	if len(id) != 36 {
		t.Errorf("id %q is not a UUID", id)
	}
	hs.waitStarted(id)
	st := hs.waitStatus(id, "IN_PROGRESS")
	// The handler reports two updates right after it starts; output shows the latest.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := st["output"].(map[string]any)
		if out["stage"] == "sampling_low" && out["percent"] == float64(60) {
			break
		}
		if out != nil && out["stage"] != "sampling_high" || time.Now().After(deadline) {
			t.Fatalf("IN_PROGRESS output = %v, want the latest progress", st["output"])
		}
		time.Sleep(2 * time.Millisecond)
		_, st = hs.call("GET", "/status/"+id, "")
	}
	if _, ok := st["delayTime"].(float64); !ok {
		t.Errorf("delayTime missing while running: %v", st)
	}
	hs.h.Release()
	st = hs.waitStatus(id, "COMPLETED")
	out, _ := st["output"].(map[string]any)
	if out["prompt_id"] != id || out["video"] != "AAAA" {
		t.Errorf("COMPLETED output = %v", st["output"])
	}
	for _, k := range []string{"delayTime", "executionTime"} {
		if _, ok := st[k].(float64); !ok {
			t.Errorf("%s is not a number: %v", k, st[k])
		}
	}
	if st["workerId"] != "local" {
		t.Errorf("workerId = %v", st["workerId"])
	}
	if _, ok := st["error"]; ok {
		t.Errorf("error on a completed job: %v", st)
	}
	// POST /status works too (RunPod's dev server uses POST).
	if code, m := hs.call("POST", "/status/"+id, ""); code != 200 || m["status"] != "COMPLETED" {
		t.Errorf("POST /status = %d %v", code, m)
	}
}

func TestFailuresAndTimeouts(t *testing.T) {
	tests := []struct {
		name, input, policy, wantStatus, wantCode string
	}{
		{"handler error", `{"mode":"fail"}`, "", "FAILED", "IMAGE_INVALID"},
		{"panic", `{"mode":"panic"}`, "", "FAILED", "INTERNAL"},
		{"execution timeout", `{"mode":"block"}`, `,"policy":{"executionTimeout":50}`, "TIMED_OUT", "TIMEOUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := start(t, nil)
			code, m := hs.call("POST", "/run", `{"input":`+tc.input+tc.policy+`}`)
			if code != 200 {
				t.Fatalf("/run = %d %v", code, m)
			}
			st := hs.waitStatus(m["id"].(string), tc.wantStatus)
			e, _ := st["error"].(string)
			if !strings.HasPrefix(e, tc.wantCode+": ") {
				t.Errorf("error = %q, want %s: ...", e, tc.wantCode)
			}
			out, _ := st["output"].(map[string]any)
			oe, _ := out["error"].(map[string]any)
			if oe["code"] != tc.wantCode || oe["message"] == "" || oe["hint"] == "" {
				t.Errorf("output.error = %v", out)
			}
		})
	}
}

func TestRunsync(t *testing.T) {
	hs := start(t, nil)
	code, m := hs.call("POST", "/runsync", `{"input":{"mode":"ok"}}`)
	if code != 200 || m["status"] != "COMPLETED" || m["output"] == nil {
		t.Fatalf("/runsync = %d %v", code, m)
	}
	if id, _ := m["id"].(string); !strings.HasPrefix(id, "sync-") {
		t.Errorf("runsync id %q lacks sync-", id)
	}
	code, m = hs.call("POST", "/runsync", `{"input":{"mode":"fail"}}`)
	if code != 200 || m["status"] != "FAILED" || !strings.HasPrefix(m["error"].(string), "IMAGE_INVALID") {
		t.Fatalf("/runsync failed job = %d %v", code, m)
	}
	// Not done within ?wait=: the id and a non-final status come back.
	start := time.Now()
	code, m = hs.call("POST", "/runsync?wait=1000", `{"input":{"mode":"block"}}`)
	if code != 200 || m["status"] != "IN_PROGRESS" || m["id"] == nil {
		t.Fatalf("/runsync?wait=1000 = %d %v", code, m)
	}
	if time.Since(start) < time.Second {
		t.Errorf("returned after %v, before the wait", time.Since(start))
	}
	if code, _ := hs.call("POST", "/runsync?wait=soon", `{"input":{}}`); code != 400 {
		t.Errorf("bad wait = %d", code)
	}
}

func TestCancel(t *testing.T) {
	hs := start(t, nil)
	running := hs.submit(`{"mode":"block"}`)
	queued := hs.submit(`{"mode":"ok"}`)
	hs.waitStarted(running)

	code, m := hs.call("POST", "/cancel/"+queued, "")
	if code != 200 || m["status"] != "CANCELLED" || m["id"] != queued {
		t.Fatalf("cancel queued = %d %v", code, m)
	}
	code, m = hs.call("POST", "/cancel/"+running, "")
	if code != 200 || m["status"] != "CANCELLED" {
		t.Fatalf("cancel running = %d %v", code, m)
	}
	select {
	case id := <-hs.h.cancelled:
		if id != running {
			t.Errorf("cancelled %s", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the running job's context was not cancelled")
	}
	st := hs.waitStatus(running, "CANCELLED")
	if _, ok := st["output"]; ok {
		t.Errorf("cancelled job has output: %v", st)
	}
	hs.waitStatus(queued, "CANCELLED")
	if n := hs.h.Calls(queued); n != 0 {
		t.Errorf("cancelled queued job ran %d times", n)
	}
	done := hs.submit(`{"mode":"ok"}`)
	hs.waitStatus(done, "COMPLETED")
	if code, m := hs.call("POST", "/cancel/"+done, ""); code != 200 || m["status"] != "COMPLETED" {
		t.Errorf("cancel finished job = %d %v, want its COMPLETED state", code, m)
	}
	if code, _ := hs.call("POST", "/cancel/nope", ""); code != 404 {
		t.Errorf("cancel unknown = %d", code)
	}
}

func TestQueueFullAndOneAtATime(t *testing.T) {
	hs := start(t, func(o *api.Options) { o.QueueSize = 2 })
	first := hs.submit(`{"mode":"block"}`)
	hs.waitStarted(first)
	a, b := hs.submit(`{"mode":"ok"}`), hs.submit(`{"mode":"ok"}`)
	code, m := hs.call("POST", "/run", `{"input":{"mode":"ok"}}`)
	if code != 429 || m["error"] == nil {
		t.Fatalf("/run on a full queue = %d %v", code, m)
	}
	for _, id := range []string{a, b} {
		if code, m := hs.call("GET", "/status/"+id, ""); m["status"] != "IN_QUEUE" {
			t.Errorf("%s: %d %v, want IN_QUEUE while another job runs", id, code, m)
		} else if _, ok := m["output"]; ok {
			t.Errorf("queued job has output")
		}
	}
	code, h := hs.call("GET", "/health", "")
	jobs, _ := h["jobs"].(map[string]any)
	workers, _ := h["workers"].(map[string]any)
	if code != 200 || jobs["inQueue"] != float64(2) || jobs["inProgress"] != float64(1) || workers["running"] != float64(1) {
		t.Errorf("/health = %v", h)
	}
	hs.h.Release()
	hs.waitStatus(b, "COMPLETED")
	hs.waitStatus(a, "COMPLETED")
}

func TestHealthCounts(t *testing.T) {
	hs := start(t, nil)
	hs.waitStatus(hs.submit(`{"mode":"ok"}`), "COMPLETED")
	hs.waitStatus(hs.submit(`{"mode":"fail"}`), "FAILED")
	flaky := hs.submit(`{"mode":"flaky"}`)
	hs.waitStatus(flaky, "FAILED")
	if code, m := hs.call("POST", "/retry/"+flaky, ""); code != 200 || m["status"] != "IN_QUEUE" || m["id"] != flaky {
		t.Fatalf("/retry = %d %v", code, m)
	}
	st := hs.waitStatus(flaky, "COMPLETED")
	if st["retries"] != float64(1) {
		t.Errorf("retries = %v", st["retries"])
	}
	if code, _ := hs.call("POST", "/retry/"+flaky, ""); code != 400 {
		t.Errorf("retry of a COMPLETED job = %d, want 400", code)
	}
	_, h := hs.call("GET", "/health", "")
	want := map[string]float64{"completed": 2, "failed": 2, "inProgress": 0, "inQueue": 0, "retried": 1}
	jobs, _ := h["jobs"].(map[string]any)
	for k, v := range want {
		if jobs[k] != v {
			t.Errorf("jobs.%s = %v, want %v", k, jobs[k], v)
		}
	}
	workers, _ := h["workers"].(map[string]any)
	if workers["idle"] != float64(1) || workers["running"] != float64(0) {
		t.Errorf("workers = %v", workers)
	}
	// The handler's start-up timeline rides along.
	su, _ := h["startup"].(map[string]any)
	steps, _ := su["steps"].([]any)
	if len(steps) != 2 || steps[1].(map[string]any)["name"] != "comfyui_ready" || steps[1].(map[string]any)["at_ms"] != float64(1200) {
		t.Errorf("startup = %v", h["startup"])
	}
	hs.h.mu.Lock()
	hs.h.healthy = false
	hs.h.mu.Unlock()
	_, h = hs.call("GET", "/health", "")
	if workers, _ := h["workers"].(map[string]any); workers["unhealthy"] != float64(1) || workers["idle"] != float64(0) {
		t.Errorf("unhealthy workers = %v", h["workers"])
	}
}

func TestPurgeQueue(t *testing.T) {
	hs := start(t, nil)
	first := hs.submit(`{"mode":"block"}`)
	hs.waitStarted(first)
	a, b := hs.submit(`{"mode":"ok"}`), hs.submit(`{"mode":"ok"}`)
	code, m := hs.call("POST", "/purge-queue", "")
	if code != 200 || m["removed"] != float64(2) || m["status"] != "completed" {
		t.Fatalf("/purge-queue = %d %v", code, m)
	}
	hs.waitStatus(a, "CANCELLED")
	hs.waitStatus(b, "CANCELLED")
	if _, m := hs.call("GET", "/status/"+first, ""); m["status"] != "IN_PROGRESS" {
		t.Errorf("purge touched the running job: %v", m)
	}
}

func TestStream(t *testing.T) {
	hs := start(t, nil)
	id := hs.submit(`{"mode":"progress"}`)
	hs.waitStarted(id)
	hs.waitStatus(id, "IN_PROGRESS")
	var chunks []any
	deadline := time.Now().Add(10 * time.Second)
	for len(chunks) < 2 && time.Now().Before(deadline) {
		code, m := hs.call("GET", "/stream/"+id, "")
		if code != 200 || m["id"] != id {
			t.Fatalf("/stream = %d %v", code, m)
		}
		s, ok := m["stream"].([]any)
		if !ok {
			t.Fatalf("stream is not a list: %v", m)
		}
		chunks = append(chunks, s...)
	}
	if len(chunks) != 2 {
		t.Fatalf("got %d chunks, want 2", len(chunks))
	}
	if c, _ := chunks[0].(map[string]any); c["output"].(map[string]any)["stage"] != "sampling_high" {
		t.Errorf("first chunk = %v", chunks[0])
	}
	code, m := hs.call("POST", "/stream/"+id, "")
	if s, _ := m["stream"].([]any); code != 200 || len(s) != 0 {
		t.Errorf("stream after a read = %d %v, want empty", code, m)
	}
}

func TestAuth(t *testing.T) {
	hs := start(t, func(o *api.Options) { o.Token = "s3cret" })
	tests := []struct {
		name, header string
		want         int
	}{
		{"none", "", 401},
		{"wrong", "Bearer nope", 401},
		{"bearer", "Bearer s3cret", 200},
		{"raw key", "s3cret", 200},
		{"prefix", "Bearer s3cre", 401},
	}
	for _, tc := range tests {
		code, m := hs.call("GET", "/health", "", "Authorization", tc.header)
		if code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
		if code == 401 && !strings.HasPrefix(m["error"].(string), "unauthorized") {
			t.Errorf("%s: 401 body %v", tc.name, m)
		}
	}
	if code, _ := hs.raw("GET", "/openapi.json", ""); code != 200 {
		t.Errorf("/openapi.json needs no token: %d", code)
	}
	if code, _ := hs.call("POST", "/v2/ep/run", `{"input":{}}`); code != 401 {
		t.Errorf("/v2/ep/run without token = %d", code)
	}
}

func TestBodyLimit(t *testing.T) {
	hs := start(t, func(o *api.Options) { o.MaxBodyBytes = 2048 })
	big := `{"input":{"image":"` + strings.Repeat("A", 4096) + `"}}`
	code, m := hs.call("POST", "/run", big)
	if code != 413 || !strings.Contains(m["error"].(string), "API_MAX_BODY_BYTES") {
		t.Errorf("big body = %d %v", code, m)
	}
	// Without a Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", hs.base+"/run", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked big body = %d", resp.StatusCode)
	}
	if code, _ := hs.call("POST", "/run", `{"input":{"mode":"ok"}}`); code != 200 {
		t.Errorf("small body = %d", code)
	}
}

func TestBadRequests(t *testing.T) {
	hs := start(t, nil)
	tests := []struct{ name, body string }{
		{"not json", `{"input":`},
		{"no input", `{"webhook":"http://x"}`},
		{"input not an object", `{"input":[1,2]}`},
		{"input string", `{"input":"hello"}`},
		{"null input", `{"input":null}`},
		{"webhook not http", `{"input":{},"webhook":"ftp://x/y"}`},
		{"negative timeout", `{"input":{},"policy":{"executionTimeout":-1}}`},
		{"ttl over 7 days", `{"input":{},"policy":{"ttl":604800001}}`},
	}
	for _, tc := range tests {
		code, m := hs.call("POST", "/run", tc.body)
		if code != 400 || m["error"] == "" {
			t.Errorf("%s: %d %v, want 400 with an error", tc.name, code, m)
		}
	}
	if code, _ := hs.call("GET", "/status/unknown", ""); code != 404 {
		t.Errorf("unknown status = %d", code)
	}
	if code, _ := hs.raw("GET", "/run", ""); code != 405 {
		t.Errorf("GET /run = %d, want 405", code)
	}
}

func TestTTL(t *testing.T) {
	t.Run("result retention", func(t *testing.T) {
		hs := start(t, func(o *api.Options) { o.ResultTTL = time.Minute })
		id := hs.submit(`{"mode":"ok"}`)
		hs.waitStatus(id, "COMPLETED")
		hs.clock.Advance(59 * time.Second)
		if code, _ := hs.call("GET", "/status/"+id, ""); code != 200 {
			t.Errorf("within the TTL: %d", code)
		}
		hs.clock.Advance(2 * time.Second)
		if code, m := hs.call("GET", "/status/"+id, ""); code != 404 || m["error"] == nil {
			t.Errorf("after the TTL: %d %v, want 404", code, m)
		}
	})
	t.Run("policy.ttl while queued", func(t *testing.T) {
		hs := start(t, nil)
		first := hs.submit(`{"mode":"block"}`)
		hs.waitStarted(first)
		_, m := hs.call("POST", "/run", `{"input":{"mode":"ok"},"policy":{"ttl":10000}}`)
		id := m["id"].(string)
		hs.clock.Advance(11 * time.Second)
		if code, _ := hs.call("GET", "/status/"+id, ""); code != 404 {
			t.Errorf("expired queued job: %d, want 404", code)
		}
		hs.h.Release()
		hs.waitStatus(first, "COMPLETED")
		if n := hs.h.Calls(id); n != 0 {
			t.Errorf("expired job ran %d times", n)
		}
	})
	t.Run("policy.ttl while running", func(t *testing.T) {
		hs := start(t, nil)
		_, m := hs.call("POST", "/run", `{"input":{"mode":"block"},"policy":{"ttl":100}}`)
		id := m["id"].(string)
		hs.waitStarted(id)
		select {
		case <-hs.h.cancelled:
		case <-time.After(10 * time.Second):
			t.Fatal("job not cancelled at its TTL")
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, _ := hs.call("GET", "/status/"+id, "")
			if code == 404 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status after TTL = %d, want 404", code)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
}

// hookReceiver records webhook deliveries; it fails the first `failures`.
type hookReceiver struct {
	mu       sync.Mutex
	failures int
	bodies   [][]byte
	got      chan struct{}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, b)
	if len(h.bodies) <= h.failures {
		w.WriteHeader(500)
		return
	}
	w.WriteHeader(200)
	select {
	case h.got <- struct{}{}:
	default:
	}
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

func TestWebhook(t *testing.T) {
	recv := &hookReceiver{failures: 1, got: make(chan struct{}, 1)}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	hs := start(t, nil)
	_, m := hs.call("POST", "/run", `{"input":{"mode":"ok"},"webhook":"`+srv.URL+`/hook"}`)
	id := m["id"].(string)
	select {
	case <-recv.got:
	case <-time.After(10 * time.Second):
		t.Fatal("webhook not delivered")
	}
	if n := recv.count(); n != 2 {
		t.Errorf("%d webhook calls, want 2 (one failure, one success)", n)
	}
	var body map[string]any
	if err := json.Unmarshal(recv.bodies[1], &body); err != nil {
		t.Fatal(err)
	}
	if body["id"] != id || body["status"] != "COMPLETED" || body["output"] == nil {
		t.Errorf("webhook body = %v", body)
	}
	_, st := hs.call("GET", "/status/"+id, "")
	want, _ := json.Marshal(st)
	got, _ := json.Marshal(body)
	if !bytes.Equal(want, got) {
		t.Errorf("webhook body differs from /status:\n%s\n%s", got, want)
	}
}

func TestWebhookToPrivateAddressRefused(t *testing.T) {
	recv := &hookReceiver{got: make(chan struct{}, 1)}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	hs := start(t, func(o *api.Options) { o.WebhookAllowPrivate = false })
	_, m := hs.call("POST", "/run", `{"input":{"mode":"ok"},"webhook":"`+srv.URL+`"}`)
	hs.waitStatus(m["id"].(string), "COMPLETED")
	if err := hs.stop(); err != nil { // waits for webhook deliveries
		t.Fatal(err)
	}
	if n := recv.count(); n != 0 {
		t.Errorf("webhook to loopback delivered %d times", n)
	}
}

func TestV2Prefix(t *testing.T) {
	hs := start(t, nil)
	code, m := hs.call("POST", "/v2/abc123/run", `{"input":{"mode":"ok"}}`)
	if code != 200 {
		t.Fatalf("/v2/abc123/run = %d", code)
	}
	id := m["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, m = hs.call("GET", "/v2/abc123/status/"+id, "")
		if m["status"] == "COMPLETED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status = %v", m)
		}
		time.Sleep(2 * time.Millisecond)
	}
	routes := []struct{ method, path string }{
		{"POST", "/v2/abc123/runsync?wait=1000"},
		{"GET", "/v2/abc123/stream/" + id},
		{"POST", "/v2/abc123/status/" + id},
		{"POST", "/v2/abc123/cancel/" + id},
		{"GET", "/v2/abc123/health"},
		{"POST", "/v2/abc123/purge-queue"},
	}
	for _, r := range routes {
		body := ""
		if strings.Contains(r.path, "runsync") {
			body = `{"input":{"mode":"ok"}}`
		}
		if code, m := hs.call(r.method, r.path, body); code != 200 {
			t.Errorf("%s %s = %d %v", r.method, r.path, code, m)
		}
	}
	if code, _ := hs.call("POST", "/v2/abc123/retry/"+id, ""); code != 400 {
		t.Errorf("retry of a completed job under /v2 = %d, want 400", code)
	}
}

func TestShutdownLetsRunningJobFinishThenCancels(t *testing.T) {
	hs := start(t, func(o *api.Options) { o.ShutdownGrace = 100 * time.Millisecond })
	id := hs.submit(`{"mode":"block"}`)
	hs.waitStarted(id)
	done := make(chan error, 1)
	go func() { done <- hs.stop() }()
	select {
	case got := <-hs.h.cancelled:
		if got != id {
			t.Errorf("cancelled %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("running job not cancelled after the grace")
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr, token string
		insecure    bool
		ok          bool
	}{
		{"127.0.0.1:8000", "", false, true},
		{"localhost:8000", "", false, true},
		{"[::1]:8000", "", false, true},
		{"0.0.0.0:8000", "", false, false},
		{":8000", "", false, false},
		{"192.168.1.5:8000", "", false, false},
		{"0.0.0.0:8000", "tok", false, true},
		{"0.0.0.0:8000", "", true, true},
	}
	for _, tc := range tests {
		err := api.CheckAddr(tc.addr, tc.token, tc.insecure)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q, token=%q, insecure=%v) = %v", tc.addr, tc.token, tc.insecure, err)
		}
		if err != nil && !strings.Contains(err.Error(), "API_TOKEN") {
			t.Errorf("error does not say what to do: %v", err)
		}
	}
	s := api.New(api.Options{Addr: "0.0.0.0:0"}, newScripted(), testLogger(t))
	if err := s.Run(t.Context()); err == nil {
		t.Error("Run on 0.0.0.0 without a token started")
	}
}

func TestOptionsFrom(t *testing.T) {
	c := config.Default()
	o := api.OptionsFrom(c)
	if o.Addr != "127.0.0.1:8000" || o.QueueSize != 16 || o.ResultTTL != time.Hour || o.MaxBodyBytes != 40<<20 {
		t.Errorf("OptionsFrom(defaults) = %+v", o)
	}
	if !o.WebhookAllowPrivate {
		t.Error("loopback API should allow loopback webhooks")
	}
	c.APIAddr = "0.0.0.0:8000"
	if api.OptionsFrom(c).WebhookAllowPrivate {
		t.Error("public API allows private webhooks without ALLOW_PRIVATE_IMAGE_URLS")
	}
}

func TestOpenAPI(t *testing.T) {
	hs := start(t, nil)
	code, served := hs.raw("GET", "/openapi.json", "")
	if code != 200 {
		t.Fatalf("/openapi.json = %d", code)
	}
	file, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served, file) {
		t.Error("served document differs from docs/openapi.json")
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(served, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	for _, p := range []string{"/run", "/runsync", "/status/{id}", "/status-sync/{id}", "/stream/{id}", "/cancel/{id}", "/retry/{id}", "/health", "/purge-queue"} {
		for _, prefix := range []string{"", "/v2/{endpoint_id}"} {
			if _, ok := doc.Paths[prefix+p]; !ok {
				t.Errorf("%s%s is not documented", prefix, p)
			}
		}
	}
}

// TestPlaygroundPage: the page and its assets load without the token (the
// page asks for it); the API routes still need it, and only GET and HEAD
// reach the page.
func TestPlaygroundPage(t *testing.T) {
	hs := start(t, func(o *api.Options) { o.Token = "s3cret" })
	for _, tc := range []struct {
		method, path string
		want         int
		wantType     string
	}{
		{"GET", "/", 200, "text/html"},
		{"HEAD", "/", 200, "text/html"},
		{"GET", "/playground/app.js", 200, "text/javascript"},
		{"GET", "/v2/ep/", 401, "application/json"},
		{"POST", "/", 401, "application/json"},
		{"GET", "/health", 401, "application/json"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, hs.base+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.wantType) {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), tc.want, tc.wantType)
		}
	}
	// With the token, POST / is no route (JSON, as every API answer).
	if code, m := hs.call("POST", "/", "", "Authorization", "Bearer s3cret"); code != 404 || m["error"] == nil {
		t.Errorf("POST / with the token = %d %v", code, m)
	}
}
