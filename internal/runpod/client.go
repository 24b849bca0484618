package runpod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// client makes the calls to RunPod with the headers the SDK sends: the raw
// key as Authorization (no "Bearer"), Content-Type application/json, and a
// User-Agent naming the worker.
type client struct {
	http *http.Client
	key  string
	ua   string
}

func newClient(o Options) *client {
	return &client{http: &http.Client{Transport: o.Transport}, key: o.APIKey, ua: o.userAgent()}
}

func (c *client) request(ctx context.Context, method, url string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", c.key)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.ua)
	return req, nil
}

// get performs a GET and returns the status and up to limit bytes of body.
func (c *client) get(ctx context.Context, url string, limit int64) (int, http.Header, []byte, error) {
	req, err := c.request(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, resp.Header, nil, err
	}
	if int64(len(b)) > limit {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("response body over %d bytes", limit)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// postJob posts a job-done (or progress) body the way the SDK does: raw JSON
// text with Content-Type application/x-www-form-urlencoded and a "charset:
// utf-8" header. It returns the status and a short excerpt of the answer.
//
// The body is sent as the concatenation of parts, so that a large result is
// never copied into one buffer to be posted. jobID is sent as X-Request-ID,
// as the SDK does on job-done.
func (c *client) postJob(ctx context.Context, url, jobID string, parts ...[]byte) (int, string, error) {
	req, err := c.request(ctx, http.MethodPost, url, nil)
	if err != nil {
		return 0, "", err
	}
	body := func() io.Reader {
		rs := make([]io.Reader, len(parts))
		for i, p := range parts {
			rs[i] = bytes.NewReader(p)
		}
		return io.MultiReader(rs...)
	}
	for _, p := range parts {
		req.ContentLength += int64(len(p))
	}
	req.Body = io.NopCloser(body())
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body()), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header["charset"] = []string{"utf-8"} // lower-case as the SDK sends it
	if jobID != "" {
		req.Header.Set("X-Request-ID", jobID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // keep the connection reusable
	return resp.StatusCode, string(bytes.TrimSpace(b)), nil
}

// backoff is a jittered, capped exponential backoff.
type backoff struct {
	min, max time.Duration
	n        int
}

// next returns the wait before the next attempt: min·2ⁿ capped at max, times
// a random factor in [0.5, 1.5), never above max.
func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.n++
	j := time.Duration(float64(d) * (0.5 + rand.Float64()))
	return min(j, b.max)
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits d or until ctx is done; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isTransient reports whether a failed post may succeed when repeated:
// network errors, 5xx, 408 and 429.
func isTransient(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled)
	}
	return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}
