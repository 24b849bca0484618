package api

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/config"
)

// Options configure the local API.
type Options struct {
	Addr          string        // API_ADDR
	Token         string        // API_TOKEN; when set, every route but /openapi.json needs it
	AllowInsecure bool          // API_ALLOW_INSECURE: allow a non-loopback Addr without a token
	QueueSize     int           // API_QUEUE_SIZE: queued jobs before /run answers 429; default 16
	ResultTTL     time.Duration // API_RESULT_TTL: finished jobs stay readable this long; default 1h
	MaxBodyBytes  int64         // API_MAX_BODY_BYTES: larger requests get 413; default 40 MiB
	JobTimeout    time.Duration // JOB_TIMEOUT: execution timeout when a job's policy gives none; default 30m
	ShutdownGrace time.Duration // SHUTDOWN_GRACE: on shutdown, how long the running job may finish; default 25s

	// WorkerID is reported as workerId; default "local".
	WorkerID string
	// RunsyncWait is /runsync's wait when ?wait= is absent; default 90 s.
	RunsyncWait time.Duration
	// WebhookAttempts, WebhookInterval and WebhookTimeout shape webhook
	// delivery: RunPod tries 3 times, 10 s apart. Defaults 3, 10 s, 10 s.
	WebhookAttempts int
	WebhookInterval time.Duration
	WebhookTimeout  time.Duration
	// WebhookAllowPrivate allows webhook URLs that resolve to loopback,
	// private or link-local addresses.
	WebhookAllowPrivate bool
	// Now is the clock for job times and expiry; default time.Now.
	Now func() time.Time
	// Transport carries webhook calls; default: a dialer that enforces
	// WebhookAllowPrivate.
	Transport http.RoundTripper
}

// OptionsFrom takes the local API's settings from the configuration. Webhooks
// may target private addresses when ALLOW_PRIVATE_IMAGE_URLS is set or the
// API itself listens on loopback only (then every caller is local anyway).
func OptionsFrom(c *config.Config) Options {
	return Options{
		Addr:                c.APIAddr,
		Token:               c.APIToken,
		AllowInsecure:       c.APIAllowInsecure,
		QueueSize:           c.APIQueueSize,
		ResultTTL:           c.APIResultTTL,
		MaxBodyBytes:        c.APIMaxBodyBytes,
		JobTimeout:          c.JobTimeout,
		ShutdownGrace:       c.ShutdownGrace,
		WorkerID:            c.RunPodPodID,
		WebhookAllowPrivate: c.AllowPrivateImageURLs || isLoopbackAddr(c.APIAddr),
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
	o.QueueSize = orDefault(o.QueueSize, 16)
	o.ResultTTL = orDefault(o.ResultTTL, time.Hour)
	o.MaxBodyBytes = orDefault(o.MaxBodyBytes, 40<<20)
	o.JobTimeout = orDefault(o.JobTimeout, 30*time.Minute)
	o.ShutdownGrace = orDefault(o.ShutdownGrace, 25*time.Second)
	o.WorkerID = orDefault(o.WorkerID, "local")
	o.RunsyncWait = orDefault(o.RunsyncWait, 90*time.Second)
	o.WebhookAttempts = orDefault(o.WebhookAttempts, 3)
	o.WebhookInterval = orDefault(o.WebhookInterval, 10*time.Second)
	o.WebhookTimeout = orDefault(o.WebhookTimeout, 10*time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Transport == nil {
		o.Transport = webhookTransport(o.WebhookAllowPrivate)
	}
	return o
}

// CheckAddr refuses a listen address reachable from other machines unless a
// token protects it or insecure mode is asked for explicitly.
func CheckAddr(addr, token string, allowInsecure bool) error {
	if token != "" || allowInsecure || isLoopbackAddr(addr) {
		return nil
	}
	return fmt.Errorf("API_ADDR=%s is reachable from other machines and API_TOKEN is not set: "+
		"set API_TOKEN (clients then send Authorization: Bearer <token>), listen on 127.0.0.1, "+
		"or set API_ALLOW_INSECURE=1 if the network is trusted", addr)
}

// isLoopbackAddr reports whether host:port listens on loopback only.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
