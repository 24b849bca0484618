// Package endpoint is a client of the RunPod Serverless endpoint API
// (https://api.runpod.ai/v2/<endpoint id>) and of the local API that
// `serve --api` serves with the same routes: run, runsync, status, stream
// and cancel. Requests carry `Authorization: Bearer <key>`; 429, 5xx answers
// and broken connections are retried with a jittered exponential backoff.
package endpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RunPodBase is the base URL of RunPod's endpoint API; an endpoint's is
// RunPodBase + "/" + its id.
const RunPodBase = "https://api.runpod.ai/v2"

// Job states.
const (
	InQueue    = "IN_QUEUE"
	InProgress = "IN_PROGRESS"
	Completed  = "COMPLETED"
	Failed     = "FAILED"
	Cancelled  = "CANCELLED"
	TimedOut   = "TIMED_OUT"
)

// Final reports whether a job in this state will not change any more.
func Final(state string) bool {
	switch state {
	case Completed, Failed, Cancelled, TimedOut:
		return true
	}
	return false
}

// Status is a job's status object.
type Status struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	DelayTime     int64           `json:"delayTime,omitempty"`
	ExecutionTime int64           `json:"executionTime,omitempty"`
	Output        json.RawMessage `json:"output,omitempty"`
	Error         string          `json:"error,omitempty"`
	WorkerID      string          `json:"workerId,omitempty"`
	Retries       int             `json:"retries,omitempty"`
}

// StreamChunk is one entry of a /stream answer.
type StreamChunk struct {
	Output json.RawMessage `json:"output"`
}

// Stream is a /stream answer: the updates since the last read.
type Stream struct {
	ID     string        `json:"id"`
	Status string        `json:"status"`
	Stream []StreamChunk `json:"stream"`
}

// Options configures a Client.
type Options struct {
	// Base is the endpoint's base URL: https://api.runpod.ai/v2/<id>, or a
	// local API's root (http://127.0.0.1:8000).
	Base string
	// Token is sent as "Authorization: Bearer <Token>" when set.
	Token string
	// Transport is the HTTP transport (nil: http.DefaultTransport).
	Transport http.RoundTripper
	// Attempts is how many times a request is tried in all (default 6).
	Attempts int
	// MinBackoff and MaxBackoff bound the wait between attempts (defaults
	// 500 ms and 10 s); a Retry-After header is obeyed within MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnRetry, when set, is told about each retry before its wait.
	OnRetry func(op string, attempt int, wait time.Duration, err error)
	// UserAgent names the client.
	UserAgent string
}

// Client calls one endpoint. It is safe for concurrent use.
type Client struct {
	o    Options
	http *http.Client
}

// New returns a client of the endpoint at o.Base.
func New(o Options) *Client {
	o.Base = strings.TrimRight(o.Base, "/")
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "wan22-worker-submit"
	}
	return &Client{o: o, http: &http.Client{Transport: o.Transport}}
}

// Base returns the endpoint's base URL.
func (c *Client) Base() string { return c.o.Base }

// Error is an answer of the API that is not a success, or a request that
// could not be made after every retry.
type Error struct {
	Op         string // "run", "status", ...
	StatusCode int    // 0 when no answer came
	Message    string // the answer's "error", or its body, or the transport error
	Err        error
}

func (e *Error) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("%s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.StatusCode, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Hint says what to do about the error.
func (e *Error) Hint() string {
	switch {
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		return "check the key: RUNPOD_API_KEY for --endpoint, API_TOKEN for --api-url"
	case e.StatusCode == http.StatusNotFound:
		return "the job is unknown to the endpoint: it may have expired (RunPod keeps results 30 min, the local API API_RESULT_TTL)"
	case e.StatusCode == http.StatusRequestEntityTooLarge:
		return "the request is too large: pass the image as a URL, or use a smaller image"
	case e.StatusCode == 0:
		return "check the address (--endpoint or --api-url) and the network"
	}
	return ""
}

// NotFound reports whether err is a 404 answer (an unknown or expired job).
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// Run queues a job: body is {"input": {...}, ...}.
func (c *Client) Run(ctx context.Context, body []byte) (*Status, error) {
	return c.status(ctx, "run", http.MethodPost, "/run", body)
}

// RunSync queues a job and waits up to wait for it (RunPod's /runsync).
func (c *Client) RunSync(ctx context.Context, body []byte, wait time.Duration) (*Status, error) {
	return c.status(ctx, "runsync", http.MethodPost, "/runsync?wait="+strconv.FormatInt(wait.Milliseconds(), 10), body)
}

// Status returns a job's status.
func (c *Client) Status(ctx context.Context, id string) (*Status, error) {
	return c.status(ctx, "status", http.MethodGet, "/status/"+url.PathEscape(id), nil)
}

// Cancel cancels a job and returns its status.
func (c *Client) Cancel(ctx context.Context, id string) (*Status, error) {
	return c.status(ctx, "cancel", http.MethodPost, "/cancel/"+url.PathEscape(id), nil)
}

// Stream returns the job's stream updates since the last read.
func (c *Client) Stream(ctx context.Context, id string) (*Stream, error) {
	var s Stream
	if err := c.do(ctx, "stream", http.MethodGet, "/stream/"+url.PathEscape(id), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (c *Client) status(ctx context.Context, op, method, path string, body []byte) (*Status, error) {
	var s Status
	if err := c.do(ctx, op, method, path, body, &s); err != nil {
		return nil, err
	}
	if s.ID == "" && s.Status == "" {
		return nil, &Error{Op: op, StatusCode: http.StatusOK, Message: "the answer has no id and no status"}
	}
	return &s, nil
}

// do makes the request, retrying what is worth retrying, and decodes a 2xx
// answer's JSON into v.
func (c *Client) do(ctx context.Context, op, method, path string, body []byte, v any) error {
	var last *Error
	for attempt := 1; ; attempt++ {
		wait, err := c.once(ctx, op, method, path, body, v)
		if err == nil {
			return nil
		}
		var e *Error
		if !errors.As(err, &e) {
			return err
		}
		last = e
		if wait < 0 || attempt >= c.o.Attempts || ctx.Err() != nil {
			return last
		}
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		if c.o.OnRetry != nil {
			c.o.OnRetry(op, attempt, wait, last)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return last
		case <-t.C:
		}
	}
}

// once makes one attempt. A failed attempt returns the wait before the next
// (0: the backoff's; -1: do not retry).
func (c *Client) once(ctx context.Context, op, method, path string, body []byte, v any) (time.Duration, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.o.Base+path, r)
	if err != nil {
		return -1, &Error{Op: op, Message: err.Error(), Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.o.UserAgent)
	if c.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, &Error{Op: op, Message: ctx.Err().Error(), Err: ctx.Err()}
		}
		// A refused or reset connection, a timeout: worth another try.
		return 0, &Error{Op: op, Message: err.Error(), Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, &Error{Op: op, StatusCode: resp.StatusCode, Message: "reading the answer: " + err.Error(), Err: err}
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, v); err != nil {
			return -1, &Error{Op: op, StatusCode: resp.StatusCode, Message: "the answer is not JSON: " + snippet(data), Err: err}
		}
		return 0, nil
	}
	e := &Error{Op: op, StatusCode: resp.StatusCode, Message: apiMessage(data)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return retryAfter(resp.Header.Get("Retry-After"), c.o.MaxBackoff), e
	}
	return -1, e
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.o.MinBackoff << (attempt - 1)
	if d > c.o.MaxBackoff || d <= 0 {
		d = c.o.MaxBackoff
	}
	// Full jitter over the upper half keeps concurrent clients apart.
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads a Retry-After of whole seconds (0 when absent or bad).
func retryAfter(h string, max time.Duration) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, max)
}

// apiMessage is the "error" of an API error answer, or the body's start.
func apiMessage(data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return e.Error
	}
	return snippet(data)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty answer)"
	}
	return s
}
