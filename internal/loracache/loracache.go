// Package loracache downloads the LoRAs that jobs give by URL into a
// content-addressed cache inside a loras folder ComfyUI reads:
// <loras>/url-cache/<sha256>.safetensors, named in the graph as
// url-cache/<sha256>.safetensors.
//
// A download goes through the job URL guard (public addresses only), is
// capped in size and time, resumes with HTTP Range requests after a broken
// connection, and is checked before anyone can see it: the checksum the job
// gave, the safetensors header (header only) and LoRA keys for WAN's blocks.
// Bytes go to a temporary file that is renamed into place, so that other jobs
// and other workers sharing the volume see a whole file or none. Downloads of
// the same URL in one process are shared. The cache is kept under a size cap by
// deleting the least recently used files.
package loracache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
)

// Options configure a Cache. Zero durations and counts take the defaults.
type Options struct {
	// LoRAsDir is a loras folder ComfyUI reads; the cache is its
	// url-cache subfolder. Empty: every URL LoRA fails LORA_FETCH_FAILED.
	LoRAsDir string
	// MaxBytes caps one file (MAX_LORA_BYTES).
	MaxBytes int64
	// CacheBytes caps the cache (LORA_CACHE_BYTES).
	CacheBytes int64
	// Timeout bounds one download, retries included (LORA_FETCH_TIMEOUT).
	Timeout time.Duration
	// AllowPrivate lets URLs reach non-public addresses
	// (ALLOW_PRIVATE_LORA_URLS). Ignored when Client is set.
	AllowPrivate bool
	// Client makes the requests; nil builds one on job.GuardedTransport.
	// Its CheckRedirect is replaced (redirect cap and per-host tokens).
	Client *http.Client
	// Tokens are the per-host credentials.
	Tokens Tokens
	// StallTimeout abandons an attempt that receives nothing for this long
	// (default 60s); MaxAttempts is how many attempts in a row may fail
	// without progress (default 5); BackoffUnit scales the wait between
	// attempts, n²×unit (default 250ms).
	StallTimeout time.Duration
	MaxAttempts  int
	BackoffUnit  time.Duration
	// KeepRecent protects files used this recently from eviction, so that a
	// file another worker on the volume just fetched for its job is not
	// deleted under it (default 30m; negative: no protection).
	KeepRecent time.Duration
	// Log receives one line per download and per eviction; nil discards.
	Log *slog.Logger
}

// OptionsFrom takes the options from the configuration. The loras folder is
// LORA_CACHE_DIR, or the first loras folder of MODELS_DIRS, or loras/ in the
// first models folder that exists.
func OptionsFrom(c *config.Config) Options {
	dir := c.LoRACacheDir
	if dir == "" {
		paths := modelpaths.Resolve(c.ModelsDirs, nil)
		if d := paths.Dirs("loras"); len(d) > 0 {
			dir = d[0]
		} else if len(paths.Roots) > 0 {
			dir = filepath.Join(paths.Roots[0].Dir, "loras")
		}
	}
	return Options{
		LoRAsDir: dir, MaxBytes: c.MaxLoRABytes, CacheBytes: c.LoRACacheBytes, Timeout: c.LoRAFetchTimeout,
		AllowPrivate: c.AllowPrivateLoRAURLs, Tokens: Tokens{HuggingFace: c.HFToken, Civitai: c.CivitaiToken},
	}
}

// Request is one LoRA to fetch.
type Request struct {
	URL string
	// SHA256 is the expected checksum (lower-case hex), or "".
	SHA256 string
	// Field is the input field errors name, e.g. options.loras[0].url.
	Field string
}

// Result is a LoRA in the cache.
type Result struct {
	SHA256 string // lower-case hex
	Name   string // relative to the loras folder: url-cache/<sha256>.safetensors
	Path   string // on disk
	Size   int64
	Cached bool // found in the cache, not downloaded
}

// ProgressFunc receives the bytes of a download so far and its total (0
// while unknown).
type ProgressFunc func(done, total int64)

// Cache is the LoRA URL cache. It is safe for concurrent use.
type Cache struct {
	o      Options
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight
	evictMu sync.Mutex // one eviction pass at a time
}

// New returns a cache with the options o.
func New(o Options) *Cache {
	if o.StallTimeout <= 0 {
		o.StallTimeout = 60 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BackoffUnit <= 0 {
		o.BackoffUnit = 250 * time.Millisecond
	}
	if o.KeepRecent == 0 {
		o.KeepRecent = 30 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Minute
	}
	hc := &http.Client{Transport: job.GuardedTransport(o.AllowPrivate)}
	if o.Client != nil {
		c := *o.Client
		hc = &c
	}
	hc.CheckRedirect = o.Tokens.checkRedirect
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{o: o, client: hc, log: log, flights: map[string]*flight{}}
}

// Dir returns the cache folder, <loras>/url-cache ("" when no loras folder
// is configured).
func (c *Cache) Dir() string {
	if c.o.LoRAsDir == "" {
		return ""
	}
	return filepath.Join(c.o.LoRAsDir, job.LoRACacheFolder)
}

// Get returns the LoRA at r.URL from the cache, downloading and checking it
// first when it is not there. Concurrent calls for the same URL and checksum
// share one download; each caller may leave (its ctx ending) without
// stopping the download for the others. Errors are *apperr.Error:
// LORA_FETCH_FAILED (the download), LORA_INVALID (the file), with r.Field.
func (c *Cache) Get(ctx context.Context, r Request, onProgress ProgressFunc) (Result, error) {
	if onProgress == nil {
		onProgress = func(int64, int64) {}
	}
	if c.Dir() == "" {
		return Result{}, c.fail(r, nil, "LoRA URLs are not available: the worker has no loras folder to cache them in",
			"set LORA_CACHE_DIR to a loras folder ComfyUI reads, or make MODELS_DIRS hold one")
	}
	if res, ok := c.lookup(r); ok {
		return res, nil
	}
	return c.join(ctx, r, onProgress)
}

// lookup finds r in the cache: by its checksum when the request gives one,
// else by the URL's index entry. A hit is marked used.
func (c *Cache) lookup(r Request) (Result, bool) {
	sum := r.SHA256
	if sum == "" {
		b, err := os.ReadFile(c.indexPath(r.URL))
		if err != nil {
			return Result{}, false
		}
		sum = strings.TrimSpace(string(b))
		if _, msg := checkHex(sum); msg != "" {
			return Result{}, false
		}
	}
	path := c.blobPath(sum)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return Result{}, false
	}
	c.touch(path)
	return Result{SHA256: sum, Name: job.LoRACacheName(sum), Path: path, Size: fi.Size(), Cached: true}, true
}

func checkHex(s string) (string, string) {
	if len(s) != 64 {
		return "", "not 64 hex digits"
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", "not hex"
	}
	return strings.ToLower(s), ""
}

func (c *Cache) blobPath(sum string) string { return filepath.Join(c.Dir(), sum+".safetensors") }

// indexPath is the file that maps a URL to the checksum of what it served:
// urls/<sha256 of the URL>, so no URL (or token in its query) is stored.
func (c *Cache) indexPath(rawURL string) string {
	h := sha256.Sum256([]byte(rawURL))
	return filepath.Join(c.Dir(), "urls", hex.EncodeToString(h[:]))
}

// touch marks a file as used now (its modification time is the LRU clock).
func (c *Cache) touch(path string) {
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		c.log.Debug("could not mark a cached LoRA as used", "path", path, "error", err)
	}
}

// flight is one download that several callers wait for.
type flight struct {
	done    chan struct{}
	res     Result
	err     error
	waiters int
	cancel  context.CancelFunc
	subs    map[int]ProgressFunc
	next    int
}

func (c *Cache) join(ctx context.Context, r Request, onProgress ProgressFunc) (Result, error) {
	key := r.URL + "\x00" + r.SHA256
	c.mu.Lock()
	f, ok := c.flights[key]
	if !ok {
		// The download outlives any one caller: it stops when every caller
		// has left, or at its own timeout.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Timeout)
		f = &flight{done: make(chan struct{}), cancel: cancel, subs: map[int]ProgressFunc{}}
		c.flights[key] = f
		go func() {
			defer cancel()
			res, err := c.download(dctx, r, func(done, total int64) {
				c.mu.Lock()
				subs := make([]ProgressFunc, 0, len(f.subs))
				for _, s := range f.subs {
					subs = append(subs, s)
				}
				c.mu.Unlock()
				for _, s := range subs {
					s(done, total)
				}
			})
			c.mu.Lock()
			f.res, f.err = res, err
			if c.flights[key] == f {
				delete(c.flights, key)
			}
			c.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	id := f.next
	f.next++
	f.subs[id] = onProgress
	c.mu.Unlock()

	leave := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(f.subs, id)
		f.waiters--
		if f.waiters == 0 {
			f.cancel()
			if c.flights[key] == f {
				delete(c.flights, key) // a later caller starts afresh
			}
		}
	}
	select {
	case <-f.done:
		leave()
		if f.err != nil {
			return Result{}, withField(f.err, r.Field)
		}
		return f.res, nil
	case <-ctx.Done():
		leave()
		return Result{}, ctx.Err()
	}
}

// withField returns err naming field (a shared download's error names the
// field of the caller that started it).
func withField(err error, field string) error {
	if e := apperr.As(err); e != nil && e.Field != field {
		c := *e
		c.Field = field
		return &c
	}
	return err
}

// evict deletes the least recently used files until the cache is within
// CacheBytes. It never deletes keep, nor files used within KeepRecent; it
// also removes temporary files of downloads that died more than a day ago.
func (c *Cache) evict(keep string) {
	c.evictMu.Lock()
	defer c.evictMu.Unlock()
	entries, err := os.ReadDir(c.Dir())
	if err != nil {
		return
	}
	type blob struct {
		path string
		size int64
		used time.Time
	}
	var blobs []blob
	var total int64
	now := time.Now()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		path := filepath.Join(c.Dir(), e.Name())
		switch {
		case strings.HasPrefix(e.Name(), tempPrefix):
			if now.Sub(fi.ModTime()) > 24*time.Hour {
				_ = os.Remove(path)
			}
		case strings.HasSuffix(e.Name(), ".safetensors"):
			blobs = append(blobs, blob{path, fi.Size(), fi.ModTime()})
			total += fi.Size()
		}
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].used.Before(blobs[j].used) })
	for _, b := range blobs {
		if total <= c.o.CacheBytes {
			return
		}
		if b.path == keep || (c.o.KeepRecent > 0 && now.Sub(b.used) < c.o.KeepRecent) {
			continue
		}
		if err := os.Remove(b.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("could not evict a cached LoRA", "path", b.path, "error", err)
			continue
		}
		total -= b.size
		c.log.Info("evicted a cached LoRA (LORA_CACHE_BYTES)", "file", filepath.Base(b.path), "bytes", b.size,
			"last_used", b.used.UTC().Format(time.RFC3339))
	}
}

// fail returns a LORA_FETCH_FAILED error about r.
func (c *Cache) fail(r Request, err error, msg, hint string) error {
	e := apperr.Wrap(apperr.LoRAFetchFailed, err, msg, hint)
	e.Field = r.Field
	return e
}

// invalid returns a LORA_INVALID error about r.
func (c *Cache) invalid(r Request, err error, msg, hint string) error {
	e := apperr.Wrap(apperr.LoRAInvalid, err, msg, hint)
	e.Field = r.Field
	return e
}

// String shows the options without secrets, for logs.
func (o Options) String() string {
	return fmt.Sprintf("loras=%s max=%d cache=%d timeout=%s tokens=%s", o.LoRAsDir, o.MaxBytes, o.CacheBytes, o.Timeout, o.Tokens)
}
