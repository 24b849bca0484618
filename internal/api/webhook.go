package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/logging"
)

// errPrivateAddress refuses a webhook to a non-public address.
var errPrivateAddress = errors.New("webhook address is loopback, private or link-local (allowed only when the API listens on loopback or ALLOW_PRIVATE_IMAGE_URLS is set)")

// webhookTransport dials webhooks; unless allowPrivate, only public
// addresses (checked on the resolved address, so redirects and DNS tricks
// cannot reach the local network).
func webhookTransport(allowPrivate bool) http.RoundTripper {
	d := &net.Dialer{Timeout: 10 * time.Second}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !isPublic(ip) {
				return errPrivateAddress
			}
			return nil
		}
		t.Proxy = nil // a proxy would dial on our behalf, past the check
	}
	t.DialContext = d.DialContext
	return t
}

func isPublic(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	_, cgnat, _ := net.ParseCIDR("100.64.0.0/10")
	return !cgnat.Contains(ip)
}

// checkWebhook validates a webhook URL at submission.
func checkWebhook(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook %q is not an http(s) URL", s)
	}
	return nil
}

// deliver POSTs body to a webhook until it answers 2xx, up to
// WebhookAttempts times WebhookInterval apart, or ctx ends.
func (s *Server) deliver(ctx context.Context, jobID, hook string, body []byte) {
	log := logging.WithJob(s.log, jobID).With("webhook", redactURL(hook))
	c := &http.Client{Transport: s.o.Transport, Timeout: s.o.WebhookTimeout}
	for attempt := 1; attempt <= s.o.WebhookAttempts; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
		if err != nil {
			log.Warn("webhook not delivered: bad URL", "err", err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "wan22-worker")
		resp, err := c.Do(req)
		status := 0
		if err == nil {
			status = resp.StatusCode
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if status >= 200 && status <= 299 {
				log.Debug("webhook delivered", "attempt", attempt)
				return
			}
		}
		if errors.Is(err, errPrivateAddress) {
			log.Warn("webhook not delivered", "err", err)
			return
		}
		log.Warn("webhook delivery failed", "attempt", attempt, "status", status, "err", errString(err))
		if attempt < s.o.WebhookAttempts {
			t := time.NewTimer(s.o.WebhookInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
	log.Error("webhook not delivered after every attempt", "attempts", s.o.WebhookAttempts)
}

// redactURL drops credentials and the query from a URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
