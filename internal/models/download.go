package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/version"
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

// download is the state of one file's download: the partial file, the
// running checksum of its bytes, and how many there are.
type download struct {
	d      *Downloader
	f      File
	name   string
	url    string
	file   *os.File
	sum    hash.Hash
	offset int64
	total  int64 // expected total; 0 unknown
	emit   func(Event)
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
	dl := &download{d: d, f: f, name: name, url: d.URL(f), file: file, sum: sha256.New(), total: f.Size, emit: onEvent}
	if err := dl.resume(ctx); err != nil {
		return err
	}

	failures := 0
	for !(f.Size > 0 && dl.offset == f.Size) { // a complete partial needs no request
		before := dl.offset
		retry, err := dl.attempt(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retry {
			return err
		}
		if dl.offset > before {
			failures = 0 // progress: the connection works, it just broke
		}
		failures++
		if failures >= d.maxAttempts() {
			return fmt.Errorf("after %d attempts: %w", failures, err)
		}
		d.logger().Warn("download attempt failed; retrying", "file", name, "url", dl.url, "attempt", failures, "offset", dl.offset, "err", err)
		onEvent(Event{Name: name, Phase: PhaseRetrying, Done: dl.offset, Total: dl.total, Attempt: failures, Err: err})
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
	if f.Size > 0 && dl.offset != f.Size {
		os.Remove(partial)
		return &SizeError{Path: partial, Want: f.Size, Got: dl.offset}
	}
	if got := hex.EncodeToString(dl.sum.Sum(nil)); f.SHA256 != "" && !strings.EqualFold(got, f.SHA256) {
		os.Remove(partial)
		return &ChecksumError{Path: partial, Want: strings.ToLower(f.SHA256), Got: got}
	}
	if err := os.Rename(partial, dest); err != nil {
		return err
	}
	syncDir(filepath.Dir(dest))
	onEvent(Event{Name: name, Phase: PhaseDone, Done: dl.offset, Total: dl.offset})
	return nil
}

// resume re-reads an existing partial file into the checksum. A partial
// longer than the expected size is discarded.
func (dl *download) resume(ctx context.Context) error {
	fi, err := dl.file.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if dl.total > 0 && size > dl.total {
		return dl.restart()
	}
	if size > 0 {
		dl.emit(Event{Name: dl.name, Phase: PhaseHashing, Total: dl.total})
		n, err := hashFile(ctx, dl.file, size, dl.sum, func(done int64) {
			dl.emit(Event{Name: dl.name, Phase: PhaseHashing, Done: done, Total: dl.total})
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("re-reading %s: %w", dl.file.Name(), err)
		}
		dl.offset = n
	}
	_, err = dl.file.Seek(dl.offset, io.SeekStart)
	return err
}

// restart empties the partial file and the checksum.
func (dl *download) restart() error {
	if err := dl.file.Truncate(0); err != nil {
		return err
	}
	if _, err := dl.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dl.sum.Reset()
	dl.offset = 0
	return nil
}

// attempt makes one request and copies its body into the partial file. It
// returns whether a failure is worth retrying.
func (dl *download) attempt(ctx context.Context) (retry bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := dl.d.stallTimeout()
	watchdog := time.AfterFunc(stall, func() { cancel(ErrStalled) })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, dl.url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("User-Agent", "wan22-worker/"+version.Version)
	if dl.offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(dl.offset, 10)+"-")
	}
	if dl.d.Token != "" {
		req.Header.Set("Authorization", "Bearer "+dl.d.Token)
	}
	resp, err := dl.d.client().Do(req)
	if err != nil {
		return true, causeOf(actx, err)
	}
	defer resp.Body.Close()

	total := int64(-1) // the file's full size as the server states it
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != dl.offset {
			// Not the range asked for: start again from zero.
			if err := dl.restart(); err != nil {
				return false, err
			}
			dl.emit(Event{Name: dl.name, Phase: PhaseRestarted, Total: dl.total})
			return true, fmt.Errorf("GET %s: server answered range %q for bytes=%d-", dl.url, resp.Header.Get("Content-Range"), start)
		}
		total = size
	case http.StatusOK:
		if dl.offset > 0 {
			// The server ignores Range: the body is the whole file.
			if err := dl.restart(); err != nil {
				return false, err
			}
			dl.emit(Event{Name: dl.name, Phase: PhaseRestarted, Total: dl.total})
		}
		total = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		_, size, _ := parseContentRange(resp.Header.Get("Content-Range"))
		if dl.offset > 0 && (size == dl.offset || (size < 0 && dl.total == dl.offset)) {
			return false, nil // the partial file already holds every byte
		}
		if err := dl.restart(); err != nil {
			return false, err
		}
		return true, &HTTPError{URL: dl.url, StatusCode: resp.StatusCode}
	default:
		he := &HTTPError{URL: dl.url, StatusCode: resp.StatusCode}
		return he.retryable(), he
	}
	if total >= 0 && dl.f.Size > 0 && total != dl.f.Size {
		return false, &SizeError{Path: dl.url, Want: dl.f.Size, Got: total}
	}
	if total >= 0 {
		dl.total = total
	}
	dl.emit(Event{Name: dl.name, Phase: PhaseDownloading, Done: dl.offset, Total: dl.total})

	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(stall)
			if _, err := dl.file.Write(buf[:n]); err != nil {
				return false, dl.writeErr(err)
			}
			dl.sum.Write(buf[:n])
			dl.offset += int64(n)
			dl.emit(Event{Name: dl.name, Phase: PhaseDownloading, Done: dl.offset, Total: dl.total})
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return true, causeOf(actx, rerr)
		}
	}
	if dl.total > 0 && dl.offset < dl.total {
		return true, fmt.Errorf("GET %s: connection closed at byte %d of %d: %w", dl.url, dl.offset, dl.total, io.ErrUnexpectedEOF)
	}
	return false, nil
}

// writeErr marks a full disk as such; other write errors pass through.
func (dl *download) writeErr(err error) error {
	if isNoSpace(err) {
		return &NoSpaceError{Dir: filepath.Dir(dl.file.Name()), Free: -1, Err: err}
	}
	return err
}

// causeOf returns ErrStalled when the watchdog cancelled the attempt, else
// err.
func causeOf(actx context.Context, err error) error {
	if c := context.Cause(actx); errors.Is(c, ErrStalled) {
		return fmt.Errorf("%w for a while (%v)", ErrStalled, err)
	}
	return err
}

// parseContentRange parses "bytes START-END/SIZE" (SIZE may be "*") and
// "bytes */SIZE". It returns START (-1 when absent) and SIZE (-1 when
// unknown).
func parseContentRange(v string) (start, size int64, ok bool) {
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

// syncDir makes a rename durable; errors are ignored (not every filesystem
// supports it, and the rename itself has succeeded).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
