package job

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
)

// testFetcher returns a Fetcher with the default configuration changed by
// set.
func testFetcher(set func(c *config.Config)) *Fetcher {
	c := config.Default()
	c.AllowPrivateImageURLs = true
	if set != nil {
		set(c)
	}
	return NewFetcher(c)
}

// imageServer serves the test PNG at /img, redirect chains at /r/<n>,
// statuses at /status/<code>, and counts requests.
func imageServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	png := testPNG(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/img", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	})
	mux.HandleFunc("/r/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			http.Redirect(w, r, "/img", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/r/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	if h != nil {
		mux.Handle("/custom", h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func fetchJob(url string) []byte {
	return []byte(`{"prompt": "a cat", "image": "` + url + `", "options": {"seed": 1}}`)
}

func TestFetchParse(t *testing.T) {
	srv, _ := imageServer(t, nil)
	j, err := Parse(t.Context(), "u1", fetchJob(srv.URL+"/img?sig=secret"), testLimits(), testFetcher(nil))
	if err != nil {
		t.Fatal(err)
	}
	if j.Image.Source != SourceURL || j.Image.Format != FormatPNG || j.Image.Width != 64 || j.Options.Width != 960 {
		t.Errorf("image %+v options %dx%d", j.Image, j.Options.Width, j.Options.Height)
	}
}

func TestFetchErrors(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the client gives up
	})
	srv, _ := imageServer(t, slow)
	big := testPNG(t)
	streamed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: the cap must hold while streaming.
		for i := 0; i < 100; i++ {
			w.Write(big)
			w.(http.Flusher).Flush()
		}
	})
	streamSrv, _ := imageServer(t, streamed)
	declared := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 100000))
	})
	declaredSrv, _ := imageServer(t, declared)
	badScheme := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://example.com/x.png", http.StatusFound)
	})
	badSchemeSrv, _ := imageServer(t, badScheme)

	tests := []struct {
		name string
		url  string
		set  func(*config.Config)
		code apperr.Code
		in   string
	}{
		{"404", srv.URL + "/status/404", nil, apperr.ImageFetchFailed, "404"},
		{"403", srv.URL + "/status/403", nil, apperr.ImageFetchFailed, "presigned"},
		{"500", srv.URL + "/status/500", nil, apperr.ImageFetchFailed, "500"},
		{"redirects within the cap", srv.URL + "/r/2", func(c *config.Config) { c.ImageFetchMaxRedirects = 3 }, "", ""},
		{"redirects at the cap", srv.URL + "/r/2", func(c *config.Config) { c.ImageFetchMaxRedirects = 2 }, apperr.ImageFetchFailed, "IMAGE_FETCH_MAX_REDIRECTS"},
		{"no redirects allowed", srv.URL + "/r/0", func(c *config.Config) { c.ImageFetchMaxRedirects = 0 }, apperr.ImageFetchFailed, "after 0 redirects"},
		{"redirect to another scheme", badSchemeSrv.URL + "/custom", nil, apperr.ImageFetchFailed, "ftp"},
		{"timeout", srv.URL + "/custom", func(c *config.Config) { c.ImageFetchTimeout = 50 * time.Millisecond }, apperr.ImageFetchFailed, "IMAGE_FETCH_TIMEOUT"},
		{"streamed body over the cap", streamSrv.URL + "/custom", func(c *config.Config) { c.MaxImageBytes = 4096 }, apperr.ImageTooLarge, "MAX_IMAGE_BYTES"},
		{"declared length over the cap", declaredSrv.URL + "/custom", func(c *config.Config) { c.MaxImageBytes = 4096 }, apperr.ImageTooLarge, "100000 bytes"},
		{"not an image", srv.URL + "/status/200", nil, apperr.ImageInvalid, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFetcher(tt.set)
			lim := testLimits()
			lim.MaxImageBytes = f.maxBytes
			_, err := Parse(t.Context(), "f", fetchJob(tt.url), lim, f)
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			e := apperr.As(err)
			if e == nil || e.Code != tt.code || e.Field != "image" || e.Hint == "" || !strings.Contains(e.Message+" | "+e.Hint, tt.in) {
				t.Fatalf("err = %#v, want %s with %q", e, tt.code, tt.in)
			}
		})
	}
}

func TestFetchRefusesPrivateAddresses(t *testing.T) {
	srv, hits := imageServer(t, nil)
	f := testFetcher(func(c *config.Config) { c.AllowPrivateImageURLs = false })
	for _, u := range []string{srv.URL + "/img", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/img"} {
		_, err := Parse(t.Context(), "p", fetchJob(u), testLimits(), f)
		e := apperr.As(err)
		if e == nil || e.Code != apperr.ImageFetchFailed || !strings.Contains(e.Message, "loopback") ||
			!strings.Contains(e.Hint, "ALLOW_PRIVATE_IMAGE_URLS") {
			t.Errorf("%s: err = %v, want IMAGE_FETCH_FAILED naming loopback", u, err)
		}
	}
	// The address is refused before connecting: the server saw nothing.
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests; a refused address must never be contacted", n)
	}
}

// TestNoFetchForABadJob: a job with bad fields is refused before its image
// is downloaded.
func TestNoFetchForABadJob(t *testing.T) {
	srv, hits := imageServer(t, nil)
	_, err := Parse(t.Context(), "b", []byte(`{"prompt": "a", "image": "`+srv.URL+`/img", "options": {"length": 80}}`),
		testLimits(), testFetcher(nil))
	if apperr.CodeOf(err) != apperr.InvalidInput {
		t.Fatalf("err = %v, want INVALID_INPUT", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the image was requested %d times for a job that was already invalid", n)
	}
}

func TestFetchCancelled(t *testing.T) {
	srv, _ := imageServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	ctx, cancel := context.WithCancel(t.Context())
	f := testFetcher(nil)
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(ctx, srv.URL+"/custom")
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || apperr.CodeOf(err) != apperr.ImageFetchFailed {
		t.Errorf("err = %v, want IMAGE_FETCH_FAILED wrapping context.Canceled", err)
	}
}

func TestFetchWithHTTPClient(t *testing.T) {
	png := testPNG(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(png) }))
	t.Cleanup(srv.Close)
	f := testFetcher(nil)
	if _, err := f.Fetch(t.Context(), srv.URL); err == nil {
		t.Fatal("the default client trusted the test server's certificate")
	}
	got, err := f.WithHTTPClient(srv.Client()).Fetch(t.Context(), srv.URL)
	if err != nil || len(got) != len(png) {
		t.Fatalf("fetch with the injected client: %d bytes, %v", len(got), err)
	}
}

func TestNonPublic(t *testing.T) {
	blocked := []string{"127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
		"fe80::1", "0.0.0.0", "::", "100.64.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
		"224.0.0.1", "255.255.255.255", "fc00::1", "fd12::1", "198.18.0.1", "192.0.2.1", "2002:a00:1::1"}
	public := []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2a00:1450:4001::200e"}
	for _, s := range blocked {
		if nonPublic(netip.MustParseAddr(s)) == "" {
			t.Errorf("%s is allowed, want it refused", s)
		}
	}
	for _, s := range public {
		if k := nonPublic(netip.MustParseAddr(s)); k != "" {
			t.Errorf("%s refused as %s, want it allowed", s, k)
		}
	}
	f := testFetcher(func(c *config.Config) { c.AllowPrivateImageURLs = false })
	var be *blockedAddrError
	if err := f.checkDial("tcp4", "169.254.169.254:80", nil); !errors.As(err, &be) {
		t.Errorf("checkDial(metadata address) = %v, want a refusal", err)
	}
	if err := f.checkDial("tcp6", "[2606:4700::1111]:443", nil); err != nil {
		t.Errorf("checkDial(public address) = %v", err)
	}
}

func TestRedact(t *testing.T) {
	got := redact("https://user:pw@bucket.example.com/a/b.png?X-Amz-Signature=secret#frag")
	if got != "https://bucket.example.com/a/b.png" {
		t.Errorf("redact = %q", got)
	}
}

// TestFetchEndImage: an end frame given as a URL is downloaded like the
// image, through the same guard, and its errors name end_image.
func TestFetchEndImage(t *testing.T) {
	srv, hits := imageServer(t, nil)
	doc := func(end string) []byte {
		return []byte(`{"prompt": "a", "image": "` + b64(testPNG(t)) + `", "end_image": "` + end + `", "options": {"seed": 1}}`)
	}
	j, err := Parse(t.Context(), "e1", doc(srv.URL+"/img"), testLimits(), testFetcher(nil))
	if err != nil {
		t.Fatal(err)
	}
	if j.EndImage == nil || j.EndImage.Source != SourceURL || j.EndPNG == nil || hits.Load() != 1 {
		t.Errorf("end image %+v, %d PNG bytes, %d requests", j.EndImage, len(j.EndPNG), hits.Load())
	}
	tests := []struct {
		name string
		url  string
		f    *Fetcher
		code apperr.Code
		text string
	}{
		{"HTTP 404", srv.URL + "/status/404", testFetcher(nil), apperr.ImageFetchFailed, "downloading the end image from"},
		{"loopback refused", srv.URL + "/img", testFetcher(func(c *config.Config) { c.AllowPrivateImageURLs = false }), apperr.ImageFetchFailed, "loopback"},
		{"too large", srv.URL + "/img", testFetcher(func(c *config.Config) { c.MaxImageBytes = 10 }), apperr.ImageTooLarge, "MAX_IMAGE_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(t.Context(), "e2", doc(tt.url), testLimits(), tt.f)
			e := apperr.As(err)
			if e == nil {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if e.Code != tt.code || e.Field != "end_image" || !strings.Contains(e.Message, tt.text) {
				t.Errorf("err = %v (field %q), want %s on end_image with %q", err, e.Field, tt.code, tt.text)
			}
		})
	}
}
