package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/api"
	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/startup"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

// clock is a settable clock for expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// scripted is a handler driven by the job input's "mode":
// ok, fail, panic, block (until released or cancelled), progress (reports
// progress, then blocks like block), flaky (fails the first time, then ok).
type scripted struct {
	mu        sync.Mutex
	release   chan struct{}
	started   chan string
	cancelled chan string
	calls     map[string]int
	healthy   bool
	once      sync.Once
}

func newScripted() *scripted {
	return &scripted{release: make(chan struct{}), started: make(chan string, 100), cancelled: make(chan string, 100),
		calls: map[string]int{}, healthy: true}
}

func (s *scripted) Release() { s.once.Do(func() { close(s.release) }) }

func (s *scripted) Calls(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

func (s *scripted) Healthy() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.healthy {
		return false, "ComfyUI keeps crashing"
	}
	return true, ""
}

func (s *scripted) Handle(ctx context.Context, id string, input json.RawMessage, p progress.Func) (*worker.Result, error) {
	var in struct {
		Mode string `json:"mode"`
	}
	_ = json.Unmarshal(input, &in)
	s.mu.Lock()
	s.calls[id]++
	n := s.calls[id]
	s.mu.Unlock()
	s.started <- id
	switch in.Mode {
	case "fail":
		return nil, apperr.Field(apperr.ImageInvalid, "image", "the image is not a PNG, JPEG or WebP", "send a PNG")
	case "flaky":
		if n == 1 {
			return nil, apperr.New(apperr.ComfyCrashed, "ComfyUI died", "retry")
		}
	case "panic":
		panic("index out of range")
	case "progress":
		p(progress.Progress{Stage: progress.SamplingHigh, Percent: 30, Step: 2, Steps: 6})
		p(progress.Progress{Stage: progress.SamplingLow, Percent: 60, Step: 4, Steps: 6})
		fallthrough
	case "block":
		select {
		case <-s.release:
		case <-ctx.Done():
			s.cancelled <- id
			return nil, ctx.Err()
		}
	}
	return &worker.Result{Video: worker.Base64("AAAA"), Filename: "wan2_2_00001.mp4", PromptID: id, FilesCount: 1,
		MimeType: "video/mp4", Width: 64, Height: 64, Frames: 5, FrameRate: 16, Seed: 1}, nil
}

type harness struct {
	t     *testing.T
	base  string
	h     *scripted
	clock *clock
	stop  func() error
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return logging.NewWith(testWriter{t}, logging.Text, slog.LevelDebug)
	}
	return logging.Discard()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, tweak func(*api.Options)) *harness {
	t.Helper()
	c := newClock()
	o := api.Options{Addr: "127.0.0.1:0", QueueSize: 4, ResultTTL: time.Hour, MaxBodyBytes: 1 << 20,
		JobTimeout: 10 * time.Second, ShutdownGrace: 2 * time.Second, Now: c.Now,
		WebhookInterval: 10 * time.Millisecond, WebhookTimeout: 2 * time.Second, WebhookAllowPrivate: true}
	if tweak != nil {
		tweak(&o)
	}
	h := newScripted()
	s := api.New(o, h, testLogger(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-errc:
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		h.Release()
		_ = stop()
	})
	return &harness{t: t, base: "http://" + ln.Addr().String(), h: h, clock: c, stop: stop}
}

// call makes a request and decodes a JSON answer into a map.
func (hs *harness) call(method, path, body string, hdr ...string) (int, map[string]any) {
	hs.t.Helper()
	code, raw := hs.raw(method, path, body, hdr...)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			hs.t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, raw, err)
		}
	}
	return code, m
}

func (hs *harness) raw(method, path, body string, hdr ...string) (int, []byte) {
	hs.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(hs.t.Context(), method, hs.base+path, r)
	if err != nil {
		hs.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		hs.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		hs.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); len(bytes.TrimSpace(b)) > 0 && ct != "application/json" {
		hs.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, b
}

// submit posts to /run and returns the job id.
func (hs *harness) submit(input string) string {
	hs.t.Helper()
	code, m := hs.call("POST", "/run", `{"input":`+input+`}`)
	if code != 200 {
		hs.t.Fatalf("/run = %d %v", code, m)
	}
	return m["id"].(string)
}

// waitStatus polls /status until the job reaches want.
func (hs *harness) waitStatus(id, want string) map[string]any {
	hs.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, m := hs.call("GET", "/status/"+id, "")
		if code == 200 && m["status"] == want {
			return m
		}
		if time.Now().After(deadline) {
			hs.t.Fatalf("job %s: status %d %v, want %s", id, code, m, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitStarted waits until the handler began job id.
func (hs *harness) waitStarted(id string) {
	hs.t.Helper()
	for {
		select {
		case got := <-hs.h.started:
			if got == id {
				return
			}
		case <-time.After(10 * time.Second):
			hs.t.Fatalf("job %s never started", id)
		}
	}
}

// StartupTimeline makes the scripted handler a timeline source, as worker.Pipeline is.
func (s *scripted) StartupTimeline() startup.Report {
	return startup.Report{Steps: []startup.Step{{Name: startup.ProcessStart}, {Name: startup.ComfyReady, AtMS: 1200}}}
}
