// Package resumable downloads one file over HTTP into an open file, one
// attempt at a time: an attempt resumes from the bytes already there with a
// Range request, starts again from zero when the server's answer calls for
// it, computes the file's SHA-256 on the way, and is abandoned when nothing
// arrives for the stall timeout. The model tooling (internal/models) and the
// LoRA cache (internal/loracache) drive their attempts with it; each keeps
// its own files, retries, checks and messages.
package resumable

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/version"
)

// ErrStalled is the cause of an attempt that received no bytes for the
// stall timeout. Stalled attempts are worth retrying.
var ErrStalled = errors.New("download stalled: no bytes received")

// StatusError is an answer that is not the file (or the rest of it).
type StatusError struct {
	URL        string // as Transfer.Shown
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Retryable reports whether another attempt may succeed: timeouts, rate
// limits and server errors.
func (e *StatusError) Retryable() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// WriteError is a failure to write the file (a full disk, say). It ends the
// download: another attempt would fail the same way.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Transfer is one file being downloaded. Set the fields, then call Attempt
// until it returns no error or no retry.
type Transfer struct {
	Client *http.Client
	URL    string
	// Shown is the URL as errors show it (without credentials or query, say);
	// "" means URL.
	Shown string
	// Header, when set, adds headers (credentials) to each request.
	Header func(*http.Request)
	// File receives the bytes; its first Offset bytes are the file's start
	// and Sum their SHA-256 (or any hash) so far.
	File   *os.File
	Sum    hash.Hash
	Offset int64
	// Total is the file's full size when known (from the caller, then from
	// the server), else 0.
	Total int64
	// StallTimeout is how long an attempt may receive nothing (response
	// headers included) before it is abandoned.
	StallTimeout time.Duration
	// IfRange resumes with If-Range (the strong ETag or Last-Modified of
	// the answer that started the file): a server whose file changed then
	// sends all of the new one instead of the rest of the old.
	IfRange bool

	// OnResponse, when set, sees each usable answer before its body is
	// read: stated is the file's full size as the server states it, -1
	// when unknown. An error ends the attempt, not to be retried.
	OnResponse func(stated int64) error
	// OnData, when set, is called after each block is written (Offset
	// counts it). An error ends the attempt, not to be retried.
	OnData func() error
	// OnRestart, when set, is called when the server's answer makes the
	// download start again from zero (it ignored the range, or answered
	// another one).
	OnRestart func()

	validator string
}

func (t *Transfer) shown() string {
	if t.Shown != "" {
		return t.Shown
	}
	return t.URL
}

// Attempt makes one request and appends its body to the file. It returns
// nil once the file is complete (Total bytes when known, else the end of a
// body), or an error and whether another attempt may succeed: transport
// errors, stalls, a broken body, 408, 429 and 5xx are worth retrying;
// other statuses (*StatusError), write errors (*WriteError) and the hooks'
// errors are not.
func (t *Transfer) Attempt(ctx context.Context) (retry bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(t.StallTimeout, func() { cancel(ErrStalled) })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, t.URL, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("User-Agent", "wan22-worker/"+version.Version)
	if t.Offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(t.Offset, 10)+"-")
		if t.IfRange && t.validator != "" {
			req.Header.Set("If-Range", t.validator)
		}
	}
	if t.Header != nil {
		t.Header(req)
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return true, t.causeOf(actx, err)
	}
	defer resp.Body.Close()

	stated := int64(-1)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, size, ok := ParseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != t.Offset {
			if err := t.restart(true); err != nil {
				return false, err
			}
			return true, fmt.Errorf("GET %s: the server answered range %q for bytes=%d-", t.shown(), resp.Header.Get("Content-Range"), start)
		}
		stated = size
	case http.StatusOK:
		if t.Offset > 0 { // the range was ignored, or If-Range said the file changed: the body is the whole file
			if err := t.restart(true); err != nil {
				return false, err
			}
		}
		stated = resp.ContentLength
		if t.IfRange {
			t.validator = validatorOf(resp.Header)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		_, size, _ := ParseContentRange(resp.Header.Get("Content-Range"))
		if t.Offset > 0 && (size == t.Offset || (size < 0 && t.Total == t.Offset)) {
			return false, nil // the file already holds every byte
		}
		if err := t.restart(false); err != nil {
			return false, err
		}
		return true, &StatusError{URL: t.shown(), StatusCode: resp.StatusCode}
	default:
		se := &StatusError{URL: t.shown(), StatusCode: resp.StatusCode}
		return se.Retryable(), se
	}
	if t.OnResponse != nil {
		if err := t.OnResponse(stated); err != nil {
			return false, err
		}
	}
	if stated > 0 {
		t.Total = stated
	}

	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(t.StallTimeout)
			if _, err := t.File.Write(buf[:n]); err != nil {
				return false, &WriteError{Err: err}
			}
			t.Sum.Write(buf[:n])
			t.Offset += int64(n)
			if t.OnData != nil {
				if err := t.OnData(); err != nil {
					return false, err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return true, t.causeOf(actx, rerr)
		}
	}
	if t.Total > 0 && t.Offset < t.Total {
		return true, fmt.Errorf("GET %s: connection closed at byte %d of %d: %w", t.shown(), t.Offset, t.Total, io.ErrUnexpectedEOF)
	}
	return false, nil
}

// Restart empties the file and the checksum.
func (t *Transfer) Restart() error { return t.restart(false) }

func (t *Transfer) restart(announce bool) error {
	if err := t.File.Truncate(0); err != nil {
		return &WriteError{Err: err}
	}
	if _, err := t.File.Seek(0, io.SeekStart); err != nil {
		return &WriteError{Err: err}
	}
	t.Sum.Reset()
	t.Offset = 0
	if announce && t.OnRestart != nil {
		t.OnRestart()
	}
	return nil
}

// causeOf returns ErrStalled when the watchdog ended the attempt, else err.
// (Not err's text then: it would be the transport's "context canceled",
// with the URL, query and all.)
func (t *Transfer) causeOf(actx context.Context, err error) error {
	if c := context.Cause(actx); errors.Is(c, ErrStalled) {
		return fmt.Errorf("%w for %s", ErrStalled, t.StallTimeout)
	}
	return err
}

// validatorOf returns the answer's strong ETag, or its Last-Modified.
func validatorOf(h http.Header) string {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return et
	}
	return h.Get("Last-Modified")
}

// ParseContentRange parses "bytes START-END/SIZE" (SIZE may be "*") and
// "bytes */SIZE". It returns START (-1 when absent) and SIZE (-1 when
// unknown).
func ParseContentRange(v string) (start, size int64, ok bool) {
	v, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return -1, -1, false
	}
	rng, sz, found := strings.Cut(v, "/")
	if !found {
		return -1, -1, false
	}
	size = -1
	if sz != "*" {
		n, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || n < 0 {
			return -1, -1, false
		}
		size = n
	}
	if rng == "*" {
		return -1, size, true
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return -1, -1, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	if err != nil || n < 0 {
		return -1, -1, false
	}
	return n, size, true
}

// SyncDir makes a rename into dir durable; errors are ignored (not every
// filesystem supports it, and the rename itself has succeeded).
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
