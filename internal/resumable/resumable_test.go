package resumable

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */5000", -1, 5000, true},
		{"", -1, -1, false},
		{"bytes 1-2", -1, -1, false},
		{"items 1-2/3", -1, -1, false},
		{"bytes x-2/3", -1, -1, false},
	}
	for _, tc := range tests {
		s, n, ok := ParseContentRange(tc.in)
		if s != tc.start || n != tc.size || ok != tc.ok {
			t.Errorf("ParseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, s, n, ok, tc.start, tc.size, tc.ok)
		}
	}
}

// faults are how a test server misbehaves.
type faults struct {
	ignoreRange bool
	wrongRange  bool
	status      int           // answer this status instead, when set
	stallAfter  int           // send this many bytes, then stall (0: never)
	stallFor    time.Duration // how long a stall lasts
	cut         int           // close the connection after this many bytes (0: never)
}

// server serves data with its faults, honouring Range unless told
// otherwise, and records the requests' Range and If-Range headers.
type server struct {
	faults
	data     []byte
	mu       sync.Mutex
	ranges   []string // Range of each request
	ifRanges []string // If-Range of each request
}

// seen returns the Range and If-Range headers of the requests so far.
func (s *server) seen() (ranges, ifRanges []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ranges), slices.Clone(s.ifRanges)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.ifRanges = append(s.ifRanges, r.Header.Get("If-Range"))
	cut := s.cut
	s.mu.Unlock()
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	w.Header().Set("ETag", `"v1"`)
	body, start := s.data, 0
	if rg := r.Header.Get("Range"); rg != "" && !s.ignoreRange {
		start, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if start >= len(s.data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(s.data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		shown := start
		if s.wrongRange {
			shown = 0
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", shown, len(s.data)-1, len(s.data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(s.data)-start))
		w.WriteHeader(http.StatusPartialContent)
		body = s.data[start:]
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
	}
	switch {
	case s.stallAfter > 0 && s.stallAfter < len(body):
		w.Write(body[:s.stallAfter])
		w.(http.Flusher).Flush()
		time.Sleep(s.stallFor)
	case cut > 0 && cut < len(body):
		w.Write(body[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	default:
		w.Write(body)
	}
}

func newTransfer(t *testing.T, url string) *Transfer {
	f, err := os.CreateTemp(t.TempDir(), "part-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &Transfer{Client: &http.Client{}, URL: url, File: f, Sum: sha256.New(), StallTimeout: 5 * time.Second, IfRange: true}
}

func content(t *testing.T, tr *Transfer) []byte {
	b, err := os.ReadFile(tr.File.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAttempt(t *testing.T) {
	data := make([]byte, 700_000)
	for i := range data {
		data[i] = byte(i * 31 / 7)
	}
	sum := sha256.Sum256(data)
	tests := []struct {
		name      string
		srv       faults
		prefix    int // bytes already in the file
		attempts  int // attempts until done
		restarted bool
	}{
		{name: "whole file", attempts: 1},
		{name: "resumed with a range", prefix: 1000, attempts: 1},
		{name: "range ignored: from zero", srv: faults{ignoreRange: true}, prefix: 1000, attempts: 1, restarted: true},
		{name: "another range answered: from zero, then whole", srv: faults{wrongRange: true}, prefix: 1000, attempts: 2, restarted: true},
		{name: "already complete (416)", prefix: len(data), attempts: 1},
		{name: "connection cut, then resumed", srv: faults{cut: 300_000}, attempts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &server{faults: tt.srv, data: data}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			tr := newTransfer(t, hs.URL+"/f")
			tr.Total = int64(len(data))
			if tt.prefix > 0 {
				tr.File.Write(data[:tt.prefix])
				tr.Sum.Write(data[:tt.prefix])
				tr.Offset = int64(tt.prefix)
			}
			restarted := false
			tr.OnRestart = func() { restarted = true }
			for n := 1; ; n++ {
				retry, err := tr.Attempt(t.Context())
				if err == nil {
					if n != tt.attempts {
						t.Errorf("done after %d attempts, want %d", n, tt.attempts)
					}
					break
				}
				if !retry || n > 5 {
					t.Fatalf("attempt %d: %v (retry %v)", n, err, retry)
				}
			}
			if !bytes.Equal(content(t, tr), data) || tr.Offset != int64(len(data)) || !bytes.Equal(tr.Sum.Sum(nil), sum[:]) {
				t.Errorf("the file is not the data: %d bytes, offset %d", len(content(t, tr)), tr.Offset)
			}
			if restarted != tt.restarted {
				t.Errorf("restarted %v, want %v", restarted, tt.restarted)
			}
			if ranges, _ := srv.seen(); tt.prefix > 0 && ranges[0] != fmt.Sprintf("bytes=%d-", tt.prefix) {
				t.Errorf("first Range %q", ranges[0])
			}
		})
	}
}

// TestAttemptIfRange: a resumed attempt carries the validator of the answer
// that started the file.
func TestAttemptIfRange(t *testing.T) {
	srv := &server{faults: faults{cut: 4}, data: []byte("0123456789")}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	tr := newTransfer(t, hs.URL)
	if retry, err := tr.Attempt(t.Context()); err == nil || !retry {
		t.Fatalf("a cut connection: %v (retry %v)", err, retry)
	}
	srv.mu.Lock()
	srv.cut = 0
	srv.mu.Unlock()
	if _, err := tr.Attempt(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ranges, ifRanges := srv.seen(); ifRanges[0] != "" || ifRanges[1] != `"v1"` || ranges[1] != "bytes=4-" {
		t.Errorf("Range %q, If-Range %q", ranges, ifRanges)
	}
	if string(content(t, tr)) != "0123456789" {
		t.Errorf("file %q", content(t, tr))
	}
}

// TestAttemptFailures: what ends an attempt, and whether it is retried.
func TestAttemptFailures(t *testing.T) {
	hookErr := errors.New("the hook says no")
	tests := []struct {
		name  string
		srv   faults
		setup func(*Transfer)
		retry bool
		is    func(error) bool
	}{
		{"not found", faults{status: http.StatusNotFound}, nil, false,
			func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.StatusCode == 404 }},
		{"unavailable", faults{status: http.StatusServiceUnavailable}, nil, true,
			func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.Retryable() }},
		{"stalled", faults{stallAfter: 10, stallFor: time.Second}, func(tr *Transfer) { tr.StallTimeout = 100 * time.Millisecond }, true,
			func(err error) bool { return errors.Is(err, ErrStalled) }},
		{"refused by OnResponse", faults{}, func(tr *Transfer) { tr.OnResponse = func(int64) error { return hookErr } }, false,
			func(err error) bool { return errors.Is(err, hookErr) }},
		{"refused by OnData", faults{}, func(tr *Transfer) { tr.OnData = func() error { return hookErr } }, false,
			func(err error) bool { return errors.Is(err, hookErr) }},
		{"the file cannot be written", faults{}, func(tr *Transfer) { tr.File.Close() }, false,
			func(err error) bool { var we *WriteError; return errors.As(err, &we) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(&server{faults: tt.srv, data: []byte("some bytes of a file")})
			defer hs.Close()
			tr := newTransfer(t, hs.URL)
			if tt.setup != nil {
				tt.setup(tr)
			}
			retry, err := tr.Attempt(t.Context())
			if err == nil || retry != tt.retry || !tt.is(err) {
				t.Errorf("%v (retry %v), want retry %v and the right error", err, retry, tt.retry)
			}
		})
	}
}
