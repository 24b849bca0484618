package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// The three ways a start can fail, as distinct types. Start, Ready and the
// restart loop return them wrapped in an *apperr.Error (see userError), so
// callers branch with errors.As and users get a code and a hint.

// ExitedError: ComfyUI exited before it answered /system_stats.
type ExitedError struct {
	ExitCode int    // -1 when killed by a signal
	Status   string // e.g. "exit status 1", "signal: killed"
	Tail     string // last lines of its log
}

func (e *ExitedError) Error() string {
	return "ComfyUI exited before it was ready (" + e.Status + ")"
}

// TimeoutError: ComfyUI did not answer /system_stats within the start timeout.
type TimeoutError struct {
	After time.Duration
	Tail  string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("ComfyUI did not answer /system_stats within %s", e.After)
}

// CancelledError: the caller's context ended while waiting. Unwrap gives the
// context's error, so errors.Is(err, context.Canceled) holds.
type CancelledError struct {
	Err error
}

func (e *CancelledError) Error() string { return "waiting for ComfyUI was cancelled: " + e.Err.Error() }

// Unwrap returns the context's error.
func (e *CancelledError) Unwrap() error { return e.Err }

// CrashError: a ComfyUI process that was running exited on its own. It is
// what Incarnation.Err returns (wrapped as COMFY_CRASHED).
type CrashError struct {
	Incarnation int
	ExitCode    int
	Status      string
	WasReady    bool
	Tail        string
}

func (e *CrashError) Error() string {
	return "ComfyUI exited unexpectedly (" + e.Status + ")"
}

// setupError is a failure before ComfyUI runs (a bad setting, a missing
// program, an unwritable work dir), with what to change.
type setupError struct {
	err  error
	hint string
}

func (e *setupError) Error() string { return e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

// ErrStopped is the cause when the supervisor was stopped on purpose.
var ErrStopped = errors.New("ComfyUI supervisor stopped")

// errTailLines bounds the log lines quoted in a user-facing message; the full
// tail stays available through LogTail and the log file.
const errTailLines = 20

// userError maps the supervisor's failures to the job error contract. It is
// the one place where they get codes and hints.
func userError(err error, logFile string) error {
	if err == nil {
		return nil
	}
	if apperr.As(err) != nil {
		return err
	}
	seeLog := "see ComfyUI's log (" + logFile + ")"
	var (
		exited  *ExitedError
		timeout *TimeoutError
		cancel  *CancelledError
		crash   *CrashError
		setup   *setupError
	)
	switch {
	case errors.As(err, &exited):
		return apperr.Wrap(apperr.ComfyUnavailable, err, withTail(exited.Error(), exited.Tail),
			"ComfyUI could not start; "+seeLog+". Common causes: a missing Python package (COMFY_PYTHON is the wrong interpreter), "+
				"a flag this ComfyUI does not know (COMFY_EXTRA_ARGS), or no usable GPU (COMFY_VRAM_MODE=cpu for tests)")
	case errors.As(err, &timeout):
		return apperr.Wrap(apperr.ComfyUnavailable, err, withTail(timeout.Error(), timeout.Tail),
			"raise COMFY_START_TIMEOUT if ComfyUI is still loading (custom nodes, a slow disk), or "+seeLog+" for where it hangs")
	case errors.As(err, &cancel):
		return apperr.Wrap(apperr.Cancelled, err, cancel.Error(), "the worker is shutting down or the wait was given up; nothing to change")
	case errors.As(err, &crash):
		return apperr.Wrap(apperr.ComfyCrashed, err, withTail(crash.Error(), crash.Tail),
			"ComfyUI is restarted automatically; retry the job. If it crashes again, "+seeLog+
				": a CUDA error or a host-memory kill (no Python traceback) usually means the job needs less memory "+
				"(smaller width/height or fewer frames)")
	case errors.As(err, &setup):
		return apperr.Wrap(apperr.ComfyUnavailable, err, err.Error(), setup.hint)
	case errors.Is(err, ErrStopped):
		return apperr.Wrap(apperr.ComfyUnavailable, err, "ComfyUI is not running: the worker is stopping", "retry on another worker")
	}
	return apperr.Wrap(apperr.ComfyUnavailable, err, err.Error(), seeLog)
}

func withTail(msg, tail string) string {
	tail = lastLines(tail, errTailLines)
	if tail == "" {
		return msg
	}
	return msg + "; last lines of its log:\n" + tail
}

func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
