// Package apperr defines the typed errors users see: a stable code from the
// job output contract, a message, and a hint that says what to change.
//
// Every edge of the worker (job validation, the ComfyUI client, delivery, the
// RunPod protocol, the CLI) turns its failures into an *Error in one place, so
// that callers can branch on the code with errors.As and users always get a
// code, a message and a hint.
package apperr

import (
	"errors"
	"fmt"
	"strings"
)

// Code is one of the error codes of the job output contract.
type Code string

// The codes of the job output contract (DESIGN.md §4). Keep docs/api.md in step.
const (
	InvalidInput     Code = "INVALID_INPUT"
	ImageInvalid     Code = "IMAGE_INVALID"
	ImageTooLarge    Code = "IMAGE_TOO_LARGE"
	ImageFetchFailed Code = "IMAGE_FETCH_FAILED"
	LoRAFetchFailed  Code = "LORA_FETCH_FAILED"
	LoRAInvalid      Code = "LORA_INVALID"
	ModelMissing     Code = "MODEL_MISSING"
	NodeMissing      Code = "NODE_MISSING"
	ComfyUnavailable Code = "COMFY_UNAVAILABLE"
	ComfyCrashed     Code = "COMFY_CRASHED"
	OutOfMemory      Code = "OUT_OF_MEMORY"
	ExecutionFailed  Code = "EXECUTION_FAILED"
	Cancelled        Code = "CANCELLED"
	Timeout          Code = "TIMEOUT"
	OutputMissing    Code = "OUTPUT_MISSING"
	OutputTooLarge   Code = "OUTPUT_TOO_LARGE"
	UploadFailed     Code = "UPLOAD_FAILED"
	Internal         Code = "INTERNAL"
)

// Codes lists every code, in the order of the contract.
func Codes() []Code {
	return []Code{InvalidInput, ImageInvalid, ImageTooLarge, ImageFetchFailed, LoRAFetchFailed, LoRAInvalid,
		ModelMissing, NodeMissing,
		ComfyUnavailable, ComfyCrashed, OutOfMemory, ExecutionFailed, Cancelled, Timeout, OutputMissing,
		OutputTooLarge, UploadFailed, Internal}
}

// Error is a user-facing error. Its JSON form is the `output.error` object of
// the job output contract.
type Error struct {
	Code     Code   `json:"code"`
	Message  string `json:"message"`
	Field    string `json:"field,omitempty"`
	Hint     string `json:"hint,omitempty"`
	NodeID   string `json:"node_id,omitempty"`
	NodeType string `json:"node_type,omitempty"`
	// Err is the underlying cause, kept for logs and errors.Is; never shown raw.
	Err error `json:"-"`
}

// New returns an error with a code, a message and a hint.
func New(code Code, msg, hint string) *Error {
	return &Error{Code: code, Message: msg, Hint: hint}
}

// Field returns an error about one input field.
func Field(code Code, field, msg, hint string) *Error {
	return &Error{Code: code, Field: field, Message: msg, Hint: hint}
}

// Wrap returns an error with a code, message and hint that keeps err as its cause.
func Wrap(code Code, err error, msg, hint string) *Error {
	return &Error{Code: code, Message: msg, Hint: hint, Err: err}
}

// Error renders the RunPod error string form, "CODE: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	b.WriteString(": ")
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code of err: the code of the *Error in its chain, or
// INTERNAL for any other non-nil error, or "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}

// From converts any error into an *Error: a List in the chain is merged into
// one error (see List.Merged), an *Error is returned as it is, anything else
// becomes INTERNAL with the error's text.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var l List
	if errors.As(err, &l) && len(l) > 0 {
		return l.Merged()
	}
	if e := As(err); e != nil {
		return e
	}
	return &Error{Code: Internal, Message: err.Error(),
		Hint: "this is a bug in the worker; report it with the worker's log", Err: err}
}

// List is several errors reported together (validation reports every bad
// field at once). It satisfies error; its first element decides the code.
type List []*Error

func (l List) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Merged folds the list into one error for the places that carry a single
// error object (a job's output.error): the first error's code, node and
// cause; every message, in order; the field when all share it; and every
// distinct hint. A list of one is that error.
func (l List) Merged() *Error {
	if len(l) == 1 {
		return l[0]
	}
	first := l[0]
	m := &Error{Code: first.Code, Field: first.Field, NodeID: first.NodeID, NodeType: first.NodeType, Err: l}
	msgs := make([]string, 0, len(l))
	var hints []string
	seen := map[string]bool{}
	for _, e := range l {
		msg := e.Message
		if e.Field != "" && !strings.Contains(msg, e.Field) {
			msg = e.Field + ": " + msg
		}
		msgs = append(msgs, msg)
		if e.Field != first.Field {
			m.Field = ""
		}
		if e.Hint != "" && !seen[e.Hint] {
			seen[e.Hint] = true
			hints = append(hints, e.Hint)
		}
	}
	m.Message = fmt.Sprintf("%d problems: %s", len(l), strings.Join(msgs, "; "))
	m.Hint = strings.Join(hints, "; ")
	return m
}

// Unwrap exposes the elements to errors.Is and errors.As.
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Errorf is fmt.Sprintf for messages; it exists so call sites read as one line.
func Errorf(code Code, hint, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Hint: hint}
}
