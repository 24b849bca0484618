package runpod

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/version"
)

// Options configure the worker loop. The URL templates and ids are the
// platform's (RUNPOD_* variables); the rest are tunables whose zero value
// means the default noted on each field.
type Options struct {
	GetJobURL     string // RUNPOD_WEBHOOK_GET_JOB: job-take template ($ID, $RUNPOD_POD_ID → worker id)
	PostOutputURL string // RUNPOD_WEBHOOK_POST_OUTPUT: job-done template ($RUNPOD_POD_ID → worker id, $ID → job id)
	PostStreamURL string // RUNPOD_WEBHOOK_POST_STREAM: job-stream template (kept for completeness; results are not streamed)
	PingURL       string // RUNPOD_WEBHOOK_PING: heartbeat template ($ID, $RUNPOD_POD_ID → worker id)
	PingInterval  time.Duration
	APIKey        string // RUNPOD_AI_API_KEY, sent raw as Authorization
	PodID         string // RUNPOD_POD_ID; a random id is used when empty (and pings are skipped)
	EndpointID    string // RUNPOD_ENDPOINT_ID (logging only)
	RefreshWorker bool   // REFRESH_WORKER: stopPod on every result, then exit
	ShutdownGrace time.Duration
	JobTimeout    time.Duration

	// TakeTimeout bounds one job-take long poll; it must stay above the
	// platform's hold (the SDK allows 90 s). Default 120 s.
	TakeTimeout time.Duration
	// StopPollTimeout bounds one job-stop long poll. Default 100 s.
	StopPollTimeout time.Duration
	// StopPollMinInterval spaces job-stop polls that return at once. Default 1 s.
	StopPollMinInterval time.Duration
	// IdlePause spaces job-takes that return no job faster than this (a
	// server that does not long-poll must not cause a hot loop). Default 200 ms.
	IdlePause time.Duration
	// RetryMin and RetryMax bound the jittered exponential backoff after a
	// failed take or result post. Defaults 500 ms and 30 s.
	RetryMin, RetryMax time.Duration
	// RateLimitWait is the least wait after a 429 on job-take or job-stop, as
	// the SDK does. Default 5 s.
	RateLimitWait time.Duration
	// ResultWindow is how long a result post is retried at least, even when
	// the job's deadline has passed. Default 2 min.
	ResultWindow time.Duration
	// PostTimeout bounds one result post attempt. Default 2 min.
	PostTimeout time.Duration
	// ProgressInterval is the least gap between two progress posts of a job;
	// updates in between are coalesced to the latest. Default 1 s.
	ProgressInterval time.Duration
	// ProgressTimeout bounds one progress post. Default 5 s.
	ProgressTimeout time.Duration
	// ProgressKeepAlive repeats a job's latest progress, with the elapsed
	// time, when nothing new was posted for this long, so that RunPod's
	// console shows life through a long silent stage. Default 5 s.
	ProgressKeepAlive time.Duration
	// AbandonAfter is how long a handler may take to return once its job's
	// context is done (stop, timeout, shutdown) before the worker gives up on
	// it, posts an error with stopPod and exits. Default 15 s.
	AbandonAfter time.Duration
	// MaxJobBytes caps a job-take body. Default 64 MiB.
	MaxJobBytes int64
	// SmallResultBytes: a result larger than this that RunPod refuses with a
	// 4xx is reported as OUTPUT_TOO_LARGE. Default 1 MiB.
	SmallResultBytes int
	// Version is sent as runpod_version on pings and in the User-Agent.
	// Default: the build's version.
	Version string
	// Transport carries every call to RunPod. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// OptionsFrom takes the RunPod settings from the configuration.
func OptionsFrom(c *config.Config) Options {
	return Options{
		GetJobURL:     c.RunPodGetJobURL,
		PostOutputURL: c.RunPodPostOutputURL,
		PostStreamURL: c.RunPodPostStreamURL,
		PingURL:       c.RunPodPingURL,
		PingInterval:  c.RunPodPingInterval,
		APIKey:        c.RunPodAPIKey,
		PodID:         c.RunPodPodID,
		EndpointID:    c.RunPodEndpointID,
		RefreshWorker: c.RefreshWorker,
		ShutdownGrace: c.ShutdownGrace,
		JobTimeout:    c.JobTimeout,
	}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (o Options) withDefaults() Options {
	o.PingInterval = orDefault(o.PingInterval, 10*time.Second)
	o.ShutdownGrace = orDefault(o.ShutdownGrace, 25*time.Second)
	o.JobTimeout = orDefault(o.JobTimeout, 30*time.Minute)
	o.TakeTimeout = orDefault(o.TakeTimeout, 120*time.Second)
	o.StopPollTimeout = orDefault(o.StopPollTimeout, 100*time.Second)
	o.StopPollMinInterval = orDefault(o.StopPollMinInterval, time.Second)
	o.IdlePause = orDefault(o.IdlePause, 200*time.Millisecond)
	o.RetryMin = orDefault(o.RetryMin, 500*time.Millisecond)
	o.RetryMax = orDefault(o.RetryMax, 30*time.Second)
	o.RateLimitWait = orDefault(o.RateLimitWait, 5*time.Second)
	o.ResultWindow = orDefault(o.ResultWindow, 2*time.Minute)
	o.PostTimeout = orDefault(o.PostTimeout, 2*time.Minute)
	o.ProgressInterval = orDefault(o.ProgressInterval, time.Second)
	o.ProgressTimeout = orDefault(o.ProgressTimeout, 5*time.Second)
	o.ProgressKeepAlive = orDefault(o.ProgressKeepAlive, 5*time.Second)
	o.AbandonAfter = orDefault(o.AbandonAfter, 15*time.Second)
	o.MaxJobBytes = orDefault(o.MaxJobBytes, 64<<20)
	o.SmallResultBytes = orDefault(o.SmallResultBytes, 1<<20)
	o.Version = orDefault(o.Version, version.Version)
	if o.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 8
		o.Transport = t
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.GetJobURL == "" {
		errs = append(errs, errors.New("RUNPOD_WEBHOOK_GET_JOB is not set"))
	}
	if o.PostOutputURL == "" {
		errs = append(errs, errors.New("RUNPOD_WEBHOOK_POST_OUTPUT is not set"))
	}
	return errors.Join(errs...)
}

// pingEnabled mirrors the SDK: pings need the key, the pod id and the URL.
func (o Options) pingEnabled() bool {
	return o.PingURL != "" && o.APIKey != "" && o.PodID != ""
}

// userAgent names the worker the way the SDK names itself.
func (o Options) userAgent() string {
	return "wan22-worker/" + o.Version + " (" + runtime.GOOS + "; " + runtime.GOARCH + ") Language/Go " + runtime.Version()
}

// randomID is the worker id used when RUNPOD_POD_ID is not set.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// --- URL templates (reference §1.3, Go recommendation) ----------------------

// WorkerURL expands a template addressed to the worker (job-take, ping):
// $RUNPOD_POD_ID first, then $ID, both with the worker id.
func WorkerURL(tmpl, workerID string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tmpl, "$RUNPOD_POD_ID", workerID), "$ID", workerID)
}

// JobURL expands a template addressed to a job (job-done, job-stream):
// $RUNPOD_POD_ID with the worker id first, then $ID with the job id.
func JobURL(tmpl, workerID, jobID string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tmpl, "$RUNPOD_POD_ID", workerID), "$ID", jobID)
}

// StopURL derives the job-stop URL from an expanded job-take URL by
// replacing /job-take/ with /job-stop/, keeping the query; "" when the take
// URL has no /job-take/ (the stop channel is then off).
func StopURL(takeURL string) string {
	if !strings.Contains(takeURL, "/job-take/") {
		return ""
	}
	return strings.Replace(takeURL, "/job-take/", "/job-stop/", 1)
}

// AppendQuery appends already-encoded "k=v" parameters with '?' or '&'
// depending on whether the URL already has a query. The template itself is
// never re-encoded.
func AppendQuery(u string, params ...string) string {
	if len(params) == 0 {
		return u
	}
	var b strings.Builder
	b.WriteString(u)
	switch {
	case strings.HasSuffix(u, "?") || strings.HasSuffix(u, "&"):
	case strings.Contains(u, "?"):
		b.WriteByte('&')
	default:
		b.WriteByte('?')
	}
	b.WriteString(strings.Join(params, "&"))
	return b.String()
}
