package loracache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// encode returns a safetensors file of F32 tensors with the given names.
func encode(t *testing.T, names ...string) []byte {
	t.Helper()
	var ts []safetensors.Tensor
	for i, n := range names {
		data := safetensors.EncodeFloats(safetensors.F32, []float32{float32(i), 1, 2, 3})
		ts = append(ts, safetensors.Tensor{Name: n, DType: safetensors.F32, Shape: []int64{2, 2}, Data: data})
	}
	var b bytes.Buffer
	if err := safetensors.Encode(&b, ts, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// wanLoRA is a small LoRA in Kijai's layout for WAN; pad makes it larger
// (and distinct) by adding more blocks.
func wanLoRA(t *testing.T, blocks int) []byte {
	t.Helper()
	var names []string
	for b := range blocks {
		p := "diffusion_model.blocks." + strconv.Itoa(b) + ".self_attn.q"
		names = append(names, p+".lora_down.weight", p+".lora_up.weight", p+".alpha", p+".diff_b")
	}
	return append([]byte(nil), encode(t, names...)...)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// server serves files by path with Range support (http.ServeContent) and
// counts requests and bytes sent per path.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	hits   map[string]int
	ranges []string
	sent   atomic.Int64
	// before, when set, runs first and may answer the request itself.
	before func(w http.ResponseWriter, r *http.Request) bool
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{files: map[string][]byte{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		data, ok := s.files[r.URL.Path]
		before := s.before
		s.mu.Unlock()
		if before != nil && before(w, r) {
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"`+sum(data)[:16]+`"`)
		http.ServeContent(countingWriter{w, &s.sent}, r, "", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) put(path string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = data
	return s.URL + path
}

func (s *server) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// testCache is a cache in a temporary loras folder that may reach loopback.
func testCache(t *testing.T, set func(*Options)) *Cache {
	t.Helper()
	o := Options{LoRAsDir: t.TempDir(), MaxBytes: 1 << 20, CacheBytes: 1 << 30, Timeout: 10 * time.Second,
		AllowPrivate: true, BackoffUnit: time.Millisecond, StallTimeout: 5 * time.Second}
	if set != nil {
		set(&o)
	}
	return New(o)
}

// cacheFiles lists the cache folder's entries (temporary files included).
func cacheFiles(t *testing.T, c *Cache) []string {
	t.Helper()
	entries, err := os.ReadDir(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "urls" {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestGetDownloadsOnceThenHits(t *testing.T) {
	srv := newServer(t)
	data := wanLoRA(t, 2)
	u := srv.put("/a.safetensors", data)
	c := testCache(t, nil)
	var last [2]int64
	res, err := c.Get(t.Context(), Request{URL: u, Field: "options.loras[0].url"}, func(done, total int64) { last = [2]int64{done, total} })
	if err != nil {
		t.Fatal(err)
	}
	want := sum(data)
	if res.SHA256 != want || res.Name != "url-cache/"+want+".safetensors" || res.Cached || res.Size != int64(len(data)) {
		t.Errorf("result %+v, want sha %s", res, want)
	}
	if res.Path != filepath.Join(c.Dir(), want+".safetensors") || filepath.Dir(c.Dir()) != c.o.LoRAsDir {
		t.Errorf("path %s, dir %s", res.Path, c.Dir())
	}
	got, err := os.ReadFile(res.Path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached file differs: %v", err)
	}
	if fi, _ := os.Stat(res.Path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 (ComfyUI may run as another user)", fi.Mode())
	}
	if last != [2]int64{int64(len(data)), int64(len(data))} {
		t.Errorf("last progress %v, want %d of %d", last, len(data), len(data))
	}
	if names := cacheFiles(t, c); len(names) != 1 {
		t.Errorf("cache holds %v, want only the LoRA", names)
	}

	// Again by URL (the index), and by checksum: no new request.
	for _, r := range []Request{{URL: u}, {URL: u + "?other", SHA256: want}} {
		again, err := c.Get(t.Context(), r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Cached || again.SHA256 != want {
			t.Errorf("%+v: %+v, want a cache hit", r, again)
		}
	}
	if n := srv.hitsOf("/a.safetensors"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestResumeAfterCut(t *testing.T) {
	srv := newServer(t)
	data := wanLoRA(t, 400) // ~50 KB
	u := srv.put("/big.safetensors", data)
	cut := len(data) / 3
	var cuts atomic.Int64
	srv.before = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Range") != "" || cuts.Add(1) > 1 {
			return false
		}
		// The whole length is promised, a third is sent, and the
		// connection drops.
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Header().Set("ETag", `"`+sum(data)[:16]+`"`)
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		srv.sent.Add(int64(cut))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	c := testCache(t, nil)
	res, err := c.Get(t.Context(), Request{URL: u}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sum(data) {
		t.Fatalf("sha %s, want %s", res.SHA256, sum(data))
	}
	srv.mu.Lock()
	ranges := append([]string(nil), srv.ranges...)
	srv.mu.Unlock()
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != "bytes="+strconv.Itoa(cut)+"-" {
		t.Errorf("requests' Range headers %q, want none then bytes=%d-", ranges, cut)
	}
	if sent := srv.sent.Load(); sent != int64(len(data)) {
		t.Errorf("server sent %d bytes for a %d-byte file: the download did not resume", sent, len(data))
	}
}

func TestRestartWhenRangeIgnored(t *testing.T) {
	srv := newServer(t)
	data := wanLoRA(t, 100)
	u := srv.put("/x.safetensors", data)
	var n atomic.Int64
	srv.before = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK) // never honours Range
		if n.Add(1) == 1 {
			w.Write(data[:100])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(data)
		return true
	}
	res, err := testCache(t, nil).Get(t.Context(), Request{URL: u, SHA256: sum(data)}, nil)
	if err != nil || res.SHA256 != sum(data) {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestErrors(t *testing.T) {
	srv := newServer(t)
	good := wanLoRA(t, 2)
	srv.put("/good.safetensors", good)
	srv.put("/page.html", []byte("<!DOCTYPE html><html><body>Log in to download</body></html>"))
	srv.put("/sdxl.safetensors", encode(t, "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
		"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", "lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha"))
	srv.put("/flux.safetensors", encode(t, "transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight",
		"transformer.transformer_blocks.0.attn.to_q.lora_B.weight", "double_blocks.0.img_attn.qkv.lora_down.weight"))
	srv.put("/model.safetensors", encode(t, "blocks.0.self_attn.q.weight", "blocks.0.self_attn.q.bias"))
	truncated := wanLoRA(t, 3)
	srv.put("/truncated.safetensors", truncated[:len(truncated)-10])
	srv.put("/large.safetensors", wanLoRA(t, 200))
	srv.before = func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/streamed": // no Content-Length: the cap must hold while streaming
			w.Write(wanLoRA(t, 200))
			return true
		case "/401":
			w.WriteHeader(http.StatusUnauthorized)
			return true
		case "/stall":
			<-r.Context().Done()
			return true
		}
		return false
	}

	tests := []struct {
		name  string
		path  string
		sha   string
		set   func(*Options)
		code  apperr.Code
		inMsg string
	}{
		{"sha mismatch", "/good.safetensors", strings.Repeat("0", 64), nil, apperr.LoRAInvalid, "not the 0000"},
		{"web page", "/page.html", "", nil, apperr.LoRAInvalid, "web page"},
		{"truncated", "/truncated.safetensors", "", nil, apperr.LoRAInvalid, "not a valid safetensors file"},
		{"SDXL LoRA", "/sdxl.safetensors", "", nil, apperr.LoRAInvalid, "not for WAN"},
		{"Flux LoRA", "/flux.safetensors", "", nil, apperr.LoRAInvalid, "not for WAN"},
		{"a model, not a LoRA", "/model.safetensors", "", nil, apperr.LoRAInvalid, "no LoRA weights"},
		{"declared size over the cap", "/large.safetensors", "", func(o *Options) { o.MaxBytes = 4096 }, apperr.LoRAInvalid, "MAX_LORA_BYTES"},
		{"streamed size over the cap", "/streamed", "", func(o *Options) { o.MaxBytes = 4096 }, apperr.LoRAInvalid, "larger than 4096 bytes (MAX_LORA_BYTES)"},
		{"404", "/nope.safetensors", "", nil, apperr.LoRAFetchFailed, "404"},
		{"401", "/401", "", nil, apperr.LoRAFetchFailed, "401"},
		{"timeout", "/stall", "", func(o *Options) { o.Timeout = 200 * time.Millisecond }, apperr.LoRAFetchFailed, "did not finish within 200ms"},
		{"stalled attempts", "/stall", "", func(o *Options) { o.StallTimeout = 20 * time.Millisecond; o.MaxAttempts = 2 }, apperr.LoRAFetchFailed, "2 times in a row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCache(t, tt.set)
			_, err := c.Get(t.Context(), Request{URL: srv.URL + tt.path + "?sig=secret", SHA256: tt.sha, Field: "options.loras[1].url"}, nil)
			e := apperr.As(err)
			if e == nil || e.Code != tt.code || !strings.Contains(e.Message, tt.inMsg) {
				t.Fatalf("error %v, want %s containing %q", err, tt.code, tt.inMsg)
			}
			if e.Field != "options.loras[1].url" || e.Hint == "" {
				t.Errorf("field %q hint %q", e.Field, e.Hint)
			}
			if strings.Contains(e.Message, "secret") {
				t.Errorf("message shows the URL's query: %s", e.Message)
			}
			if names := cacheFiles(t, c); len(names) != 0 {
				t.Errorf("a failed download left %v in the cache", names)
			}
		})
	}
}

func TestPrivateAddressesRefused(t *testing.T) {
	srv := newServer(t)
	u := srv.put("/a.safetensors", wanLoRA(t, 1))
	c := New(Options{LoRAsDir: t.TempDir(), MaxBytes: 1 << 20, CacheBytes: 1 << 20, Timeout: 5 * time.Second})
	_, err := c.Get(t.Context(), Request{URL: u, Field: "options.loras[0].url"}, nil)
	e := apperr.As(err)
	if e == nil || e.Code != apperr.LoRAFetchFailed || !strings.Contains(e.Message, "loopback") ||
		!strings.Contains(e.Hint, "ALLOW_PRIVATE_LORA_URLS") {
		t.Fatalf("error %v, want LORA_FETCH_FAILED for a loopback address", err)
	}
	if n := srv.hitsOf("/a.safetensors"); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

// hold makes srv hold every request until open is called: started gets a
// value as each request arrives.
func hold(t *testing.T, srv *server) (started <-chan struct{}, open func()) {
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // a failed test must not leave the server blocked
	srv.before = func(w http.ResponseWriter, r *http.Request) bool {
		arrived <- struct{}{}
		<-release
		return false
	}
	return arrived, open
}

// waitWaiters waits until n callers wait on the cache's download.
func waitWaiters(t *testing.T, c *Cache, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c.mu.Lock()
		waiters := 0
		for _, f := range c.flights {
			waiters = f.waiters
		}
		c.mu.Unlock()
		if waiters == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers wait on the download, want %d", waiters, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentJobsShareOneDownload(t *testing.T) {
	srv := newServer(t)
	data := wanLoRA(t, 50)
	u := srv.put("/shared.safetensors", data)
	started, open := hold(t, srv)
	c := testCache(t, nil)
	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	var progressed [2]atomic.Bool
	get := func(i int) {
		defer wg.Done()
		results[i], errs[i] = c.Get(context.Background(), Request{URL: u}, func(int64, int64) { progressed[i].Store(true) })
	}
	wg.Add(1)
	go get(0)
	<-started // the first job's download is under way
	wg.Add(1)
	go get(1)
	waitWaiters(t, c, 2) // the second job waits on the same download
	open()
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || results[i].SHA256 != sum(data) {
			t.Errorf("job %d: %+v %v", i, results[i], errs[i])
		}
		if !progressed[i].Load() {
			t.Errorf("job %d saw no progress", i)
		}
	}
	if n := srv.hitsOf("/shared.safetensors"); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestLeavingCallerDoesNotStopOthers(t *testing.T) {
	srv := newServer(t)
	data := wanLoRA(t, 5)
	u := srv.put("/a.safetensors", data)
	started, open := hold(t, srv)
	c := testCache(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() { _, err := c.Get(ctx, Request{URL: u}, nil); first <- err }()
	<-started
	second := make(chan error, 1)
	go func() { _, err := c.Get(t.Context(), Request{URL: u}, nil); second <- err }()
	waitWaiters(t, c, 2)
	cancel()
	if err := <-first; err != context.Canceled {
		t.Errorf("cancelled caller: %v", err)
	}
	open()
	if err := <-second; err != nil {
		t.Errorf("the other caller failed: %v", err)
	}
}

func TestEvictLeastRecentlyUsed(t *testing.T) {
	srv := newServer(t)
	a, b, cc := wanLoRA(t, 10), wanLoRA(t, 11), wanLoRA(t, 12)
	ua, ub, uc := srv.put("/a", a), srv.put("/b", b), srv.put("/c", cc)
	// Room for two of the three files.
	c := testCache(t, func(o *Options) { o.CacheBytes = int64(len(a) + len(b) + len(cc) - 1); o.KeepRecent = -1 })
	ra, err := c.Get(t.Context(), Request{URL: ua}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := c.Get(t.Context(), Request{URL: ub}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour)
	os.Chtimes(ra.Path, old, old)
	os.Chtimes(rb.Path, old.Add(time.Hour), old.Add(time.Hour))
	// Using a makes b the least recently used.
	if r, err := c.Get(t.Context(), Request{URL: ua}, nil); err != nil || !r.Cached {
		t.Fatalf("%+v %v", r, err)
	}
	rc, err := c.Get(t.Context(), Request{URL: uc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		want bool
	}{{ra.Path, true}, {rb.Path, false}, {rc.Path, true}} {
		if _, err := os.Stat(f.path); (err == nil) != f.want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(f.path), err == nil, f.want)
		}
	}
	// b is downloaded again when asked for.
	if r, err := c.Get(t.Context(), Request{URL: ub}, nil); err != nil || r.Cached {
		t.Errorf("b after eviction: %+v %v", r, err)
	}
}

func TestEvictSparesRecentlyUsed(t *testing.T) {
	srv := newServer(t)
	a, b := wanLoRA(t, 10), wanLoRA(t, 11)
	c := testCache(t, func(o *Options) { o.CacheBytes = 1024; o.KeepRecent = time.Hour })
	ra, err := c.Get(t.Context(), Request{URL: srv.put("/a", a)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(t.Context(), Request{URL: srv.put("/b", b)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ra.Path); err != nil {
		t.Errorf("a file used a moment ago was evicted: %v", err)
	}
}

func TestTokensFor(t *testing.T) {
	tok := Tokens{HuggingFace: "hf_secret", Civitai: "cv_secret"}
	tests := []struct {
		url, want string
	}{
		{"https://huggingface.co/u/r/resolve/main/a.safetensors", "hf_secret"},
		{"https://HuggingFace.co./u/r/resolve/main/a.safetensors", "hf_secret"},
		{"https://huggingface.co:443/u/r/resolve/main/a.safetensors", "hf_secret"},
		{"http://huggingface.co/u/r/resolve/main/a.safetensors", ""}, // never in clear text
		{"https://cdn-lfs.huggingface.co/repos/x", ""},
		{"https://cas-bridge.xethub.hf.co/x", ""},
		{"https://huggingface.co.evil.example/x", ""},
		{"https://evilhuggingface.co/x", ""},
		{"https://civitai.com/api/download/models/1", "cv_secret"},
		{"https://civitai.com/api/download/models/1?token=x", "cv_secret"},
		{"https://civitai-delivery-worker-prod.5ac0637cfd0766c97916cefa3764fbdf.r2.cloudflarestorage.com/x", ""},
		{"https://example.com/civitai.com/x", ""},
		{"https://user@civitai.com.example/x", ""},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.For(u); got != tt.want {
			t.Errorf("For(%s) = %q, want %q", tt.url, got, tt.want)
		}
	}
	if s := tok.String(); strings.Contains(s, "secret") {
		t.Errorf("String shows a token: %s", s)
	}
}

// TestTokenNotForwarded runs a download from "https://huggingface.co" that
// redirects to a CDN, on a TLS test server that answers for every host: the
// token reaches huggingface.co and not the CDN.
func TestTokenNotForwarded(t *testing.T) {
	data := wanLoRA(t, 2)
	var mu sync.Mutex
	auth := map[string]string{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth[r.Host] = r.Header.Get("Authorization")
		mu.Unlock()
		if r.Host == "huggingface.co" {
			http.Redirect(w, r, "https://cdn.example.net/blob", http.StatusFound)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	c := testCache(t, func(o *Options) {
		o.Client = hc
		o.Tokens = Tokens{HuggingFace: "hf_secret", Civitai: "cv_secret"}
	})
	if _, err := c.Get(t.Context(), Request{URL: "https://huggingface.co/u/r/resolve/main/a.safetensors"}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if auth["huggingface.co"] != "Bearer hf_secret" || auth["cdn.example.net"] != "" {
		t.Errorf("Authorization by host: %q", auth)
	}
}

func TestOptionsFrom(t *testing.T) {
	vol := t.TempDir()
	if err := os.MkdirAll(filepath.Join(vol, "models", "loras"), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	c := config.Default()
	c.HFToken, c.CivitaiToken = "h", "c"
	tests := []struct {
		name     string
		dirs     []string
		explicit string
		want     string
	}{
		{"first loras folder", []string{filepath.Join(t.TempDir(), "missing"), vol}, "", filepath.Join(vol, "models", "loras")},
		{"a models folder without loras", []string{empty}, "", filepath.Join(empty, "loras")},
		{"nothing", []string{filepath.Join(empty, "missing")}, "", ""},
		{"LORA_CACHE_DIR", []string{vol}, "/data/loras", "/data/loras"},
	}
	for _, tt := range tests {
		c.ModelsDirs, c.LoRACacheDir = tt.dirs, tt.explicit
		o := OptionsFrom(c)
		if o.LoRAsDir != tt.want {
			t.Errorf("%s: loras folder %q, want %q", tt.name, o.LoRAsDir, tt.want)
		}
		if o.Tokens != (Tokens{HuggingFace: "h", Civitai: "c"}) || o.MaxBytes != c.MaxLoRABytes || o.CacheBytes != c.LoRACacheBytes {
			t.Errorf("%s: %+v", tt.name, o)
		}
	}
	if _, err := New(Options{}).Get(t.Context(), Request{URL: "https://example.com/a", Field: "f"}, nil); apperr.CodeOf(err) != apperr.LoRAFetchFailed {
		t.Errorf("no loras folder: %v", err)
	}
}
