//go:build unix

package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// helperOpts runs the test binary as ComfyUI in the given mode.
func helperOpts(t *testing.T, mode string, env ...string) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{
		ComfyDir:     dir,
		Exec:         []string{os.Args[0], "-test.run=^TestHelperProcess$", "--"},
		Env:          append([]string{helperEnv + "=" + mode, helperStateEnv + "=" + dir, "GORACE=atexit_sleep_ms=0"}, env...),
		WorkDir:      filepath.Join(dir, "work"),
		LogFile:      filepath.Join(dir, "logs", "comfyui.log"),
		ModelsDirs:   []string{filepath.Join(dir, "models")},
		StartTimeout: 30 * time.Second,
		PollInterval: 10 * time.Millisecond,
		StopGrace:    5 * time.Second,
		MaxRestarts:  3,
		BackoffMin:   10 * time.Millisecond,
		BackoffMax:   40 * time.Millisecond,
	}
}

// start starts a supervisor and stops it when the test ends.
func start(t *testing.T, opts Options, log *slog.Logger) *Supervisor {
	t.Helper()
	s := New(opts, log)
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v\nlog tail:\n%s", err, s.LogTail())
	}
	return s
}

// gone reports whether pid no longer runs. A zombie counts as gone: it is
// dead and only waits for its parent (init, for an orphan) to reap it.
func gone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// waitFor polls cond until it holds or the limit passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func post(t *testing.T, url string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// recorder is a slog handler that keeps every record.
type recorder struct {
	mu    *sync.Mutex
	recs  *[]rec
	attrs []slog.Attr
}

type rec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newRecorder() (*slog.Logger, *recorder) {
	r := &recorder{mu: &sync.Mutex{}, recs: &[]rec{}}
	return slog.New(r), r
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{mu: r.mu, recs: r.recs, attrs: append(append([]slog.Attr(nil), r.attrs...), as...)}
}
func (r *recorder) Handle(_ context.Context, rr slog.Record) error {
	m := map[string]string{}
	for _, a := range r.attrs {
		m[a.Key] = a.Value.String()
	}
	rr.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	r.mu.Lock()
	*r.recs = append(*r.recs, rec{rr.Level, rr.Message, m})
	r.mu.Unlock()
	return nil
}

func (r *recorder) find(match func(rec) bool) []rec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []rec
	for _, x := range *r.recs {
		if match(x) {
			out = append(out, x)
		}
	}
	return out
}

func TestStartServeStop(t *testing.T) {
	t.Parallel()
	log, recs := newRecorder()
	opts := helperOpts(t, modeNormal)
	if err := os.MkdirAll(filepath.Join(opts.ModelsDirs[0], "loras"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := start(t, opts, log)

	inc := s.Current()
	if inc.N() != 1 || s.URL() != inc.URL() || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("incarnation %d, URL %q / %q", inc.N(), s.URL(), inc.URL())
	}
	if code := get(t, s.URL()+"/system_stats"); code != http.StatusOK {
		t.Fatalf("/system_stats: %d", code)
	}
	if err := s.Ready(t.Context()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if ok, why := s.Healthy(); !ok {
		t.Fatalf("unhealthy: %s", why)
	}
	// The command line carried the worker's directories and the model paths.
	waitFor(t, "the helper's argument line", 5*time.Second, func() bool { return strings.Contains(s.LogTail(), "--disable-auto-launch") })
	for _, want := range []string{
		"--listen 127.0.0.1 --port " + strings.TrimPrefix(s.URL(), "http://127.0.0.1:"),
		"--input-directory " + filepath.Join(opts.WorkDir, "input"),
		"--output-directory " + filepath.Join(opts.WorkDir, "output"),
		"--temp-directory " + opts.WorkDir,
		"--extra-model-paths-config " + filepath.Join(opts.WorkDir, ModelPathsFile),
		"--user-directory " + filepath.Join(opts.WorkDir, "user"),
		"--database-url sqlite:///" + filepath.Join(opts.WorkDir, "user", "comfyui.db"),
	} {
		if !strings.Contains(s.LogTail(), want) {
			t.Errorf("command line lacks %q:\n%s", want, s.LogTail())
		}
	}
	if fi, err := os.Stat(filepath.Join(opts.WorkDir, "user")); err != nil || !fi.IsDir() {
		t.Errorf("the user directory was not made: %v", err)
	}
	yaml, err := os.ReadFile(filepath.Join(opts.WorkDir, ModelPathsFile))
	if err != nil || !bytes.Contains(yaml, []byte("loras: |")) {
		t.Errorf("model paths file: %v\n%s", err, yaml)
	}
	for _, d := range []string{s.InputDir(), s.OutputDir()} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("work dir %s: %v", d, err)
		}
	}
	// The child's lines reach the worker's log, tagged.
	waitFor(t, "a comfyui log record", 5*time.Second, func() bool {
		return len(recs.find(func(r rec) bool {
			return r.attrs["component"] == "comfyui" && strings.HasPrefix(r.msg, "To see the GUI") && r.attrs["pid"] == strconv.Itoa(inc.PID())
		})) == 1
	})

	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if code, status := inc.Exit(); code != 0 {
		t.Errorf("exit %d (%s), want a graceful exit 0", code, status)
	}
	if !strings.Contains(inc.LogTail(), "got SIGTERM") {
		t.Errorf("SIGTERM not seen by the child:\n%s", inc.LogTail())
	}
	if e := apperr.As(inc.Err()); e == nil || e.Code != apperr.ComfyUnavailable || !errors.Is(inc.Err(), ErrStopped) {
		t.Errorf("Err after Stop = %v, want COMFY_UNAVAILABLE (stopped)", inc.Err())
	}
	if !gone(inc.PID()) {
		t.Errorf("pid %d still runs after Stop", inc.PID())
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := s.Ready(t.Context()); !errors.Is(err, ErrStopped) {
		t.Errorf("Ready after Stop = %v", err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start after Stop succeeded")
	}
	logText, err := os.ReadFile(opts.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logText, []byte("=== wan22-worker: ComfyUI start #1")) || !bytes.Contains(logText, []byte("To see the GUI")) {
		t.Errorf("log file lacks the start marker or the output:\n%s", logText)
	}
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    string
		env     []string
		timeout time.Duration
		cancel  bool
		check   func(t *testing.T, err error)
		code    apperr.Code
	}{
		{
			name: "exits before ready", mode: modeCrashEarly, code: apperr.ComfyUnavailable,
			check: func(t *testing.T, err error) {
				var e *ExitedError
				if !errors.As(err, &e) {
					t.Fatalf("err = %v, want *ExitedError", err)
				}
				if e.ExitCode != 1 || e.Status != "exit status 1" {
					t.Errorf("exit %d %q", e.ExitCode, e.Status)
				}
				if !strings.Contains(e.Tail, "ModuleNotFoundError: No module named 'torch'") || !strings.Contains(e.Tail, "Total VRAM") {
					t.Errorf("tail lacks the traceback:\n%s", e.Tail)
				}
				if !strings.Contains(err.Error(), "ModuleNotFoundError") {
					t.Errorf("message lacks the log tail: %s", err)
				}
			},
		},
		{
			name: "times out", mode: modeSlow, env: []string{helperDelayEnv + "=1h"}, timeout: 300 * time.Millisecond,
			code: apperr.ComfyUnavailable,
			check: func(t *testing.T, err error) {
				var e *TimeoutError
				if !errors.As(err, &e) || e.After != 300*time.Millisecond {
					t.Fatalf("err = %v, want *TimeoutError after 300ms", err)
				}
				if !strings.Contains(e.Tail, "To see the GUI") {
					t.Errorf("tail: %q", e.Tail)
				}
			},
		},
		{
			name: "cancelled", mode: modeSlow, env: []string{helperDelayEnv + "=1h"}, cancel: true, code: apperr.Cancelled,
			check: func(t *testing.T, err error) {
				var e *CancelledError
				if !errors.As(err, &e) || !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want *CancelledError wrapping context.Canceled", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := helperOpts(t, tc.mode, tc.env...)
			if tc.timeout > 0 {
				opts.StartTimeout = tc.timeout
			}
			s := New(opts, nil)
			t.Cleanup(func() { _ = s.Stop(context.Background()) })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				go func() {
					for s.Current() == nil || !strings.Contains(s.LogTail(), "To see the GUI") {
						time.Sleep(5 * time.Millisecond)
					}
					cancel()
				}()
			}
			err := s.Start(ctx)
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if got := apperr.CodeOf(err); got != tc.code {
				t.Errorf("code %s, want %s (%v)", got, tc.code, err)
			}
			tc.check(t, err)
			inc := s.Current()
			if !closed(inc.Done()) {
				t.Error("the failed incarnation is not reaped")
			}
			if !gone(inc.PID()) {
				t.Errorf("pid %d survived a failed start", inc.PID())
			}
		})
	}
}

func TestSlowButInTime(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{modeSlow, modeBindLate} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := start(t, helperOpts(t, mode, helperDelayEnv+"=300ms"), nil)
			if code := get(t, s.URL()+"/system_stats"); code != http.StatusOK {
				t.Fatalf("/system_stats: %d", code)
			}
		})
	}
}

func TestCrashMidJobRestarts(t *testing.T) {
	t.Parallel()
	log, recs := newRecorder()
	opts := helperOpts(t, modeNormal)
	s := start(t, opts, log)
	first := s.Current()
	url := s.URL()
	yamlPath := filepath.Join(opts.WorkDir, ModelPathsFile)
	if b, _ := os.ReadFile(yamlPath); bytes.Contains(b, []byte("loras")) {
		t.Fatalf("loras listed before the folder exists:\n%s", b)
	}
	// A folder created while running is wired at the restart.
	if err := os.MkdirAll(filepath.Join(opts.ModelsDirs[0], "loras"), 0o755); err != nil {
		t.Fatal(err)
	}

	post(t, url+"/crash")
	select {
	case <-first.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("crash not noticed")
	}
	err := first.Err()
	if apperr.CodeOf(err) != apperr.ComfyCrashed {
		t.Fatalf("Err = %v, want COMFY_CRASHED", err)
	}
	var crash *CrashError
	if !errors.As(err, &crash) || crash.ExitCode != 3 || !crash.WasReady || crash.Incarnation != 1 {
		t.Fatalf("crash = %+v", crash)
	}
	if !strings.Contains(err.Error(), "ModuleNotFoundError: No module named 'torch'") {
		t.Errorf("message lacks the log tail: %s", err)
	}

	var ev CrashEvent
	select {
	case ev = <-s.Crashes():
	case <-time.After(10 * time.Second):
		t.Fatal("no crash event")
	}
	if ev.Incarnation != 1 || ev.ExitCode != 3 || ev.RestartIn != 10*time.Millisecond || ev.Crashes != 1 || !ev.Healthy {
		t.Errorf("event = %+v", ev)
	}

	if err := s.Ready(t.Context()); err != nil {
		t.Fatalf("Ready after crash: %v", err)
	}
	if n := s.Current().N(); n != 2 {
		t.Errorf("incarnation %d after one restart", n)
	}
	if s.URL() != url {
		t.Errorf("URL changed across restart: %s → %s", url, s.URL())
	}
	if b, _ := os.ReadFile(yamlPath); !bytes.Contains(b, []byte("loras: |")) {
		t.Errorf("model paths not rewritten at the restart:\n%s", b)
	}
	if code := get(t, s.URL()+"/system_stats"); code != http.StatusOK {
		t.Errorf("restarted server: %d", code)
	}
	if !gone(first.PID()) {
		t.Errorf("crashed pid %d still runs", first.PID())
	}
	// The traceback reached the worker's log as one error record.
	waitFor(t, "traceback record", 5*time.Second, func() bool {
		return len(recs.find(func(r rec) bool {
			return r.level == slog.LevelError && r.attrs["component"] == "comfyui" &&
				r.msg == "ModuleNotFoundError: No module named 'torch'" && strings.Count(r.attrs["traceback"], "\n") == 5
		})) == 1
	})
}

func TestRepeatedCrashesBackoffAndUnhealthy(t *testing.T) {
	t.Parallel()
	opts := helperOpts(t, modeCrashLoop)
	opts.MaxRestarts = 2
	s := start(t, opts, nil)
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	for i, d := range want {
		var ev CrashEvent
		select {
		case ev = <-s.Crashes():
		case <-time.After(20 * time.Second):
			t.Fatalf("crash %d not reported", i+1)
		}
		if ev.Incarnation != i+1 || ev.RestartIn != d || ev.Crashes != i+1 || ev.ExitCode != 2 {
			t.Errorf("crash %d: incarnation %d, restart in %s (want %s), crashes %d, exit %d", i+1, ev.Incarnation, ev.RestartIn, d, ev.Crashes, ev.ExitCode)
		}
		if healthyWant := i+1 <= opts.MaxRestarts; ev.Healthy != healthyWant {
			t.Errorf("crash %d: healthy %v, want %v", i+1, ev.Healthy, healthyWant)
		}
		if !strings.Contains(ev.Tail, "CUDA error: an illegal memory access") {
			t.Errorf("crash %d tail: %q", i+1, ev.Tail)
		}
	}
	ok, why := s.Healthy()
	if ok || !strings.Contains(why, "COMFY_MAX_RESTARTS=2") {
		t.Errorf("Healthy = %v, %q", ok, why)
	}
}

func TestStopDuringBackoff(t *testing.T) {
	t.Parallel()
	opts := helperOpts(t, modeCrashLoop)
	opts.BackoffMin, opts.BackoffMax = time.Hour, time.Hour
	s := start(t, opts, nil)
	select {
	case <-s.Crashes():
	case <-time.After(20 * time.Second):
		t.Fatal("no crash")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Stop waited for the backoff")
	}
	if n := s.Current().N(); n != 1 {
		t.Errorf("restarted after Stop: incarnation %d", n)
	}
}

func TestStopDuringStart(t *testing.T) {
	t.Parallel()
	s := New(helperOpts(t, modeSlow, helperDelayEnv+"=1h"), nil)
	started := make(chan error, 1)
	go func() { started <- s.Start(t.Context()) }()
	waitFor(t, "the process", 20*time.Second, func() bool { return s.Current() != nil })
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-started:
		if err == nil {
			t.Fatal("Start succeeded although stopped")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Start did not return after Stop")
	}
	if pid := s.Current().PID(); !gone(pid) {
		t.Errorf("pid %d survived", pid)
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	opts := helperOpts(t, modeIgnoreTerm)
	opts.StopGrace = 300 * time.Millisecond
	log, recs := newRecorder()
	s := start(t, opts, log)
	inc := s.Current()
	t0 := time.Now()
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < opts.StopGrace {
		t.Errorf("killed after %s, before the %s grace", el, opts.StopGrace)
	}
	if code, status := inc.Exit(); code != -1 || status != "signal: killed" {
		t.Errorf("exit %d %q, want killed", code, status)
	}
	if !gone(inc.PID()) {
		t.Errorf("pid %d survived", inc.PID())
	}
	if len(recs.find(func(r rec) bool { return strings.Contains(r.msg, "ignored SIGTERM") })) != 1 {
		t.Error("no warning about the kill")
	}
}

func TestStopWithExpiredContextKillsAtOnce(t *testing.T) {
	t.Parallel()
	opts := helperOpts(t, modeIgnoreTerm)
	opts.StopGrace = time.Hour
	s := start(t, opts, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !gone(s.Current().PID()) {
		t.Error("process survived")
	}
}

var grandchildRE = regexp.MustCompile(`grandchild pid (\d+)`)

func grandchildPID(t *testing.T, s *Supervisor) int {
	t.Helper()
	var pid int
	waitFor(t, "the grandchild's pid", 10*time.Second, func() bool {
		m := grandchildRE.FindStringSubmatch(s.LogTail())
		if m == nil {
			return false
		}
		pid, _ = strconv.Atoi(m[1])
		return true
	})
	// Never leak it, whatever the test finds.
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

func TestGroupKillReapsGrandchild(t *testing.T) {
	t.Parallel()
	t.Run("on stop", func(t *testing.T) {
		t.Parallel()
		s := start(t, helperOpts(t, modeGrandchild), nil)
		gpid := grandchildPID(t, s)
		if gone(gpid) {
			t.Fatal("grandchild not running")
		}
		if err := s.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the grandchild to die", 5*time.Second, func() bool { return gone(gpid) })
	})
	t.Run("on crash", func(t *testing.T) {
		t.Parallel()
		s := start(t, helperOpts(t, modeGrandchild), nil)
		gpid := grandchildPID(t, s)
		inc := s.Current()
		post(t, s.URL()+"/crash")
		<-inc.Done()
		waitFor(t, "the grandchild to die", 5*time.Second, func() bool { return gone(gpid) })
	})
}

func TestFloodKeepsTailBounded(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	opts := helperOpts(t, modeFlood, helperFloodEnv+"="+strconv.Itoa(size))
	s := start(t, opts, nil) // no deadlock: it gets ready after the flood
	waitFor(t, "the end of the flood", 20*time.Second, func() bool { return strings.Contains(s.LogTail(), "To see the GUI") })
	tail := s.LogTail()
	lines := strings.Split(tail, "\n")
	if len(tail) > opts.withDefaults().TailBytes || len(lines) > opts.withDefaults().TailLines {
		t.Errorf("tail holds %d bytes in %d lines", len(tail), len(lines))
	}
	var long, bar bool
	for _, l := range lines {
		if strings.HasPrefix(l, "LLLL") {
			long = true
			if !strings.HasSuffix(l, truncatedMark) || len(l) != 4<<10+len(truncatedMark) {
				t.Errorf("long line kept as %d bytes", len(l))
			}
		}
		if strings.Contains(l, "|") && strings.Contains(l, "/100") {
			bar = true
			if !strings.HasPrefix(l, "100%") {
				t.Errorf("progress bar line %q, want its final state", l)
			}
		}
	}
	if !long || !bar || !strings.Contains(tail, "flood done") {
		t.Errorf("tail lacks the long line (%v), the bar (%v) or the end:\n%.2000s", long, bar, tail)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(opts.LogFile)
	if err != nil || st.Size() < size {
		t.Errorf("log file: %v, %d bytes, want all %d", err, st.Size(), size)
	}
}

func TestPortTakenRetriesOnAnotherPort(t *testing.T) {
	t.Parallel()
	log, recs := newRecorder()
	s := start(t, helperOpts(t, modePortTaken), log)
	if n := s.Current().N(); n != 2 {
		t.Errorf("ready as incarnation %d, want 2", n)
	}
	if len(recs.find(func(r rec) bool { return strings.Contains(r.msg, "port was taken") })) != 1 {
		t.Error("no retry logged")
	}
	select {
	case ev := <-s.Crashes():
		t.Errorf("a retried bind counted as a crash: %+v", ev)
	default:
	}
}

func TestLogFileFallsBackToWorkDir(t *testing.T) {
	t.Parallel()
	opts := helperOpts(t, modeNormal)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	opts.LogFile = filepath.Join(blocker, "comfyui.log") // its folder is a file
	log, recs := newRecorder()
	s := start(t, opts, log)
	want := filepath.Join(opts.WorkDir, "comfyui.log")
	if s.LogFile() != want {
		t.Errorf("LogFile = %q, want %q", s.LogFile(), want)
	}
	if len(recs.find(func(r rec) bool { return r.level == slog.LevelWarn && r.attrs["using"] == want })) != 1 {
		t.Error("no warning about the fallback")
	}
}

func TestTemporaryWorkDirRemovedOnStop(t *testing.T) {
	t.Parallel()
	opts := helperOpts(t, modeNormal)
	opts.WorkDir = ""
	s := start(t, opts, nil)
	dir := filepath.Dir(s.InputDir())
	if _, err := os.Stat(filepath.Join(dir, ModelPathsFile)); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("work dir %s left behind: %v", dir, err)
	}
}

func TestStartFailsOnBadSettings(t *testing.T) {
	t.Parallel()
	opts := helperOpts(t, modeNormal)
	opts.VRAMMode = "turbo"
	s := New(opts, nil)
	defer s.Stop(context.Background())
	err := s.Start(t.Context())
	if e := apperr.As(err); e == nil || !strings.Contains(e.Message, "COMFY_VRAM_MODE") || e.Code != apperr.ComfyUnavailable ||
		!strings.Contains(e.Hint, "configuration.md") {
		t.Errorf("Start = %v", err)
	}
	opts = helperOpts(t, modeNormal)
	opts.Exec = []string{filepath.Join(t.TempDir(), "no-such-python")}
	s = New(opts, nil)
	defer s.Stop(context.Background())
	err = s.Start(t.Context())
	if e := apperr.As(err); e == nil || !strings.Contains(e.Message, "cannot run") || !strings.Contains(e.Hint, "COMFY_PYTHON") {
		t.Errorf("Start = %v", err)
	}
}

func TestRemoveInputAndOutput(t *testing.T) {
	t.Parallel()
	s := start(t, helperOpts(t, modeNormal), nil)
	write := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	outside := write(filepath.Join(t.TempDir(), "keep.png"))
	in := write(filepath.Join(s.InputDir(), "job1.png"))
	inSub := write(filepath.Join(s.InputDir(), "jobs", "job2.png"))
	out := write(filepath.Join(s.OutputDir(), "wan22", "job1_00001.mp4"))
	if err := os.Symlink(outside, filepath.Join(s.InputDir(), "link")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		remove  func() error
		wantErr bool
		gone    string
	}{
		{"input", func() error { return s.RemoveInput("job1.png") }, false, in},
		{"input in a subfolder", func() error { return s.RemoveInput("jobs/job2.png") }, false, inSub},
		{"output", func() error { return s.RemoveOutput("wan22", "job1_00001.mp4") }, false, out},
		{"already gone", func() error { return s.RemoveInput("job1.png") }, false, ""},
		{"symlink removed, not its target", func() error { return s.RemoveInput("link") }, false, filepath.Join(s.InputDir(), "link")},
		{"parent", func() error { return s.RemoveInput("../output/wan22") }, true, ""},
		{"sneaky parent", func() error { return s.RemoveInput("jobs/../../x") }, true, ""},
		{"absolute", func() error { return s.RemoveInput(outside) }, true, ""},
		{"empty", func() error { return s.RemoveInput("") }, true, ""},
		{"the folder itself", func() error { return s.RemoveInput(".") }, true, ""},
		{"output parent", func() error { return s.RemoveOutput("..", "input") }, true, ""},
		{"output without name", func() error { return s.RemoveOutput("wan22", "") }, true, ""},
	}
	for _, tc := range tests {
		err := tc.remove()
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if tc.gone != "" {
			if _, err := os.Lstat(tc.gone); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %s still exists", tc.name, tc.gone)
			}
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("file outside the input dir was touched: %v", err)
	}
	if _, err := os.Stat(s.OutputDir()); err != nil {
		t.Errorf("output dir: %v", err)
	}
}

func TestBeforeStart(t *testing.T) {
	s := New(Options{}, nil)
	if s.URL() != "" || s.Current() != nil || s.LogTail() != "" {
		t.Error("state before Start")
	}
	if ok, _ := s.Healthy(); !ok {
		t.Error("unhealthy before Start")
	}
	if err := s.RemoveInput("x.png"); err == nil {
		t.Error("RemoveInput before Start succeeded")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := s.Ready(ctx); apperr.CodeOf(err) != apperr.ComfyUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ready before Start = %v", err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
}

func ExampleOptions_CommandLine() {
	opts := Options{ComfyDir: "/comfyui", Python: "/opt/venv/bin/python", WorkDir: "/tmp/wan22-comfyui",
		VRAMMode: "highvram", Attention: "sage", Fast: "fp16_accumulation", ReserveVRAM: 1.5,
		ExtraArgs: []string{"--cache-lru", "4"}}
	argv, _ := opts.CommandLine(8188)
	fmt.Println(strings.Join(argv, " "))
	// Output:
	// /opt/venv/bin/python -u /comfyui/main.py --listen 127.0.0.1 --port 8188 --disable-auto-launch --input-directory /tmp/wan22-comfyui/input --output-directory /tmp/wan22-comfyui/output --temp-directory /tmp/wan22-comfyui --extra-model-paths-config /tmp/wan22-comfyui/extra_model_paths.yaml --user-directory /tmp/wan22-comfyui/user --database-url sqlite:////tmp/wan22-comfyui/user/comfyui.db --preview-method none --disable-metadata --disable-api-nodes --highvram --use-sage-attention --reserve-vram 1.5 --fast fp16_accumulation --cache-lru 4
}
