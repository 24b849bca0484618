// Package result shapes a finished job the way RunPod shows it, for the
// RunPod loop and the local API alike: Outcome and Finish are the one place
// where a handler's result or error becomes {"output": {...}} on success, or
// {"error": "CODE: message", "output": {"error": {...}}} on failure; Call
// runs a handler with a panic turned into an INTERNAL error.
package result

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

// Outcome is a finished job in RunPod's job-done shape.
type Outcome struct {
	// Error is "CODE: message" on failure, empty on success.
	Error string `json:"error,omitempty"`
	// Output is the result on success, {"error": {...}} on failure.
	Output Body `json:"-"`
	// StopPod asks RunPod to replace this worker after the job.
	StopPod bool `json:"stopPod,omitempty"`
	// Err is the typed error of a failed job; nil on success.
	Err *apperr.Error `json:"-"`
}

// Body is JSON text held in pieces to send one after the other: an inline
// video's base64 is a piece of its own, never copied into a joined buffer.
type Body [][]byte

// Len is the length of the joined text.
func (b Body) Len() int {
	n := 0
	for _, p := range b {
		n += len(p)
	}
	return n
}

// JSON is the text in one piece (a copy, unless it is one piece already).
func (b Body) JSON() json.RawMessage {
	switch len(b) {
	case 0:
		return nil
	case 1:
		return b[0]
	}
	out := make([]byte, 0, b.Len())
	for _, p := range b {
		out = append(out, p...)
	}
	return out
}

// Failed reports whether the job failed.
func (o Outcome) Failed() bool { return o.Err != nil }

// Parts is the job-done body — {"error"?, "output"?, "stopPod"?}, in that
// order — as the pieces to send one after the other: the output (possibly
// megabytes of inline video) is passed through as it is, never copied or
// re-encoded (Finish and Fail built it as JSON already).
func (o Outcome) Parts() [][]byte {
	head := []byte{'{'}
	if o.Error != "" {
		e, _ := json.Marshal(o.Error) // a string always encodes
		head = append(append(head, `"error":`...), e...)
	}
	tail := []byte{}
	if o.StopPod {
		tail = append(tail, `,"stopPod":true`...)
	}
	tail = append(tail, '}')
	if o.Output.Len() == 0 {
		if o.Error == "" && o.StopPod {
			tail = tail[1:] // no comma after a bare '{'
		}
		return [][]byte{head, tail}
	}
	if o.Error != "" {
		head = append(head, ',')
	}
	head = append(head, `"output":`...)
	parts := make([][]byte, 0, len(o.Output)+2)
	parts = append(append(append(parts, head), o.Output...), tail)
	return parts
}

// JSON is the job-done body in one piece (see Parts).
func (o Outcome) JSON() []byte { return Body(o.Parts()).JSON() }

// errorOutput is output.error of a failed job.
type errorOutput struct {
	Error *apperr.Error `json:"error"`
}

// Finish turns what a handler returned into the job's outcome. cause is the
// cause of the job context's end (context.Cause), if any: when the handler
// returns a bare context error, a typed cause (a CANCELLED or TIMEOUT
// *apperr.Error set by whoever ended the context) says why.
func Finish(res *worker.Result, err error, cause error) Outcome {
	if err == nil {
		if res == nil {
			return Fail(apperr.New(apperr.Internal, "the handler returned neither a result nor an error",
				"this is a bug in the worker; report it with the worker's log"))
		}
		parts, merr := res.JSONParts()
		if merr != nil {
			return Fail(apperr.Wrap(apperr.Internal, merr, "the result could not be encoded as JSON: "+merr.Error(),
				"this is a bug in the worker; report it with the worker's log"))
		}
		return Outcome{Output: parts}
	}
	return Fail(ErrorOf(err, cause))
}

// Fail is the outcome of a job that failed with e.
func Fail(e *apperr.Error) Outcome {
	b, err := json.Marshal(errorOutput{Error: e})
	if err != nil {
		b = []byte(`{"error":{"code":"INTERNAL","message":"unencodable error"}}`)
	}
	return Outcome{Error: e.Error(), Output: Body{b}, Err: e}
}

// ErrorOf maps any error to the typed error users see: a typed error is kept;
// a bare context error takes the typed cause, else becomes CANCELLED or
// TIMEOUT; anything else is INTERNAL (apperr.From).
func ErrorOf(err error, cause error) *apperr.Error {
	if apperr.As(err) != nil {
		return apperr.From(err) // merges a list of errors into one
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if c := apperr.As(cause); c != nil {
			return c
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return apperr.Wrap(apperr.Timeout, err, "the job ran out of time",
				"ask for fewer frames or steps, or raise JOB_TIMEOUT / the endpoint's execution timeout")
		}
		return apperr.Wrap(apperr.Cancelled, err, "the job was cancelled",
			"it was cancelled by its caller or by the worker shutting down; submit it again if that was not intended")
	}
	return apperr.From(err)
}

// Call runs one job on h, turning a panic into an INTERNAL error so that a
// bug in one job never takes the worker down.
func Call(ctx context.Context, h worker.Handler, id string, input json.RawMessage, p progress.Func) (res *worker.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res = nil
			err = &apperr.Error{Code: apperr.Internal, Message: fmt.Sprintf("the job crashed: %v", r),
				Hint: "this is a bug in the worker; report it with the worker's log",
				Err:  fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
		}
	}()
	if p == nil {
		p = progress.Nop
	}
	return h.Handle(ctx, id, input, p)
}
