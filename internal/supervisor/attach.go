package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// Attached is a ComfyUI that runs elsewhere (COMFY_URL): no process, no
// restarts, no log; only the readiness check. Its directories are not the
// worker's, so RemoveInput and RemoveOutput do nothing.
type Attached struct {
	url          string
	startTimeout time.Duration
	poll         time.Duration
	log          *slog.Logger
	http         *http.Client
	inc          *Incarnation
	readyOnce    sync.Once
}

// Attach returns a Server for the ComfyUI at rawURL (http or https, with an
// optional path prefix). Start waits up to startTimeout for it to answer.
func Attach(rawURL string, startTimeout time.Duration, log *slog.Logger) (*Attached, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, apperr.Errorf(apperr.ComfyUnavailable, "set COMFY_URL to ComfyUI's base URL, e.g. http://127.0.0.1:8188",
			"COMFY_URL=%q is not an http(s) base URL", rawURL)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if startTimeout <= 0 {
		startTimeout = 5 * time.Minute
	}
	base := strings.TrimRight(u.String(), "/")
	ready := make(chan struct{})
	return &Attached{
		url:          base,
		startTimeout: startTimeout,
		poll:         250 * time.Millisecond,
		log:          log.With("component", "supervisor", "attached", base),
		// Unlike the loopback client, the environment's proxy applies.
		http: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}},
		inc:  &Incarnation{n: 1, url: base, ready: ready},
	}, nil
}

// Start waits until the server answers /system_stats, at most the start
// timeout: *TimeoutError or *CancelledError (wrapped) otherwise.
func (a *Attached) Start(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, a.startTimeout)
	defer cancel()
	err := a.wait(tctx)
	switch {
	case err == nil:
		a.log.Info("attached to ComfyUI")
		a.readyOnce.Do(func() { close(a.inc.ready) })
		return nil
	case ctx.Err() != nil:
		return userError(&CancelledError{Err: ctx.Err()}, a.url)
	}
	return apperr.Wrap(apperr.ComfyUnavailable, &TimeoutError{After: a.startTimeout},
		fmt.Sprintf("ComfyUI at %s did not answer /system_stats within %s (%v)", a.url, a.startTimeout, err),
		"check that ComfyUI runs at COMFY_URL and is reachable from the worker, or unset COMFY_URL to let the worker start it")
}

// wait polls until a probe succeeds or ctx ends; it returns the last probe
// error then.
func (a *Attached) wait(ctx context.Context) error {
	tick := time.NewTicker(a.poll)
	defer tick.Stop()
	for {
		err := probe(ctx, a.http, a.url)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// URL returns COMFY_URL without a trailing slash.
func (a *Attached) URL() string { return a.url }

// Ready waits until the server answers /system_stats.
func (a *Attached) Ready(ctx context.Context) error {
	if err := a.wait(ctx); err != nil {
		return apperr.Wrap(apperr.ComfyUnavailable, ctx.Err(), fmt.Sprintf("ComfyUI at %s is not answering: %v", a.url, err),
			"check the server at COMFY_URL")
	}
	return nil
}

// Current returns a handle whose Done never closes: an attached server's
// crash shows as failed requests, not as a process exit.
func (a *Attached) Current() *Incarnation { return a.inc }

// Healthy is always true: the worker cannot replace a server it did not start.
func (a *Attached) Healthy() (bool, string) { return true, "" }

// LogTail is empty: the server's output is not the worker's.
func (a *Attached) LogTail() string { return "" }

// Crashes is nil: there is no process to watch.
func (a *Attached) Crashes() <-chan CrashEvent { return nil }

// RemoveInput does nothing: the input directory belongs to the server.
func (a *Attached) RemoveInput(string) error { return nil }

// RemoveOutput does nothing: the output directory belongs to the server.
func (a *Attached) RemoveOutput(string, string) error { return nil }

// Stop does nothing: the server is not the worker's to stop.
func (a *Attached) Stop(context.Context) error { return nil }
