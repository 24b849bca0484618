package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// fixture is a small generated file served by a hubServer.
type fixture struct {
	file File
	data []byte
}

func newFixture(name, folder string, size int, seed uint64) fixture {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(data)
	return fixture{
		file: File{Name: name, Folder: folder, Repo: "test-org/test-repo", Path: "split_files/" + folder + "/" + filepath.Base(name),
			Size: int64(size), SHA256: hex.EncodeToString(sum[:])},
		data: data,
	}
}

// fault is how a hubServer misbehaves on one request.
type fault func(w http.ResponseWriter, r *http.Request, data []byte) (handled bool)

// hubServer is a fake Hugging Face: it serves fixtures at
// /<repo>/resolve/main/<path> with Range support (http.ServeContent), and
// applies faults[n] to the n-th request of a file (counted from 0).
type hubServer struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string][]byte
	faults   map[string][]fault
	requests map[string][]*http.Request
	served   map[string]int64
}

func newHub(t *testing.T, fixtures ...fixture) *hubServer {
	t.Helper()
	h := &hubServer{files: map[string][]byte{}, faults: map[string][]fault{}, requests: map[string][]*http.Request{}, served: map[string]int64{}}
	for _, f := range fixtures {
		h.files["/"+f.file.Repo+"/resolve/main/"+f.file.Path] = f.data
	}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *hubServer) setFaults(f File, faults ...fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults["/"+f.Repo+"/resolve/main/"+f.Path] = faults
}

func (h *hubServer) requestsFor(f File) []*http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*http.Request(nil), h.requests["/"+f.Repo+"/resolve/main/"+f.Path]...)
}

func (h *hubServer) bytesServed(f File) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.served["/"+f.Repo+"/resolve/main/"+f.Path]
}

type countingWriter struct {
	http.ResponseWriter
	n *int64
	h *hubServer
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.h.mu.Lock()
	*c.n += int64(n)
	c.h.mu.Unlock()
	return n, err
}

func (c countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (h *hubServer) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	data, ok := h.files[r.URL.Path]
	n := len(h.requests[r.URL.Path])
	h.requests[r.URL.Path] = append(h.requests[r.URL.Path], r)
	var fl fault
	if fs := h.faults[r.URL.Path]; n < len(fs) {
		fl = fs[n]
	}
	counter := new(int64)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.served[r.URL.Path] += *counter
		h.mu.Unlock()
	}()
	if !ok {
		http.NotFound(w, r)
		return
	}
	cw := countingWriter{ResponseWriter: w, n: counter, h: h}
	if fl != nil && fl(cw, r, data) {
		return
	}
	http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(data))
}

// dropAfter sends the whole file's headers, then only n bytes, and drops
// the connection.
func dropAfter(n int) fault {
	return func(w http.ResponseWriter, r *http.Request, data []byte) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:n])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

// stallAfter sends n bytes, then nothing until the client gives up.
func stallAfter(n int) fault {
	return func(w http.ResponseWriter, r *http.Request, data []byte) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:n])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	}
}

// corrupt serves the file with one byte changed (same size).
func corrupt(w http.ResponseWriter, r *http.Request, data []byte) bool {
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 0xff
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(bad))
	return true
}

// ignoreRange always answers 200 with the whole file.
func ignoreRange(w http.ResponseWriter, r *http.Request, data []byte) bool {
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
	return true
}

func status(code int) fault {
	return func(w http.ResponseWriter, r *http.Request, data []byte) bool {
		if cw, ok := w.(countingWriter); ok {
			w = cw.ResponseWriter // error bodies are not file bytes
		}
		http.Error(w, http.StatusText(code), code)
		return true
	}
}

func testDownloader(endpoint string) *Downloader {
	return &Downloader{Endpoint: endpoint, StallTimeout: 2 * time.Second, MaxAttempts: 4, BackoffUnit: time.Millisecond}
}

// events collects a download's events.
type events struct {
	mu sync.Mutex
	ev []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ev = append(e.ev, ev)
}

func (e *events) phases() map[Phase]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[Phase]int{}
	for _, ev := range e.ev {
		m[ev.Phase]++
	}
	return m
}

func (e *events) retryErrs() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []error
	for _, ev := range e.ev {
		if ev.Phase == PhaseRetrying {
			out = append(out, ev.Err)
		}
	}
	return out
}

func TestDownload(t *testing.T) {
	const size = 300_000
	tests := []struct {
		name string
		// partial, when set, is written as the .partial file before the run.
		partial func(data []byte) []byte
		faults  []fault
		dl      func(*Downloader)
		// wantErr is empty for success.
		wantErr      string
		wantRequests int
		// wantRanges are the Range headers of the requests ("" none).
		wantRanges []string
		wantPhases []Phase
		// maxServed bounds the body bytes sent (a resume sends only the rest).
		maxServed int64
	}{
		{name: "plain", wantRequests: 1, wantRanges: []string{""}, wantPhases: []Phase{PhaseDownloading, PhaseDone}, maxServed: size},
		{name: "drop mid-file resumes from the partial", faults: []fault{dropAfter(100_000)}, wantRequests: 2,
			wantRanges: []string{"", "bytes=100000-"}, wantPhases: []Phase{PhaseRetrying, PhaseDone}, maxServed: size},
		{name: "partial from an earlier run is resumed", partial: func(d []byte) []byte { return d[:123_456] },
			wantRequests: 1, wantRanges: []string{"bytes=123456-"}, wantPhases: []Phase{PhaseHashing, PhaseDone}, maxServed: size - 123_456},
		{name: "complete partial needs no request", partial: func(d []byte) []byte { return d },
			wantRequests: 0, wantRanges: []string{}, wantPhases: []Phase{PhaseHashing, PhaseDone}},
		{name: "server ignores Range: restart from zero", partial: func(d []byte) []byte { return bytes.Repeat([]byte{'x'}, 5000) },
			faults: []fault{ignoreRange}, wantRequests: 1, wantRanges: []string{"bytes=5000-"}, wantPhases: []Phase{PhaseRestarted, PhaseDone}, maxServed: size},
		{name: "partial longer than the file is discarded", partial: func(d []byte) []byte { return append(bytes.Clone(d), 1, 2, 3) },
			wantRequests: 1, wantRanges: []string{""}, wantPhases: []Phase{PhaseDone}, maxServed: size},
		{name: "slow server: stall detection retries", faults: []fault{stallAfter(50_000)},
			dl: func(d *Downloader) { d.StallTimeout = time.Second }, wantRequests: 2,
			wantRanges: []string{"", "bytes=50000-"}, wantPhases: []Phase{PhaseRetrying, PhaseDone}, maxServed: size},
		{name: "server errors are retried", faults: []fault{status(503), status(500)}, wantRequests: 3,
			wantRanges: []string{"", "", ""}, wantPhases: []Phase{PhaseRetrying, PhaseDone}, maxServed: size},
		{name: "wrong bytes fail the checksum", faults: []fault{corrupt}, wantErr: "checksum mismatch", wantRequests: 1,
			wantPhases: []Phase{PhaseFailed}},
		{name: "404 names the URL, no retry", faults: []fault{status(404)}, wantErr: "404 Not Found", wantRequests: 1,
			wantPhases: []Phase{PhaseFailed}},
		{name: "403 asks for HF_TOKEN", faults: []fault{status(403)}, wantErr: "403 Forbidden", wantRequests: 1},
		{name: "gives up after MaxAttempts without progress", faults: []fault{status(502), status(502), status(502), status(502), status(502)},
			wantErr: "after 4 attempts", wantRequests: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture("a/model.safetensors", FolderLoRAs, size, 7)
			hub := newHub(t, fx)
			hub.setFaults(fx.file, tc.faults...)
			dest := filepath.Join(t.TempDir(), "loras", "a", "model.safetensors")
			if tc.partial != nil {
				os.MkdirAll(filepath.Dir(dest), 0o755)
				if err := os.WriteFile(dest+PartialSuffix, tc.partial(fx.data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d := testDownloader(hub.URL)
			if tc.dl != nil {
				tc.dl(d)
			}
			var ev events
			err := d.Download(t.Context(), fx.file, fx.file.Name, dest, ev.add)

			reqs := hub.requestsFor(fx.file)
			if len(reqs) != tc.wantRequests {
				t.Errorf("requests = %d, want %d", len(reqs), tc.wantRequests)
			}
			if tc.wantRanges != nil {
				var got []string
				for _, r := range reqs {
					got = append(got, r.Header.Get("Range"))
				}
				if strings.Join(got, ",") != strings.Join(tc.wantRanges, ",") {
					t.Errorf("Range headers = %q, want %q", got, tc.wantRanges)
				}
			}
			ph := ev.phases()
			for _, p := range tc.wantPhases {
				if ph[p] == 0 {
					t.Errorf("no %s event; got %v", p, ph)
				}
			}
			if tc.maxServed > 0 && hub.bytesServed(fx.file) > tc.maxServed {
				t.Errorf("served %d body bytes, want at most %d", hub.bytesServed(fx.file), tc.maxServed)
			}
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not contain %q", err, tc.wantErr)
				}
				if e := apperr.As(err); e == nil || e.Code != apperr.ModelMissing || e.Hint == "" {
					t.Errorf("error %#v is not MODEL_MISSING with a hint", err)
				}
				if _, serr := os.Stat(dest); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("a failed download left %s in place (stat: %v)", dest, serr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			got, rerr := os.ReadFile(dest)
			if rerr != nil || !bytes.Equal(got, fx.data) {
				t.Fatalf("dest content differs from the fixture (read err %v, %d bytes)", rerr, len(got))
			}
			if _, serr := os.Stat(dest + PartialSuffix); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("partial file left behind: %v", serr)
			}
		})
	}
}

func TestDownloadErrorDetails(t *testing.T) {
	fx := newFixture("model.safetensors", FolderVAE, 10_000, 1)
	t.Run("404 names the URL and says where to look", func(t *testing.T) {
		hub := newHub(t) // serves nothing
		dest := filepath.Join(t.TempDir(), "vae", "model.safetensors")
		err := testDownloader(hub.URL).Download(t.Context(), fx.file, fx.file.Name, dest, nil)
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != 404 {
			t.Fatalf("err = %v, want an *HTTPError 404", err)
		}
		url := hub.URL + "/test-org/test-repo/resolve/main/split_files/vae/model.safetensors"
		if !strings.Contains(err.Error(), url) {
			t.Errorf("error %q does not name %s", err, url)
		}
		if h := apperr.As(err).Hint; !strings.Contains(h, "HF_ENDPOINT") {
			t.Errorf("hint %q does not mention HF_ENDPOINT", h)
		}
	})
	t.Run("checksum mismatch deletes the partial", func(t *testing.T) {
		hub := newHub(t, fx)
		hub.setFaults(fx.file, corrupt)
		dest := filepath.Join(t.TempDir(), "vae", "model.safetensors")
		err := testDownloader(hub.URL).Download(t.Context(), fx.file, fx.file.Name, dest, nil)
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.Want != fx.file.SHA256 || ce.Got == ce.Want {
			t.Fatalf("err = %v, want a *ChecksumError", err)
		}
		for _, p := range []string{dest, dest + PartialSuffix} {
			if _, serr := os.Stat(p); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("%s exists after a checksum failure", p)
			}
		}
	})
	t.Run("server size differs from the manifest", func(t *testing.T) {
		hub := newHub(t, fx)
		f := fx.file
		f.Size++
		err := testDownloader(hub.URL).Download(t.Context(), f, f.Name, filepath.Join(t.TempDir(), "m"), nil)
		var se *SizeError
		if !errors.As(err, &se) || se.Got != fx.file.Size || se.Want != f.Size {
			t.Fatalf("err = %v, want a *SizeError", err)
		}
		if n := len(hub.requestsFor(f)); n != 1 {
			t.Errorf("requests = %d, want 1 (no retry)", n)
		}
	})
	t.Run("unknown size, complete partial: 416 means done", func(t *testing.T) {
		hub := newHub(t, fx)
		f := fx.file
		f.Size = 0 // checked by SHA256 only, so the partial must be asked about
		dest := filepath.Join(t.TempDir(), "m")
		os.WriteFile(dest+PartialSuffix, fx.data, 0o644)
		if err := testDownloader(hub.URL).Download(t.Context(), f, f.Name, dest, nil); err != nil {
			t.Fatal(err)
		}
		reqs := hub.requestsFor(f)
		if len(reqs) != 1 || reqs[0].Header.Get("Range") != "bytes=10000-" {
			t.Errorf("requests = %d, want one ranged request", len(reqs))
		}
		if b, _ := os.ReadFile(dest); !bytes.Equal(b, fx.data) {
			t.Error("dest differs")
		}
	})
	t.Run("token is sent as a bearer", func(t *testing.T) {
		hub := newHub(t, fx)
		d := testDownloader(hub.URL)
		d.Token = "hf_secret"
		if err := d.Download(t.Context(), fx.file, fx.file.Name, filepath.Join(t.TempDir(), "m"), nil); err != nil {
			t.Fatal(err)
		}
		if got := hub.requestsFor(fx.file)[0].Header.Get("Authorization"); got != "Bearer hf_secret" {
			t.Errorf("Authorization = %q", got)
		}
	})
	t.Run("full disk fails fast", func(t *testing.T) {
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("no /dev/full on this system")
		}
		hub := newHub(t, fx)
		dest := filepath.Join(t.TempDir(), "m")
		if err := os.Symlink("/dev/full", dest+PartialSuffix); err != nil {
			t.Skip(err)
		}
		err := testDownloader(hub.URL).Download(t.Context(), fx.file, fx.file.Name, dest, nil)
		var ns *NoSpaceError
		if !errors.As(err, &ns) {
			t.Fatalf("err = %v, want *NoSpaceError", err)
		}
		if n := len(hub.requestsFor(fx.file)); n != 1 {
			t.Errorf("requests = %d, want 1 (no retry on a full disk)", n)
		}
	})
	t.Run("cancel stops at once and keeps the partial", func(t *testing.T) {
		hub := newHub(t, fx)
		ctx, cancel := context.WithCancel(t.Context())
		hub.setFaults(fx.file, stallAfter(4000))
		dest := filepath.Join(t.TempDir(), "m")
		err := testDownloader(hub.URL).Download(ctx, fx.file, fx.file.Name, dest, func(e Event) {
			if e.Done >= 4000 {
				cancel() // the user presses Ctrl+C once 4000 bytes are in
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := len(hub.requestsFor(fx.file)); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
		fi, serr := os.Stat(dest + PartialSuffix)
		if serr != nil || fi.Size() != 4000 {
			t.Errorf("partial: %v; want 4000 bytes kept", serr)
		}
	})
}

func TestFileURL(t *testing.T) {
	f := File{Repo: "Comfy-Org/Wan_2.2_ComfyUI_Repackaged", Path: "split_files/vae/wan_2.1_vae.safetensors"}
	tests := []struct{ endpoint, want string }{
		{"", "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/vae/wan_2.1_vae.safetensors"},
		{"http://127.0.0.1:9/", "http://127.0.0.1:9/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/vae/wan_2.1_vae.safetensors"},
		{"https://mirror.example/hf", "https://mirror.example/hf/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/vae/wan_2.1_vae.safetensors"},
	}
	for _, tc := range tests {
		if got := FileURL(tc.endpoint, f); got != tc.want {
			t.Errorf("FileURL(%q) = %s, want %s", tc.endpoint, got, tc.want)
		}
	}
	if got := FileURL("", File{Repo: "o/r", Path: "a b/c#d.safetensors"}); got != "https://huggingface.co/o/r/resolve/main/a%20b/c%23d.safetensors" {
		t.Errorf("escaping: %s", got)
	}
}

func TestVerifyFile(t *testing.T) {
	fx := newFixture("m", FolderVAE, 5000, 3)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, fx.data, 0o644)
	bad := filepath.Join(dir, "bad")
	b := bytes.Clone(fx.data)
	b[0] ^= 1
	os.WriteFile(bad, b, 0o644)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, fx.data[:10], 0o644)

	var last int64
	if err := VerifyFile(t.Context(), good, fx.file, func(n int64) { last = n }); err != nil {
		t.Errorf("good: %v", err)
	}
	if last != 5000 {
		t.Errorf("progress ended at %d, want 5000", last)
	}
	var ce *ChecksumError
	if err := VerifyFile(t.Context(), bad, fx.file, nil); !errors.As(err, &ce) {
		t.Errorf("bad: %v, want *ChecksumError", err)
	}
	var se *SizeError
	if err := VerifyFile(t.Context(), short, fx.file, nil); !errors.As(err, &se) || se.Got != 10 {
		t.Errorf("short: %v, want *SizeError", err)
	}
	if err := VerifyFile(t.Context(), filepath.Join(dir, "none"), fx.file, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestBackoffGrowsAndStopsOnCancel(t *testing.T) {
	d := &Downloader{BackoffUnit: time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.backoff(ctx, 3); !errors.Is(err, context.Canceled) {
		t.Errorf("backoff on a cancelled ctx = %v", err)
	}
	if err := d.backoff(t.Context(), 1); err != nil {
		t.Errorf("backoff = %v", err)
	}
}
