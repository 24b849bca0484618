package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/resumable"
)

// DefaultEndpoint is the Hugging Face hub.
const DefaultEndpoint = "https://huggingface.co"

// PartialSuffix is appended to a file's path while it downloads.
const PartialSuffix = ".partial"

// Phase is what a download is doing.
type Phase string

// The phases of a download, in the order they happen.
const (
	// PhaseHashing re-reads a partial file left by an earlier run, so that
	// the checksum covers the bytes already there.
	PhaseHashing Phase = "hashing"
	// PhaseDownloading receives bytes.
	PhaseDownloading Phase = "downloading"
	// PhaseRestarted: the server ignored the range request (or answered
	// another range); the download starts again from zero.
	PhaseRestarted Phase = "restarted"
	// PhaseRetrying: an attempt failed (Err says why) and another follows.
	PhaseRetrying Phase = "retrying"
	// PhaseDone: verified and renamed into place.
	PhaseDone Phase = "done"
	// PhaseFailed: given up (Err says why).
	PhaseFailed Phase = "failed"
	// PhasePresent: the file was already in place; nothing to do.
	PhasePresent Phase = "present"
)

// Event reports the progress of one file.
type Event struct {
	Name    string // the file, as configured
	Phase   Phase
	Done    int64 // bytes in the partial file (or hashed so far, when hashing)
	Total   int64 // expected size; 0 when not known yet
	Attempt int   // attempts without progress so far (retrying)
	Err     error // retrying, failed
}

// Downloader fetches manifest files over HTTP. The zero value works; the
// fields tune it and tests shorten its timings.
type Downloader struct {
	// Client makes the requests; nil means a client with no overall timeout
	// (a stall timeout guards every read instead).
	Client *http.Client
	// Endpoint is the base URL; files are fetched from
	// <Endpoint>/<repo>/resolve/main/<path>. "" means DefaultEndpoint.
	Endpoint string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// StallTimeout is how long an attempt may go without receiving a byte
	// (response headers included) before it is abandoned and retried;
	// 0 means 30s.
	StallTimeout time.Duration
	// MaxAttempts is how many attempts in a row may fail without receiving
	// any byte before the download gives up; 0 means 8. An attempt that
	// made progress resets the count.
	MaxAttempts int
	// BackoffUnit scales the wait before retry n: n²×BackoffUnit, jittered
	// by 0.5–1.5× and capped at MaxBackoff. 0 means 10ms; MaxBackoff 0 means
	// 10s.
	BackoffUnit time.Duration
	MaxBackoff  time.Duration
	// Logger receives one line per retry; nil discards.
	Logger *slog.Logger
}

func (d *Downloader) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return &http.Client{}
}

func (d *Downloader) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (d *Downloader) stallTimeout() time.Duration {
	if d.StallTimeout > 0 {
		return d.StallTimeout
	}
	return 30 * time.Second
}

func (d *Downloader) maxAttempts() int {
	if d.MaxAttempts > 0 {
		return d.MaxAttempts
	}
	return 8
}

// URL returns the address a file is downloaded from.
func (d *Downloader) URL(f File) string {
	return FileURL(d.Endpoint, f)
}

// FileURL returns <endpoint>/<repo>/resolve/main/<path>, with each path
// segment escaped; endpoint "" means DefaultEndpoint.
func FileURL(endpoint string, f File) string {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	segs := strings.Split(f.Repo+"/resolve/main/"+f.Path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimRight(endpoint, "/") + "/" + strings.Join(segs, "/")
}

// backoff waits n²×unit (jittered 0.5–1.5×, capped) or until ctx ends.
func (d *Downloader) backoff(ctx context.Context, n int) error {
	unit, ceiling := d.BackoffUnit, d.MaxBackoff
	if unit <= 0 {
		unit = 10 * time.Millisecond
	}
	if ceiling <= 0 {
		ceiling = 10 * time.Second
	}
	wait := min(time.Duration(n*n)*unit, ceiling)
	wait = time.Duration(float64(wait) * (rand.Float64() + 0.5))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// download is the state of one file's download: the transfer (the partial
// file, the running checksum of its bytes, how many there are) and what its
// events say.
type download struct {
	t    resumable.Transfer
	f    File
	name string
	emit func(Event)
}

// Download fetches f into dest. Bytes go to dest+".partial" first; a partial
// file left by an earlier run is resumed with a Range request (its bytes are
// re-read into the checksum first). When the server ignores the range, the
// download starts again from zero. Failed attempts are retried with backoff;
// an attempt that receives nothing for StallTimeout is abandoned and
// retried. When all bytes are in, the size and SHA256 are checked and the
// partial file is renamed to dest; a file that fails the check is deleted,
// never renamed. Running out of disk space and ctx ending stop at once.
// name labels the events (the file as configured); onEvent may be nil.
// Errors are *apperr.Error (MODEL_MISSING) wrapping *HTTPError,
// *ChecksumError, *SizeError, *NoSpaceError or ErrStalled; a cancelled ctx
// returns ctx.Err().
func (d *Downloader) Download(ctx context.Context, f File, name, dest string, onEvent func(Event)) error {
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	err := d.download(ctx, f, name, dest, onEvent)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return ctx.Err()
		}
		err = userError(name, err)
		onEvent(Event{Name: name, Phase: PhaseFailed, Total: f.Size, Err: err})
	}
	return err
}

func (d *Downloader) download(ctx context.Context, f File, name, dest string, onEvent func(Event)) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	partial := dest + PartialSuffix
	file, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			file.Close()
		}
	}()
	dl := &download{f: f, name: name, emit: onEvent, t: resumable.Transfer{
		Client: d.client(), URL: d.URL(f), File: file, Sum: sha256.New(), Total: f.Size, StallTimeout: d.stallTimeout(),
	}}
	t := &dl.t
	if d.Token != "" {
		t.Header = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+d.Token) }
	}
	t.OnResponse = func(stated int64) error {
		if stated >= 0 && f.Size > 0 && stated != f.Size {
			return &SizeError{Path: t.URL, Want: f.Size, Got: stated}
		}
		onEvent(Event{Name: name, Phase: PhaseDownloading, Done: t.Offset, Total: max(stated, t.Total)})
		return nil
	}
	t.OnData = func() error {
		onEvent(Event{Name: name, Phase: PhaseDownloading, Done: t.Offset, Total: t.Total})
		return nil
	}
	t.OnRestart = func() { onEvent(Event{Name: name, Phase: PhaseRestarted, Total: t.Total}) }
	if err := dl.resume(ctx); err != nil {
		return err
	}

	failures := 0
	for !(f.Size > 0 && t.Offset == f.Size) { // a complete partial needs no request
		before := t.Offset
		retry, err := t.Attempt(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var we *resumable.WriteError
		if errors.As(err, &we) {
			return dl.writeErr(we.Err)
		}
		if !retry {
			return err
		}
		if t.Offset > before {
			failures = 0 // progress: the connection works, it just broke
		}
		failures++
		if failures >= d.maxAttempts() {
			return fmt.Errorf("after %d attempts: %w", failures, err)
		}
		d.logger().Warn("download attempt failed; retrying", "file", name, "url", t.URL, "attempt", failures, "offset", t.Offset, "err", err)
		onEvent(Event{Name: name, Phase: PhaseRetrying, Done: t.Offset, Total: t.Total, Attempt: failures, Err: err})
		if err := d.backoff(ctx, failures); err != nil {
			return err
		}
	}

	if err := file.Sync(); err != nil {
		return dl.writeErr(err)
	}
	closed = true
	if err := file.Close(); err != nil {
		return dl.writeErr(err)
	}
	if f.Size > 0 && t.Offset != f.Size {
		os.Remove(partial)
		return &SizeError{Path: partial, Want: f.Size, Got: t.Offset}
	}
	if got := hex.EncodeToString(t.Sum.Sum(nil)); f.SHA256 != "" && !strings.EqualFold(got, f.SHA256) {
		os.Remove(partial)
		return &ChecksumError{Path: partial, Want: strings.ToLower(f.SHA256), Got: got}
	}
	if err := os.Rename(partial, dest); err != nil {
		return err
	}
	resumable.SyncDir(filepath.Dir(dest))
	onEvent(Event{Name: name, Phase: PhaseDone, Done: t.Offset, Total: t.Offset})
	return nil
}

// resume re-reads an existing partial file into the checksum. A partial
// longer than the expected size is discarded.
func (dl *download) resume(ctx context.Context) error {
	t := &dl.t
	fi, err := t.File.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if t.Total > 0 && size > t.Total {
		return t.Restart()
	}
	if size > 0 {
		dl.emit(Event{Name: dl.name, Phase: PhaseHashing, Total: t.Total})
		n, err := hashFile(ctx, t.File, size, t.Sum, func(done int64) {
			dl.emit(Event{Name: dl.name, Phase: PhaseHashing, Done: done, Total: t.Total})
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("re-reading %s: %w", t.File.Name(), err)
		}
		t.Offset = n
	}
	_, err = t.File.Seek(t.Offset, io.SeekStart)
	return err
}

// writeErr marks a full disk as such; other write errors pass through.
func (dl *download) writeErr(err error) error {
	if isNoSpace(err) {
		return &NoSpaceError{Dir: filepath.Dir(dl.t.File.Name()), Free: -1, Err: err}
	}
	return err
}
