package runpod_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/runpod"
	"github.com/wan22-worker/wan22-worker/internal/runpod/runpodtest"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

// scripted is a worker.Handler whose behaviour per call is a function.
type scripted struct {
	mu      sync.Mutex
	fn      func(ctx context.Context, id string, input json.RawMessage, p progress.Func) (*worker.Result, error)
	calls   []string
	started chan string // receives each job id as its call begins (buffered)
	healthy func() (bool, string)
}

func newScripted(fn func(ctx context.Context, id string, input json.RawMessage, p progress.Func) (*worker.Result, error)) *scripted {
	if fn == nil {
		fn = succeed
	}
	return &scripted{fn: fn, started: make(chan string, 100)}
}

func (s *scripted) Handle(ctx context.Context, id string, input json.RawMessage, p progress.Func) (*worker.Result, error) {
	s.mu.Lock()
	s.calls = append(s.calls, id)
	s.mu.Unlock()
	s.started <- id
	return s.fn(ctx, id, input, p)
}

func (s *scripted) Healthy() (bool, string) {
	s.mu.Lock()
	h := s.healthy
	s.mu.Unlock()
	if h == nil {
		return true, ""
	}
	return h()
}

func (s *scripted) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// result is the canned result for a job.
func result(id string) *worker.Result {
	return &worker.Result{Video: worker.Base64("AAAA"), Filename: "wan2_2_00001.mp4", PromptID: id, FilesCount: 1,
		MimeType: "video/mp4", Width: 64, Height: 64, Frames: 5, FrameRate: 16, Seed: 7, SizeBytes: 3}
}

func succeed(_ context.Context, id string, _ json.RawMessage, _ progress.Func) (*worker.Result, error) {
	return result(id), nil
}

// blockUntilDone blocks until the job's context ends and returns the
// handler's usual CANCELLED error.
func blockUntilDone(ctx context.Context, _ string, _ json.RawMessage, _ progress.Func) (*worker.Result, error) {
	<-ctx.Done()
	return nil, apperr.Wrap(apperr.Cancelled, context.Cause(ctx), "interrupted", "")
}

// fastOptions are loop options that keep tests quick.
func fastOptions(t Templates) runpod.Options {
	return runpod.Options{
		GetJobURL: t.GetJob, PostOutputURL: t.PostOutput, PostStreamURL: t.PostStream, PingURL: t.Ping,
		PingInterval: 20 * time.Millisecond, APIKey: "rp-key", PodID: "pod-1", EndpointID: "ep",
		ShutdownGrace: time.Second, JobTimeout: 10 * time.Second,
		TakeTimeout: 5 * time.Second, StopPollTimeout: 5 * time.Second, StopPollMinInterval: 5 * time.Millisecond,
		IdlePause: 5 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond,
		RateLimitWait: 10 * time.Millisecond, ResultWindow: 5 * time.Second, PostTimeout: 5 * time.Second,
		ProgressInterval: time.Millisecond, ProgressTimeout: time.Second, AbandonAfter: time.Second,
		Version: "test",
	}
}

// Templates aliases the fake's URL templates.
type Templates = runpodtest.Templates

// harness runs the loop against a fake until the test ends.
type harness struct {
	t      *testing.T
	fake   *runpodtest.Server
	h      *scripted
	cancel context.CancelFunc
	errc   chan error
}

func startLoop(t *testing.T, fo runpodtest.Options, h *scripted, tweak func(*runpod.Options)) *harness {
	t.Helper()
	if fo.Hold == 0 {
		fo.Hold = 100 * time.Millisecond
	}
	fake := runpodtest.New(fo)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	o := fastOptions(fake.Templates(srv.URL))
	if tweak != nil {
		tweak(&o)
	}
	ctx, cancel := context.WithCancel(t.Context())
	hs := &harness{t: t, fake: fake, h: h, cancel: cancel, errc: make(chan error, 1)}
	go func() { hs.errc <- runpod.Run(ctx, o, h, testLogger(t)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-hs.errc:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return hs
}

// stop cancels the loop and returns Run's error.
func (hs *harness) stop() error {
	hs.cancel()
	select {
	case err := <-hs.errc:
		hs.errc <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		hs.t.Fatal("Run did not return after cancel")
		return nil
	}
}

// wait waits for cond with a generous bound.
func (hs *harness) wait(what string, cond func() bool) {
	hs.t.Helper()
	ctx, cancel := context.WithTimeout(hs.t.Context(), 10*time.Second)
	defer cancel()
	if err := hs.fake.Wait(ctx, cond); err != nil {
		hs.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (hs *harness) waitResults(ids ...string) {
	hs.t.Helper()
	hs.wait("results of "+joinIDs(ids), func() bool {
		for _, id := range ids {
			if len(hs.fake.Results(id)) == 0 {
				return false
			}
		}
		return true
	})
}

// waitStarted waits until the handler was called for id.
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

// checkClean asserts no protocol problem and exactly one accepted result per delivery.
func (hs *harness) checkClean(ids ...string) {
	hs.t.Helper()
	for _, p := range hs.fake.Problems() {
		hs.t.Errorf("protocol problem: %s", p)
	}
	for _, id := range ids {
		if n, d := len(hs.fake.Results(id)), hs.fake.Delivered(id); n != d {
			hs.t.Errorf("job %s: %d results accepted for %d deliveries", id, n, d)
		}
	}
}

func joinIDs(ids []string) string {
	b, _ := json.Marshal(ids)
	return string(b)
}

// body decodes a recorded post.
func body(t *testing.T, q runpodtest.Request) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(q.Body, &m); err != nil {
		t.Fatalf("post body %q: %v", q.Body, err)
	}
	return m
}

// errorCode returns output.error.code of a posted failure.
func errorCode(t *testing.T, q runpodtest.Request) string {
	t.Helper()
	m := body(t, q)
	out, _ := m["output"].(map[string]any)
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return logging.NewWith(testWriter{t}, logging.Text, slog.LevelDebug)
	}
	return logging.Discard()
}

var errBoom = errors.New("boom")
