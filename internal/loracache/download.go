package loracache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/safetensors"
	"github.com/wan22-worker/wan22-worker/internal/version"
)

// tempPrefix starts the names of files being downloaded; nothing else in the
// cache folder does, and ComfyUI lists only the finished .safetensors.
const tempPrefix = ".download-"

// maxHeaderBytes is the largest safetensors header accepted (the format's
// reference limit), checked on the first bytes so that a web page or another
// file fails at once instead of after the whole download.
const maxHeaderBytes = 100 << 20

// transfer is the state of one download: the temporary file and how much of
// it is there, the checksum of its bytes, and what the server said.
type transfer struct {
	c         *Cache
	r         Request
	shown     string // the URL for messages: no query, no credentials
	file      *os.File
	sum       hash.Hash
	offset    int64
	total     int64  // the file's size as the server states it; 0 unknown
	validator string // ETag or Last-Modified for If-Range, once known
	sniffed   bool
	progress  ProgressFunc
	lastEmit  time.Time
}

// download fetches r into the cache and returns it, or an *apperr.Error.
func (c *Cache) download(ctx context.Context, r Request, onProgress ProgressFunc) (Result, error) {
	t0 := time.Now()
	if err := os.MkdirAll(c.Dir(), 0o755); err != nil {
		return Result{}, c.fail(r, err, "cannot create the LoRA cache folder "+c.Dir()+": "+err.Error(),
			"check that LORA_CACHE_DIR (or the loras folder of MODELS_DIRS) is writable")
	}
	file, err := os.CreateTemp(c.Dir(), tempPrefix+"*")
	if err != nil {
		return Result{}, c.fail(r, err, "cannot write into the LoRA cache folder "+c.Dir()+": "+err.Error(),
			"check that LORA_CACHE_DIR (or the loras folder of MODELS_DIRS) is writable and has free space")
	}
	tmp := file.Name()
	keep := false
	defer func() {
		file.Close()
		if !keep {
			os.Remove(tmp)
		}
	}()
	tr := &transfer{c: c, r: r, shown: job.RedactURL(r.URL), file: file, sum: sha256.New(), progress: onProgress}
	if err := tr.run(ctx); err != nil {
		return Result{}, err
	}
	onProgress(tr.offset, tr.offset)

	sum := hex.EncodeToString(tr.sum.Sum(nil))
	if r.SHA256 != "" && sum != r.SHA256 {
		return Result{}, c.invalid(r, nil, fmt.Sprintf("the file at %s has SHA-256 %s, not the %s the job gives", tr.shown, sum, r.SHA256),
			"check the sha256 (the file at the URL may have changed), or leave sha256 out")
	}
	if err := file.Sync(); err != nil {
		return Result{}, c.fail(r, err, "writing the LoRA to the cache failed: "+err.Error(), "check the volume's free space")
	}
	if err := validate(tmp); err != nil {
		return Result{}, c.invalid(r, err, fmt.Sprintf("the file at %s %s", tr.shown, err.msg), err.hint)
	}
	if err := file.Chmod(0o644); err != nil {
		return Result{}, c.fail(r, err, "writing the LoRA to the cache failed: "+err.Error(), "check the volume")
	}
	final := c.blobPath(sum)
	if err := os.Rename(tmp, final); err != nil {
		return Result{}, c.fail(r, err, "storing the LoRA in the cache failed: "+err.Error(), "check the volume")
	}
	keep = true
	syncDir(c.Dir())
	c.touch(final)
	if err := c.writeIndex(r.URL, sum); err != nil {
		c.log.Warn("could not record the URL of a cached LoRA; it will be downloaded again next time", "error", err)
	}
	c.log.Info("downloaded a LoRA", "url", tr.shown, "sha256", sum, "bytes", tr.offset,
		"took", time.Since(t0).Round(time.Millisecond))
	c.evict(final)
	return Result{SHA256: sum, Name: job.LoRACacheName(sum), Path: final, Size: tr.offset}, nil
}

// writeIndex records that url served the file sum (temporary file, renamed).
func (c *Cache) writeIndex(rawURL, sum string) error {
	path := c.indexPath(rawURL)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), tempPrefix+"*")
	if err != nil {
		return err
	}
	_, werr := f.WriteString(sum + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}

// problem is a reason the downloaded file cannot be used.
type problem struct {
	msg, hint string
	err       error
}

func (p *problem) Error() string { return p.msg }
func (p *problem) Unwrap() error { return p.err }

// validate reads the file's safetensors header (not its data) and checks
// that it is a WAN LoRA.
func validate(path string) *problem {
	f, err := safetensors.Open(path)
	if err != nil {
		return &problem{msg: "is not a valid safetensors file (" + strings.TrimPrefix(err.Error(), path+": ") + ")",
			hint: "give the URL of the .safetensors file itself (on Hugging Face a /resolve/ URL, not /blob/; on Civitai the download link), not of a web page", err: err}
	}
	defer f.Close()
	if msg, hint := checkWAN(f.Header); msg != "" {
		return &problem{msg: strings.TrimPrefix(msg, "the file "), hint: hint}
	}
	return nil
}

// run makes attempts until the file is complete, resuming after failures.
func (tr *transfer) run(ctx context.Context) error {
	failures := 0
	for {
		before := tr.offset
		retry, err := tr.attempt(ctx)
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		if ctx.Err() != nil {
			return tr.ctxErr(ctx, err)
		}
		if tr.offset > before {
			failures = 0 // the connection works, it just broke
		}
		failures++
		if failures >= tr.c.o.MaxAttempts {
			return tr.c.fail(tr.r, err, fmt.Sprintf("downloading the LoRA from %s failed %d times in a row: %s", tr.shown, failures, shortErr(err)),
				"check that the URL is reachable from the worker; retry the job later")
		}
		tr.c.log.Warn("LoRA download attempt failed; resuming", "url", tr.shown, "attempt", failures, "offset", tr.offset, "error", shortErr(err))
		wait := time.Duration(failures*failures) * tr.c.o.BackoffUnit
		select {
		case <-ctx.Done():
			return tr.ctxErr(ctx, err)
		case <-time.After(wait):
		}
	}
}

func (tr *transfer) ctxErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return tr.c.fail(tr.r, err, fmt.Sprintf("downloading the LoRA from %s did not finish within %s (%d bytes in)", tr.shown, tr.c.o.Timeout, tr.offset),
			"use a faster host or a smaller LoRA, or raise LORA_FETCH_TIMEOUT on the server")
	}
	return ctx.Err()
}

// restart empties the temporary file and the checksum.
func (tr *transfer) restart() error {
	if err := tr.file.Truncate(0); err != nil {
		return err
	}
	if _, err := tr.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tr.sum.Reset()
	tr.offset, tr.sniffed = 0, false
	return nil
}

// attempt makes one request and appends its body to the file. It returns
// whether a failure is worth another attempt; err nil means complete.
func (tr *transfer) attempt(ctx context.Context) (retry bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := tr.c.o.StallTimeout
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, tr.r.URL, nil)
	if err != nil {
		return false, tr.c.fail(tr.r, err, "the LoRA URL cannot be requested: "+tr.shown, "give a full http(s) URL")
	}
	req.Header.Set("User-Agent", "wan22-worker/"+version.Version)
	if tr.offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(tr.offset, 10)+"-")
		if tr.validator != "" {
			req.Header.Set("If-Range", tr.validator)
		}
	}
	tr.c.o.Tokens.authorize(req)
	resp, err := tr.c.client.Do(req)
	if err != nil {
		if e := tr.transportErr(err); e != nil {
			return false, e
		}
		return true, causeOf(actx, err)
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != tr.offset {
			if err := tr.restart(); err != nil {
				return false, tr.writeErr(err)
			}
			return true, fmt.Errorf("the server answered range %q for bytes=%d-", resp.Header.Get("Content-Range"), start)
		}
		if size > 0 {
			tr.total = size
		}
	case http.StatusOK:
		if tr.offset > 0 { // Range ignored, or If-Range said the file changed: the body is the whole file
			if err := tr.restart(); err != nil {
				return false, tr.writeErr(err)
			}
		}
		tr.total = max(resp.ContentLength, 0)
		tr.validator = validatorOf(resp.Header)
	case http.StatusRequestedRangeNotSatisfiable:
		if _, size, _ := parseContentRange(resp.Header.Get("Content-Range")); tr.offset > 0 && size == tr.offset {
			return false, nil // every byte is already here
		}
		if err := tr.restart(); err != nil {
			return false, tr.writeErr(err)
		}
		return true, fmt.Errorf("HTTP %s", resp.Status)
	default:
		return tr.statusErr(resp)
	}
	if tr.total > tr.c.o.MaxBytes {
		return false, tr.tooLarge(tr.total)
	}

	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(stall)
			if tr.offset+int64(n) > tr.c.o.MaxBytes {
				return false, tr.tooLarge(0)
			}
			if _, err := tr.file.Write(buf[:n]); err != nil {
				return false, tr.writeErr(err)
			}
			tr.sum.Write(buf[:n])
			tr.offset += int64(n)
			if err := tr.sniff(); err != nil {
				return false, err
			}
			tr.emit(false)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return true, causeOf(actx, rerr)
		}
	}
	if tr.total > 0 && tr.offset < tr.total {
		return true, fmt.Errorf("connection closed at byte %d of %d: %w", tr.offset, tr.total, io.ErrUnexpectedEOF)
	}
	tr.emit(true)
	return false, nil
}

// emit reports progress at most every 200ms (and always when final).
func (tr *transfer) emit(final bool) {
	if now := time.Now(); final || now.Sub(tr.lastEmit) >= 200*time.Millisecond {
		tr.lastEmit = now
		tr.progress(tr.offset, tr.total)
	}
}

// sniff checks the first bytes once they are in: a safetensors file starts
// with a little-endian header length and '{'.
func (tr *transfer) sniff() error {
	if tr.sniffed || tr.offset < 9 {
		return nil
	}
	tr.sniffed = true
	var head [9]byte
	if _, err := tr.file.ReadAt(head[:], 0); err != nil {
		return tr.writeErr(err)
	}
	n := binary.LittleEndian.Uint64(head[:8])
	bad := n == 0 || n > maxHeaderBytes || head[8] != '{' || (tr.total > 0 && n+8 > uint64(tr.total))
	if !bad {
		return nil
	}
	what := "its first bytes are not a safetensors header"
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(string(head[:]))), "<") {
		what = "it is a web page (HTML), not a file"
	}
	return tr.c.invalid(tr.r, nil, fmt.Sprintf("the file at %s is not a safetensors file: %s", tr.shown, what),
		"give the URL of the .safetensors file itself (on Hugging Face a /resolve/ URL, not /blob/; on Civitai the download link), not of a web page")
}

func (tr *transfer) tooLarge(n int64) error {
	msg := fmt.Sprintf("the LoRA at %s is larger than %d bytes (MAX_LORA_BYTES)", tr.shown, tr.c.o.MaxBytes)
	if n > 0 {
		msg = fmt.Sprintf("the LoRA at %s is %d bytes; this server accepts at most %d (MAX_LORA_BYTES)", tr.shown, n, tr.c.o.MaxBytes)
	}
	return tr.c.invalid(tr.r, nil, msg, "use a smaller LoRA (a lower rank, or fp16/bf16 instead of fp32), or raise MAX_LORA_BYTES on the server")
}

func (tr *transfer) writeErr(err error) error {
	return tr.c.fail(tr.r, err, "writing the LoRA to the cache failed: "+err.Error(),
		"check that the LoRA cache folder's volume is writable and has free space (LORA_CACHE_BYTES bounds the cache)")
}

// transportErr turns a failure that another attempt cannot fix (a refused
// address, a bad redirect) into the job's error; nil for the others.
func (tr *transfer) transportErr(err error) error {
	if addr, kind, ok := job.BlockedAddress(err); ok {
		return tr.c.fail(tr.r, err, fmt.Sprintf("the LoRA URL %s resolves to %s, %s", tr.shown, addr, kind),
			"use a publicly reachable URL; a trusted deployment may set ALLOW_PRIVATE_LORA_URLS=true")
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return tr.c.fail(tr.r, err, fmt.Sprintf("the host of the LoRA URL %s cannot be resolved", tr.shown),
			"check the host name; the worker must be able to resolve it")
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "redirect") {
		return tr.c.fail(tr.r, err, fmt.Sprintf("downloading the LoRA from %s: %s", tr.shown, ue.Err.Error()),
			"give the final URL of the file")
	}
	return nil
}

// statusErr maps an HTTP error status; 408, 429 and 5xx are retried.
func (tr *transfer) statusErr(resp *http.Response) (bool, error) {
	code := resp.StatusCode
	err := fmt.Errorf("HTTP %s", resp.Status)
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		return true, err
	}
	hint := "check that the URL is right and reachable from the worker"
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = "the file needs authorisation: the server sends HF_TOKEN only to huggingface.co and CIVITAI_TOKEN only to civitai.com (set the one the host needs), or use a public URL"
	case http.StatusNotFound, http.StatusGone:
		hint = "nothing is at that URL; on Hugging Face use the file's /resolve/ URL, on Civitai the model version's download link"
	}
	return false, tr.c.fail(tr.r, err, fmt.Sprintf("downloading the LoRA from %s failed: HTTP %s", tr.shown, resp.Status), hint)
}

// errStalled is the cause of an attempt that received nothing for
// StallTimeout.
var errStalled = errors.New("no data received within the stall timeout")

// causeOf prefers the attempt's cancellation cause (a stall) to the error it
// produced.
func causeOf(actx context.Context, err error) error {
	if cause := context.Cause(actx); cause != nil && errors.Is(cause, errStalled) {
		return cause
	}
	return err
}

func shortErr(err error) string {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// validatorOf returns the response's strong ETag or its Last-Modified, for
// If-Range: a resumed request then gets the rest of the same file, or the
// whole new one.
func validatorOf(h http.Header) string {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return et
	}
	return h.Get("Last-Modified")
}

// parseContentRange parses "bytes start-end/size"; size is -1 for "*".
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, -1, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, -1, false
	}
	size = -1
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil || n < 0 {
			return 0, -1, false
		}
		size = n
	}
	if rng == "*" {
		return 0, size, false
	}
	s, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, size, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, size, false
	}
	return n, size, true
}

// syncDir flushes a folder's entries (the rename), best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
