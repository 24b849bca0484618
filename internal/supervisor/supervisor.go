// Package supervisor runs ComfyUI for the worker: it starts it on a free
// loopback port with directories the worker owns, waits until it answers,
// copies its output to a log file and to the worker's log, restarts it with
// backoff when it crashes, reports the worker unhealthy when it keeps
// crashing, and stops it (and everything it started) on the way out. Attach
// gives the same interface for a ComfyUI that runs elsewhere (COMFY_URL).
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
)

// Server is a ComfyUI the worker talks to: started and supervised
// (*Supervisor), or attached to (*Attached).
type Server interface {
	// Start blocks until ComfyUI answers /system_stats, or fails with one of
	// *ExitedError, *TimeoutError, *CancelledError (wrapped in *apperr.Error).
	Start(ctx context.Context) error
	// URL is the current base URL, e.g. http://127.0.0.1:8188.
	URL() string
	// Ready waits until the current process is ready (after a restart, the
	// new one).
	Ready(ctx context.Context) error
	// Current is the running process; a job selects on its Done. Nil before
	// Start.
	Current() *Incarnation
	// Healthy is false, with a reason, when ComfyUI keeps crashing and the
	// worker should be replaced.
	Healthy() (bool, string)
	// LogTail returns the last lines of ComfyUI's output.
	LogTail() string
	// Crashes delivers an event per crash (or failed restart); nil when there
	// is no process to watch. Events are dropped when nobody reads.
	Crashes() <-chan CrashEvent
	// RemoveInput deletes a job's file from ComfyUI's input directory.
	RemoveInput(name string) error
	// RemoveOutput deletes a file from ComfyUI's output directory.
	RemoveOutput(subfolder, name string) error
	// Stop ends ComfyUI and everything it started; idempotent.
	Stop(ctx context.Context) error
}

var (
	_ Server = (*Supervisor)(nil)
	_ Server = (*Attached)(nil)
)

// FromConfig returns the server the configuration asks for: Attach when
// COMFY_URL is set, else a Supervisor.
func FromConfig(c *config.Config, log *slog.Logger) (Server, error) {
	if c.ComfyURL != "" {
		return Attach(c.ComfyURL, c.ComfyStartTimeout, log)
	}
	return New(OptionsFrom(c), log), nil
}

// CrashEvent describes one crash of ComfyUI, or one restart that failed.
type CrashEvent struct {
	Incarnation int
	PID         int
	ExitCode    int // -1 for a signal
	Status      string
	WasReady    bool
	Err         error // *apperr.Error: COMFY_CRASHED, or the failed start's error
	Tail        string
	At          time.Time
	Crashes     int           // crashes within the restart window, this one included
	Healthy     bool          // Healthy() after this crash
	RestartIn   time.Duration // backoff before the next start
}

// Supervisor starts and supervises ComfyUI. Build it with New.
type Supervisor struct {
	opts     Options
	log      *slog.Logger // component=supervisor
	childLog *slog.Logger // component=comfyui
	http     *http.Client
	crashes  chan CrashEvent

	// Set once by prepare (logPath, inputDir, outputDir under mu).
	prepared   bool
	lastModels string // the model folders last logged
	ownWorkDir bool
	logPath    string
	logClose   func() error
	file       *fileWriter
	inputDir   string
	outputDir  string

	mu       sync.Mutex
	started  bool
	stopped  bool
	cur      *Incarnation
	changed  chan struct{} // closed and replaced when cur changes or on Stop
	count    int           // incarnations started
	port     int           // port of the last start
	window   crashWindow
	cancel   context.CancelFunc // ends the restart loop
	loopDone chan struct{}
	// A Start in progress.
	startCancel context.CancelFunc
	startDone   chan struct{}
	stopOnce    sync.Once
	stopError   error
}

// New returns a supervisor; nothing runs until Start.
func New(opts Options, log *slog.Logger) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	return &Supervisor{
		opts:     opts,
		log:      log.With("component", "supervisor"),
		childLog: log.With("component", "comfyui"),
		http:     newLoopbackClient(),
		crashes:  make(chan CrashEvent, 16),
		changed:  make(chan struct{}),
		port:     opts.Port,
		window:   crashWindow{span: opts.RestartWindow},
	}
}

// Start prepares the work dir and the model paths file, starts ComfyUI and
// blocks until it answers /system_stats (COMFY_START_TIMEOUT). Then it
// returns and keeps supervising in the background until Stop. On failure
// nothing is left running; Start may be called again.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.stopped:
		s.mu.Unlock()
		return userError(ErrStopped, s.logPath) // under mu
	case s.started:
		s.mu.Unlock()
		return errors.New("supervisor: Start called twice")
	}
	s.started = true
	// Stop cancels a Start in progress and waits for it to return.
	ctx, cancelStart := context.WithCancel(ctx)
	startDone := make(chan struct{})
	s.startCancel, s.startDone = cancelStart, startDone
	s.mu.Unlock()
	defer func() {
		cancelStart()
		close(startDone)
	}()
	fail := func(err error) error {
		s.mu.Lock()
		s.started = false
		s.mu.Unlock()
		return err
	}

	if err := s.prepare(); err != nil {
		return fail(apperr.Wrap(apperr.ComfyUnavailable, err, "cannot prepare ComfyUI's directories: "+err.Error(),
			"the work dir and the log file's folder must be writable"))
	}
	inc, err := s.startOne(ctx, s.opts.StopGrace)
	if err != nil {
		return fail(userError(err, s.logPath))
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		s.terminate(context.WithoutCancel(ctx), inc, s.opts.StopGrace)
		return userError(ErrStopped, s.logPath)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.loopDone = make(chan struct{})
	s.mu.Unlock()
	go s.supervise(loopCtx, inc)
	return nil
}

// prepare creates the work dir and opens the log file. Done once per
// Supervisor.
func (s *Supervisor) prepare() error {
	if s.prepared {
		return nil
	}
	if s.opts.WorkDir == "" {
		d, err := os.MkdirTemp("", "wan22-comfyui-")
		if err != nil {
			return err
		}
		s.opts.WorkDir, s.ownWorkDir = d, true
	}
	in := filepath.Join(s.opts.WorkDir, InputSubdir)
	out := filepath.Join(s.opts.WorkDir, OutputSubdir)
	user := filepath.Join(s.opts.WorkDir, UserSubdir) // ComfyUI refuses a --user-directory that does not exist
	for _, d := range []string{s.opts.WorkDir, in, out, user} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f, p, err := openLog(s.opts.LogFile, s.opts.WorkDir)
	if err != nil {
		return err
	}
	if p != s.opts.LogFile && s.opts.LogFile != "" {
		s.log.Warn("cannot write ComfyUI's log file; using the work dir instead", "wanted", s.opts.LogFile, "using", p)
	}
	s.logClose = f.Close
	s.file = &fileWriter{w: f, log: s.log}
	s.prepared = true
	s.mu.Lock()
	s.logPath, s.inputDir, s.outputDir = p, in, out
	s.mu.Unlock()
	return nil
}

// writeModelPaths (re)writes the extra model paths file before each start,
// so that a restart sees model folders created since. What was found is
// logged at the first start and whenever it changes.
func (s *Supervisor) writeModelPaths() error {
	paths := modelpaths.Resolve(s.opts.ModelsDirs, s.opts.Stat)
	paths.SetCache(modelpaths.FindCache(s.opts.CacheHubs, s.opts.CacheFiles), filepath.Join(s.opts.WorkDir, CacheLinksDir), s.opts.PreferCache)
	if err := paths.LinkCache(); err != nil {
		return err
	}
	if err := paths.WriteFile(filepath.Join(s.opts.WorkDir, ModelPathsFile)); err != nil {
		return err
	}
	summary := strings.Join(paths.Summary(), "\n")
	if summary == s.lastModels {
		return nil
	}
	s.lastModels = summary
	for _, line := range paths.Summary() {
		s.log.Info("model folder", "folder", line)
	}
	if len(paths.Roots) == 0 {
		s.log.Warn("none of MODELS_DIRS exists; ComfyUI sees only its own models folder", "models_dirs", strings.Join(s.opts.ModelsDirs, ":"))
	}
	return nil
}

// openLog opens (truncates) the log file, or falls back to the work dir.
func openLog(want, workDir string) (*os.File, string, error) {
	if want != "" {
		if err := os.MkdirAll(filepath.Dir(want), 0o755); err == nil {
			if f, err := os.OpenFile(want, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err == nil {
				return f, want, nil
			}
		}
	}
	p := filepath.Join(workDir, "comfyui.log")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	return f, p, err
}

// bindRetries is how many ports one start tries when the port was taken.
const bindRetries = 3

// startOne launches ComfyUI and waits until it is ready. On failure the
// process is stopped (SIGTERM, grace, SIGKILL) and the start error returned
// with the incarnation, whose Done is then closed.
func (s *Supervisor) startOne(ctx context.Context, grace time.Duration) (*Incarnation, error) {
	for attempt := 1; ; attempt++ {
		port, err := s.choosePort()
		if err != nil {
			return nil, err
		}
		if err := s.writeModelPaths(); err != nil {
			return nil, &setupError{err, "the work dir must be writable"}
		}
		inc, err := s.launch(port)
		if err != nil {
			return nil, err
		}
		s.setCurrent(inc)
		err = s.waitReady(ctx, inc)
		if err == nil {
			return inc, nil
		}
		s.terminate(context.WithoutCancel(ctx), inc, grace)
		var exited *ExitedError
		if errors.As(err, &exited) && addrInUse(exited.Tail) && s.opts.Port == 0 && attempt < bindRetries {
			s.log.Warn("ComfyUI's port was taken; retrying on another", "port", port)
			s.mu.Lock()
			s.port = 0
			s.mu.Unlock()
			continue
		}
		return inc, err
	}
}

// choosePort keeps the last port while it is free, else picks a new one.
func (s *Supervisor) choosePort() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.port != 0 && (s.opts.Port != 0 || portFree(s.port)) {
		return s.port, nil
	}
	p, err := freePort()
	if err != nil {
		return 0, fmt.Errorf("no free loopback port: %w", err)
	}
	s.port = p
	return p, nil
}

func (s *Supervisor) setCurrent(inc *Incarnation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = inc
	close(s.changed)
	s.changed = make(chan struct{})
}

// supervise restarts ComfyUI after each crash until ctx ends.
func (s *Supervisor) supervise(ctx context.Context, inc *Incarnation) {
	defer close(s.loopDone)
	consecutive := 0
	var startErr error // why inc failed to start, when it did
	for {
		select {
		case <-ctx.Done():
			return
		case <-inc.Done():
		}
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if inc.readyFor(now) >= s.opts.StableAfter {
			consecutive = 0
		}
		consecutive++
		delay := backoff(consecutive, s.opts.BackoffMin, s.opts.BackoffMax)
		s.mu.Lock()
		n := s.window.add(now)
		s.mu.Unlock()
		healthy, reason := s.Healthy()
		ev := CrashEvent{Incarnation: inc.n, PID: inc.pid, WasReady: inc.wasReady(), Tail: inc.tail.String(),
			At: now, Crashes: n, Healthy: healthy, RestartIn: delay}
		ev.ExitCode, ev.Status = inc.Exit()
		ev.Err = inc.Err()
		if startErr != nil {
			ev.Err = userError(startErr, s.logPath)
		}
		s.log.Error("ComfyUI crashed; restarting", "incarnation", inc.n, "pid", inc.pid, "status", ev.Status,
			"was_ready", ev.WasReady, "restart_in", delay, "crashes_in_window", n, "log_tail", lastLines(ev.Tail, errTailLines))
		if !healthy {
			s.log.Error("worker unhealthy", "reason", reason)
		}
		select {
		case s.crashes <- ev:
		default:
		}

		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		next, err := s.startOne(ctx, s.opts.StopGrace)
		if next == nil { // could not even launch: count it and try again later
			if ctx.Err() != nil {
				return
			}
			s.log.Error("cannot restart ComfyUI", "err", err)
			startErr = err
			continue // inc is still the dead one: its Done stays closed
		}
		inc, startErr = next, err
		if err != nil && ctx.Err() == nil {
			s.log.Error("ComfyUI restart failed", "err", err)
		}
	}
}

// backoff returns first·2^(n-1), capped at limit.
func backoff(n int, first, limit time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// crashWindow counts crashes within a sliding time span.
type crashWindow struct {
	span  time.Duration
	times []time.Time
}

// add records a crash at now and returns the count within the span.
func (w *crashWindow) add(now time.Time) int {
	w.times = append(w.times, now)
	return w.count(now)
}

// count returns the crashes within the span before now, dropping older ones.
func (w *crashWindow) count(now time.Time) int {
	i := 0
	for i < len(w.times) && now.Sub(w.times[i]) >= w.span {
		i++
	}
	w.times = w.times[i:]
	return len(w.times)
}

// Healthy reports false, with a reason, when ComfyUI crashed more than
// MaxRestarts times within RestartWindow; the RunPod loop then asks for a
// fresh worker. It becomes true again as crashes leave the window.
func (s *Supervisor) Healthy() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.window.count(time.Now())
	if n > s.opts.MaxRestarts {
		return false, fmt.Sprintf("ComfyUI crashed %d times in the last %s (COMFY_MAX_RESTARTS=%d)", n, s.opts.RestartWindow, s.opts.MaxRestarts)
	}
	return true, ""
}

// URL returns the current base URL; "" before Start. The port stays the same
// across restarts unless another process took it.
func (s *Supervisor) URL() string {
	if inc := s.Current(); inc != nil {
		return inc.URL()
	}
	return ""
}

// Current returns the current incarnation (the running process, or the one
// being started); nil before Start.
func (s *Supervisor) Current() *Incarnation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Ready waits until the current incarnation answers /system_stats; after a
// crash it waits for the restarted one. It fails with COMFY_UNAVAILABLE when
// the supervisor stops, or when ctx ends first (the error then also matches
// ctx.Err() with errors.Is).
func (s *Supervisor) Ready(ctx context.Context) error {
	for {
		s.mu.Lock()
		inc, changed, stopped, logPath := s.cur, s.changed, s.stopped, s.logPath
		s.mu.Unlock()
		if stopped {
			return userError(ErrStopped, logPath)
		}
		// Wait on the current process while it lives, else for the next one.
		var ready, done <-chan struct{}
		if inc != nil && !closed(inc.done) {
			if closed(inc.ready) {
				return nil
			}
			ready, done = inc.ready, inc.done
		}
		select {
		case <-ready:
		case <-done:
		case <-changed:
		case <-ctx.Done():
			return apperr.Wrap(apperr.ComfyUnavailable, ctx.Err(), "ComfyUI is not ready: "+s.notReadyReason(inc),
				"wait and retry; if it keeps crashing see ComfyUI's log ("+logPath+")")
		}
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (s *Supervisor) notReadyReason(inc *Incarnation) string {
	switch {
	case inc == nil:
		return "not started"
	case inc.Err() != nil:
		return "restarting after a crash"
	}
	return "still starting"
}

// LogTail returns the last lines of the current incarnation's output.
func (s *Supervisor) LogTail() string {
	if inc := s.Current(); inc != nil {
		return inc.LogTail()
	}
	return ""
}

// LogFile is the path ComfyUI's output is written to ("" before Start).
func (s *Supervisor) LogFile() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logPath
}

// InputDir is ComfyUI's input directory ("" before Start).
func (s *Supervisor) InputDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inputDir
}

// OutputDir is ComfyUI's output directory ("" before Start).
func (s *Supervisor) OutputDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outputDir
}

// Crashes delivers one event per crash. There is one channel; read it from
// one goroutine. Events are dropped when 16 are unread.
func (s *Supervisor) Crashes() <-chan CrashEvent { return s.crashes }

// RemoveInput deletes name (a file name, or subfolder/name) from ComfyUI's
// input directory. A name that would leave the directory is refused; a file
// that is already gone is not an error.
func (s *Supervisor) RemoveInput(name string) error { return removeIn(s.InputDir(), name) }

// RemoveOutput deletes subfolder/name from ComfyUI's output directory, with
// the same rules as RemoveInput.
func (s *Supervisor) RemoveOutput(subfolder, name string) error {
	if name == "" {
		return errors.New("empty output file name")
	}
	return removeIn(s.OutputDir(), path.Join(filepath.ToSlash(subfolder), filepath.ToSlash(name)))
}

func removeIn(dir, name string) error {
	if dir == "" {
		return errNotStarted
	}
	rel := filepath.ToSlash(name)
	if name == "" || path.IsAbs(rel) || filepath.IsAbs(name) || !fs.ValidPath(strings.TrimPrefix(path.Clean(rel), "./")) ||
		path.Clean(rel) == "." {
		return fmt.Errorf("refusing to remove %q: not a file inside %s", name, dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	// os.Root refuses paths (and symlinks) that lead outside dir.
	if err := root.Remove(filepath.FromSlash(path.Clean(rel))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Stop stops supervising and ends ComfyUI: SIGTERM to its process group,
// up to the stop grace (or ctx's deadline, if sooner) to exit, then SIGKILL to
// the group. It returns once the process is reaped. Safe to call more than
// once and from several goroutines; later calls wait for the first.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		close(s.changed)
		s.changed = make(chan struct{})
		startCancel, startDone := s.startCancel, s.startDone
		s.mu.Unlock()
		if startCancel != nil {
			startCancel()
			<-startDone
		}
		s.mu.Lock()
		cancel, loopDone := s.cancel, s.loopDone
		s.mu.Unlock()

		if cancel != nil {
			cancel()
			<-loopDone
		}
		if inc := s.Current(); inc != nil {
			s.terminate(ctx, inc, s.opts.StopGrace)
			s.log.Info("ComfyUI stopped", "incarnation", inc.n, "pid", inc.pid)
		}
		if s.logClose != nil {
			s.stopError = s.logClose()
		}
		if s.ownWorkDir {
			if err := os.RemoveAll(s.opts.WorkDir); err != nil && s.stopError == nil {
				s.stopError = err
			}
		}
	})
	return s.stopError
}
