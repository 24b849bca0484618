package endpoint

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flaky answers the first len(faults) requests with a fault, then 200.
func flaky(t *testing.T, faults []int, ok string) (*httptest.Server, *atomic.Int32, *atomic.Value) {
	t.Helper()
	var n atomic.Int32
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		auth.Store(r.Header.Get("Authorization"))
		if i < len(faults) {
			switch faults[i] {
			case -1: // a reset connection
				hj, _ := w.(http.Hijacker)
				c, _, _ := hj.Hijack()
				c.Close()
				return
			default:
				w.WriteHeader(faults[i])
				_, _ = w.Write([]byte(`{"error":"try later"}`))
				return
			}
		}
		_, _ = w.Write([]byte(ok))
	}))
	t.Cleanup(srv.Close)
	return srv, &n, &auth
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		faults   []int
		wantErr  int // HTTP status of the error; 0 for success
		requests int32
	}{
		{"ok", nil, 0, 1},
		{"429 then ok", []int{429}, 0, 2},
		{"5xx then ok", []int{502, 503, 500}, 0, 4},
		{"reset then ok", []int{-1}, 0, 2},
		{"400 is not retried", []int{400}, 400, 1},
		{"401 is not retried", []int{401}, 401, 1},
		{"404 is not retried", []int{404}, 404, 1},
		{"gives up", []int{503, 503, 503, 503}, 503, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, n, auth := flaky(t, tc.faults, `{"id":"j1","status":"IN_QUEUE"}`)
			var retries int
			c := New(Options{Base: srv.URL + "/", Token: "tok", Attempts: max(3, len(tc.faults)+1),
				MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
				OnRetry: func(string, int, time.Duration, error) { retries++ }})
			if tc.name == "gives up" {
				c.o.Attempts = 3
			}
			st, err := c.Run(context.Background(), []byte(`{"input":{}}`))
			if tc.wantErr == 0 {
				if err != nil || st.ID != "j1" || st.Status != InQueue {
					t.Fatalf("Run = %+v, %v", st, err)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) || e.StatusCode != tc.wantErr {
					t.Fatalf("err = %v, want HTTP %d", err, tc.wantErr)
				}
			}
			if got := n.Load(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if int32(retries) != tc.requests-1 {
				t.Errorf("%d retries reported, want %d", retries, tc.requests-1)
			}
			if a := auth.Load(); a != "Bearer tok" {
				t.Errorf("Authorization = %v", a)
			}
		})
	}
}

func TestErrorHints(t *testing.T) {
	srv, _, _ := flaky(t, []int{404}, "")
	c := New(Options{Base: srv.URL})
	_, err := c.Status(context.Background(), "gone")
	if !NotFound(err) {
		t.Fatalf("err = %v, want not found", err)
	}
	var e *Error
	errors.As(err, &e)
	if !strings.Contains(e.Message, "try later") || !strings.Contains(e.Hint(), "expired") {
		t.Errorf("message %q hint %q", e.Message, e.Hint())
	}
}

func TestRoutes(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		if strings.HasPrefix(r.URL.Path, "/v2/ep/stream/") {
			_, _ = w.Write([]byte(`{"id":"a b","status":"IN_PROGRESS","stream":[{"output":{"stage":"decoding"}}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"a b","status":"COMPLETED","executionTime":12}`))
	}))
	defer srv.Close()
	c := New(Options{Base: srv.URL + "/v2/ep"})
	ctx := context.Background()
	if _, err := c.Status(ctx, "a b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, "a b"); err != nil {
		t.Fatal(err)
	}
	s, err := c.Stream(ctx, "a b")
	if err != nil || len(s.Stream) != 1 {
		t.Fatalf("stream = %+v, %v", s, err)
	}
	if _, err := c.RunSync(ctx, []byte(`{}`), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /v2/ep/status/a%20b", "POST /v2/ep/cancel/a%20b", "GET /v2/ep/stream/a%20b", "POST /v2/ep/runsync?wait=2000"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDownload(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("the token was sent to the download URL")
		}
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		_, _ = w.Write([]byte("video bytes"))
	}))
	defer srv.Close()
	c := New(Options{Base: "http://unused", Token: "secret", MinBackoff: time.Millisecond})
	path := filepath.Join(t.TempDir(), "v.mp4")
	var last int64
	size, err := c.Download(context.Background(), srv.URL+"/v.mp4", path, func(done, _ int64) { last = done })
	if err != nil || size != 11 || last != 11 {
		t.Fatalf("Download = %d, %v (progress %d)", size, err, last)
	}
	if b, _ := os.ReadFile(path); string(b) != "video bytes" {
		t.Errorf("file = %q", b)
	}
}
