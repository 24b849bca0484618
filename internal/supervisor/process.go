package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Incarnation is one ComfyUI process: from its start to its exit. A job
// takes the current incarnation when it starts and selects on Done, so that
// a crash fails the job at once instead of after a websocket timeout.
type Incarnation struct {
	n         int
	url       string
	pid       int
	startedAt time.Time

	ready chan struct{} // closed when /system_stats answered 200
	done  chan struct{} // closed after the process exited and its output is drained

	readyAt  atomic.Int64 // unix nanos, 0 until ready
	stopping atomic.Bool  // the worker stopped it on purpose

	// Set before done is closed.
	exitCode int
	status   string
	err      error

	cmd  *exec.Cmd
	tail *tail
}

// N is the incarnation's number, from 1, counting every start.
func (i *Incarnation) N() int { return i.n }

// URL is the base URL of this process's HTTP API.
func (i *Incarnation) URL() string { return i.url }

// PID is the process id (0 for an attached server).
func (i *Incarnation) PID() int { return i.pid }

// Ready is closed once the process answered /system_stats.
func (i *Incarnation) Ready() <-chan struct{} { return i.ready }

// Done is closed when the process has exited; nil (never closed) for an
// attached server.
func (i *Incarnation) Done() <-chan struct{} { return i.done }

// Err is nil until Done is closed; then the reason as a user-facing error:
// COMFY_CRASHED (with the exit status and the last log lines) when the process
// exited on its own, COMFY_UNAVAILABLE when the worker stopped it.
func (i *Incarnation) Err() error {
	select {
	case <-i.done:
		return i.err
	default:
		return nil
	}
}

// Exit returns the exit code (-1 for a signal) and status text once Done is
// closed.
func (i *Incarnation) Exit() (code int, status string) {
	select {
	case <-i.done:
		return i.exitCode, i.status
	default:
		return 0, ""
	}
}

// LogTail returns the last lines this process wrote.
func (i *Incarnation) LogTail() string {
	if i.tail == nil {
		return ""
	}
	return i.tail.String()
}

// StartedAt is when the process was spawned.
func (i *Incarnation) StartedAt() time.Time { return i.startedAt }

// ReadyAt is when it first answered /system_stats; zero before.
func (i *Incarnation) ReadyAt() time.Time {
	if n := i.readyAt.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (i *Incarnation) wasReady() bool { return i.readyAt.Load() != 0 }

func (i *Incarnation) readyFor(now time.Time) time.Duration {
	at := i.readyAt.Load()
	if at == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, at))
}

// drainTimeout bounds how long output is read after the process exited: a
// process outside the group could hold the pipe open forever.
const drainTimeout = 2 * time.Second

// launch starts one ComfyUI process on port and its reaper.
func (s *Supervisor) launch(port int) (*Incarnation, error) {
	argv, err := s.opts.CommandLine(port)
	if err != nil {
		return nil, &setupError{err, "fix the setting; docs/configuration.md lists the accepted values"}
	}
	s.mu.Lock()
	s.count++
	n := s.count
	s.mu.Unlock()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.opts.ComfyDir
	if st, err := os.Stat(cmd.Dir); err != nil || !st.IsDir() {
		cmd.Dir = s.opts.WorkDir
	}
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.Env = append(cmd.Env, s.opts.Env...)
	cmd.SysProcAttr = sysProcAttr()
	// One pipe for stdout and stderr keeps their order. The pipe is ours, not
	// exec's, so Wait does not wait for the output: the reaper learns of the
	// exit at once, kills what is left of the group (which may hold the pipe),
	// then drains the pipe before it reports the exit.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w

	fmt.Fprintf(s.file, "=== wan22-worker: ComfyUI start #%d at %s: %s\n", n, time.Now().UTC().Format(time.RFC3339), strings.Join(argv, " "))
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, &setupError{fmt.Errorf("cannot run %s: %w", argv[0], err),
			"COMFY_PYTHON must name a Python interpreter (on PATH or an absolute path) and COMFYUI_DIR a ComfyUI checkout with main.py"}
	}
	_ = w.Close()

	inc := &Incarnation{
		n:         n,
		url:       "http://" + Host + ":" + strconv.Itoa(port),
		pid:       cmd.Process.Pid,
		startedAt: time.Now(),
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
		cmd:       cmd,
		tail:      newTail(s.opts.TailLines, s.opts.TailBytes),
	}
	s.log.Info("ComfyUI started", "incarnation", n, "pid", inc.pid, "url", inc.url)
	go s.reap(inc, r)
	return inc, nil
}

// reap is the one goroutine that waits for the process. Everything else
// learns about the exit from inc.done.
func (s *Supervisor) reap(inc *Incarnation, r *os.File) {
	sink := &logSink{
		log:      s.childLog.With("incarnation", inc.n, "pid", inc.pid),
		tail:     inc.tail,
		maxTrace: 200,
	}
	lines := newLineWriter(s.opts.MaxLineBytes, sink.line)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 32<<10)
		_, _ = io.CopyBuffer(io.MultiWriter(s.file, lines), r, buf)
		lines.Flush()
		sink.flush()
	}()

	werr := inc.cmd.Wait()
	// Nothing ComfyUI started may outlive it (and keep the pipe open).
	_ = signalGroup(inc.pid, sigKill)
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		_ = r.Close() // unblocks the reader
		<-drained
	}
	_ = r.Close()

	inc.exitCode, inc.status = exitStatus(inc.cmd.ProcessState, werr)
	if inc.stopping.Load() {
		inc.err = userError(ErrStopped, s.logPath)
	} else {
		inc.err = userError(&CrashError{Incarnation: inc.n, ExitCode: inc.exitCode, Status: inc.status,
			WasReady: inc.wasReady(), Tail: inc.tail.String()}, s.logPath)
	}
	close(inc.done)
}

func exitStatus(ps *os.ProcessState, werr error) (int, string) {
	if ps == nil {
		if werr != nil {
			return -1, werr.Error()
		}
		return -1, "unknown exit"
	}
	return ps.ExitCode(), ps.String()
}

// terminate stops inc: SIGTERM to its group, up to grace (or until ctx
// ends) for it to exit, then SIGKILL. It returns once the process is reaped.
// Safe to call repeatedly.
func (s *Supervisor) terminate(ctx context.Context, inc *Incarnation, grace time.Duration) {
	inc.stopping.Store(true)
	if closed(inc.done) {
		return
	}
	if grace > 0 && ctx.Err() == nil {
		_ = signalGroup(inc.pid, sigTerm)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-inc.done:
			return
		case <-t.C:
			s.log.Warn("ComfyUI ignored SIGTERM; killing it", "pid", inc.pid, "grace", grace)
		case <-ctx.Done():
			s.log.Warn("stop deadline reached; killing ComfyUI", "pid", inc.pid)
		}
	}
	_ = signalGroup(inc.pid, sigKill)
	<-inc.done
}

// waitReady polls /system_stats until it answers 200 and returns nil, or
// returns one of the three start failures: *ExitedError when the process
// exits first, *TimeoutError after the start timeout, *CancelledError when
// ctx ends.
func (s *Supervisor) waitReady(ctx context.Context, inc *Incarnation) error {
	timeout := time.NewTimer(s.opts.StartTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(s.opts.PollInterval)
	defer tick.Stop()
	for {
		if probe(ctx, s.http, inc.url) == nil {
			// A probe can race an exit; trust the exit.
			select {
			case <-inc.done:
			default:
				inc.readyAt.Store(time.Now().UnixNano())
				close(inc.ready)
				s.log.Info("ComfyUI ready", "incarnation", inc.n, "url", inc.url, "after", time.Since(inc.startedAt).Round(time.Millisecond))
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return &CancelledError{Err: ctx.Err()}
		case <-inc.done:
			return &ExitedError{ExitCode: inc.exitCode, Status: inc.status, Tail: inc.tail.String()}
		case <-timeout.C:
			return &TimeoutError{After: s.opts.StartTimeout, Tail: inc.tail.String()}
		case <-tick.C:
		}
	}
}

// probeTimeout bounds one readiness probe.
const probeTimeout = 2 * time.Second

// probe asks base/system_stats once; nil means HTTP 200.
func probe(ctx context.Context, hc *http.Client, base string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/system_stats", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/system_stats: HTTP %d", resp.StatusCode)
	}
	return nil
}

// newLoopbackClient talks to a local ComfyUI: no proxy (HTTP_PROXY must not
// capture loopback traffic), no kept-alive connections across restarts.
func newLoopbackClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}

// addrInUse reports whether a failed start's log says the port was taken.
// The exit status alone cannot tell, so the log text is the signal here.
func addrInUse(tail string) bool {
	t := strings.ToLower(tail)
	return strings.Contains(t, "address already in use") || strings.Contains(t, "errno 98")
}

var errNotStarted = errors.New("ComfyUI supervisor not started")
