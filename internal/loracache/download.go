package loracache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/resumable"
	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// tempPrefix starts the names of files being downloaded; nothing else in the
// cache folder does, and ComfyUI lists only the finished .safetensors.
const tempPrefix = ".download-"

// maxHeaderBytes is the largest safetensors header accepted (the format's
// reference limit), checked on the first bytes so that a web page or another
// file fails at once instead of after the whole download.
const maxHeaderBytes = 100 << 20

// transfer is the state of one download: the resumable transfer (the
// temporary file, how much of it is there, the checksum of its bytes, what
// the server said) and what it is for.
type transfer struct {
	t        resumable.Transfer
	c        *Cache
	r        Request
	shown    string // the URL for messages: no query, no credentials
	sniffed  bool
	progress ProgressFunc
	lastEmit time.Time
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
	tr := &transfer{c: c, r: r, shown: job.RedactURL(r.URL), progress: onProgress}
	tr.t = resumable.Transfer{Client: c.client, URL: r.URL, Shown: tr.shown, Header: c.o.Tokens.authorize,
		File: file, Sum: sha256.New(), StallTimeout: c.o.StallTimeout, IfRange: true,
		OnResponse: func(stated int64) error {
			if stated > c.o.MaxBytes {
				return tr.tooLarge(stated)
			}
			return nil
		},
		OnData: tr.onData,
	}
	if err := tr.run(ctx); err != nil {
		return Result{}, err
	}
	size := tr.t.Offset
	onProgress(size, size)

	sum := hex.EncodeToString(tr.t.Sum.Sum(nil))
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
	resumable.SyncDir(c.Dir())
	c.touch(final)
	if err := c.writeIndex(r.URL, sum); err != nil {
		c.log.Warn("could not record the URL of a cached LoRA; it will be downloaded again next time", "error", err)
	}
	c.log.Info("downloaded a LoRA", "url", tr.shown, "sha256", sum, "bytes", size,
		"took", time.Since(t0).Round(time.Millisecond))
	c.evict(final)
	return Result{SHA256: sum, Name: job.LoRACacheName(sum), Path: final, Size: size}, nil
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
		before := tr.t.Offset
		retry, err := tr.attempt(ctx)
		if err == nil {
			tr.emit(true)
			return nil
		}
		if !retry {
			return err
		}
		if ctx.Err() != nil {
			return tr.ctxErr(ctx, err)
		}
		if tr.t.Offset > before {
			failures = 0 // the connection works, it just broke
		}
		failures++
		if failures >= tr.c.o.MaxAttempts {
			return tr.c.fail(tr.r, err, fmt.Sprintf("downloading the LoRA from %s failed %d times in a row: %s", tr.shown, failures, shortErr(err)),
				"check that the URL is reachable from the worker; retry the job later")
		}
		tr.c.log.Warn("LoRA download attempt failed; resuming", "url", tr.shown, "attempt", failures, "offset", tr.t.Offset, "error", shortErr(err))
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
		return tr.c.fail(tr.r, err, fmt.Sprintf("downloading the LoRA from %s did not finish within %s (%d bytes in)", tr.shown, tr.c.o.Timeout, tr.t.Offset),
			"use a faster host or a smaller LoRA, or raise LORA_FETCH_TIMEOUT on the server")
	}
	return ctx.Err()
}

// attempt makes one request (resumable.Transfer.Attempt) and turns what
// cannot be retried into the job's error.
func (tr *transfer) attempt(ctx context.Context) (retry bool, err error) {
	retry, err = tr.t.Attempt(ctx)
	if err == nil {
		return false, nil
	}
	if e := tr.transportErr(err); e != nil {
		return false, e
	}
	var (
		we *resumable.WriteError
		se *resumable.StatusError
	)
	switch {
	case retry || apperr.As(err) != nil: // retried, or the hooks' own error
		return retry, err
	case errors.As(err, &we):
		return false, tr.writeErr(we.Err)
	case errors.As(err, &se):
		return false, tr.statusErr(se)
	}
	return false, tr.c.fail(tr.r, err, "the LoRA URL cannot be requested: "+tr.shown, "give a full http(s) URL")
}

// onData runs after each block: the size limit, the safetensors sniff,
// progress.
func (tr *transfer) onData() error {
	if tr.t.Offset > tr.c.o.MaxBytes {
		return tr.tooLarge(0)
	}
	if err := tr.sniff(); err != nil {
		return err
	}
	tr.emit(false)
	return nil
}

// emit reports progress at most every 200ms (and always when final).
func (tr *transfer) emit(final bool) {
	if now := time.Now(); final || now.Sub(tr.lastEmit) >= 200*time.Millisecond {
		tr.lastEmit = now
		tr.progress(tr.t.Offset, tr.t.Total)
	}
}

// sniff checks the first bytes once they are in: a safetensors file starts
// with a little-endian header length and '{'.
func (tr *transfer) sniff() error {
	if tr.sniffed || tr.t.Offset < 9 {
		return nil
	}
	tr.sniffed = true
	var head [9]byte
	if _, err := tr.t.File.ReadAt(head[:], 0); err != nil {
		return tr.writeErr(err)
	}
	n := binary.LittleEndian.Uint64(head[:8])
	bad := n == 0 || n > maxHeaderBytes || head[8] != '{' || (tr.t.Total > 0 && n+8 > uint64(tr.t.Total))
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

// statusErr maps an HTTP status that is not retried.
func (tr *transfer) statusErr(se *resumable.StatusError) error {
	status := fmt.Sprintf("%d %s", se.StatusCode, http.StatusText(se.StatusCode))
	hint := "check that the URL is right and reachable from the worker"
	switch se.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = "the file needs authorisation: the server sends HF_TOKEN only to huggingface.co and CIVITAI_TOKEN only to civitai.com (set the one the host needs), or use a public URL"
	case http.StatusNotFound, http.StatusGone:
		hint = "nothing is at that URL; on Hugging Face use the file's /resolve/ URL, on Civitai the model version's download link"
	}
	return tr.c.fail(tr.r, se, fmt.Sprintf("downloading the LoRA from %s failed: HTTP %s", tr.shown, status), hint)
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
