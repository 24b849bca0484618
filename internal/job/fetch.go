package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/version"
)

// Fetcher downloads images given as http(s) URLs, within the limits of the
// configuration: a time limit for the whole download, a byte cap enforced
// while streaming, a capped number of redirects, and, unless private
// addresses are allowed, only public IP addresses — checked on the address
// actually dialled, so a DNS answer that changes between check and use
// cannot reach an internal service. A Fetcher is safe for concurrent use.
type Fetcher struct {
	client       *http.Client
	timeout      time.Duration
	maxBytes     int64
	maxRedirects int
	allowPrivate bool
}

// NewFetcher returns a Fetcher configured by IMAGE_FETCH_TIMEOUT,
// IMAGE_FETCH_MAX_REDIRECTS, ALLOW_PRIVATE_IMAGE_URLS and MAX_IMAGE_BYTES.
// It ignores proxy settings: the address check must see the real peer.
func NewFetcher(c *config.Config) *Fetcher {
	f := &Fetcher{
		timeout:      c.ImageFetchTimeout,
		maxBytes:     c.MaxImageBytes,
		maxRedirects: c.ImageFetchMaxRedirects,
		allowPrivate: c.AllowPrivateImageURLs,
	}
	f.client = &http.Client{Transport: GuardedTransport(f.allowPrivate), CheckRedirect: f.checkRedirect}
	return f
}

// WithHTTPClient returns a copy of f that sends its requests with hc (tests
// use it to reach an httptest server with its own transport). The redirect
// cap still applies; the address check is the job of hc's dialer.
func (f *Fetcher) WithHTTPClient(hc *http.Client) *Fetcher {
	g := *f
	c := *hc
	c.CheckRedirect = f.checkRedirect
	g.client = &c
	return &g
}

// errTooManyRedirects is returned by checkRedirect.
type errTooManyRedirects struct{ n int }

func (e *errTooManyRedirects) Error() string { return fmt.Sprintf("stopped after %d redirects", e.n) }

func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.maxRedirects {
		return &errTooManyRedirects{n: f.maxRedirects}
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirected to a %s URL", req.URL.Scheme)
	}
	return nil
}

// blockedAddrError is a refused dial.
type blockedAddrError struct {
	addr netip.Addr
	kind string
}

func (e *blockedAddrError) Error() string {
	return fmt.Sprintf("address %s is %s, which image URLs may not reach", e.addr, e.kind)
}

// checkDial runs after name resolution, just before connecting: it refuses
// any address that is not public unless private ones are allowed.
func (f *Fetcher) checkDial(network, address string, _ syscall.RawConn) error {
	if f.allowPrivate {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dialling %q: not an IP address", address)
	}
	if kind := nonPublic(ip); kind != "" {
		return &blockedAddrError{addr: ip, kind: kind}
	}
	return nil
}

// nonPublic says what kind of non-public address ip is, or "" for a public
// one.
func nonPublic(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap()
	switch {
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local address"
	case ip.IsUnspecified():
		return "an unspecified address"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, p := range reservedPrefixes() {
		if p.Contains(ip) {
			return "a reserved address (" + p.String() + ")"
		}
	}
	return ""
}

// reservedPrefixes are special-purpose ranges (RFC 6890 and successors) that
// the netip predicates do not cover.
func reservedPrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("240.0.0.0/4"),  // includes broadcast
		netip.MustParsePrefix("64:ff9b::/96"), // NAT64: may embed a private IPv4
		netip.MustParsePrefix("64:ff9b:1::/48"),
		netip.MustParsePrefix("100::/64"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2002::/16"), // 6to4: may embed a private IPv4
		netip.MustParsePrefix("fec0::/10"),
	}
}

// redact shows a URL without its query, fragment and credentials (presigned
// URLs carry signatures in the query).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the image URL"
	}
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// Fetch downloads rawURL. Errors are IMAGE_FETCH_FAILED, or IMAGE_TOO_LARGE
// when the body exceeds MAX_IMAGE_BYTES; both keep the cause.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	shown := redact(rawURL)
	fail := func(err error, msg, hint string) error {
		e := apperr.Wrap(apperr.ImageFetchFailed, err, msg, hint)
		e.Field = "image"
		return e
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fail(err, "the image URL cannot be requested: "+shown, "give a full http(s) URL")
	}
	req.Header.Set("User-Agent", "wan22-worker/"+version.Version)
	req.Header.Set("Accept", "image/png, image/jpeg, image/webp;q=0.9, */*;q=0.5")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.classify(ctx, err, shown, fail)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		hint := "check that the URL is right and reachable from the worker without logging in"
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = "the URL needs authorisation or has expired; use a public or freshly presigned URL"
		case http.StatusNotFound, http.StatusGone:
			hint = "nothing is at that URL; check it, or upload the image again"
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			hint = "the image server is busy; retry later or send the image as base64"
		}
		return nil, fail(fmt.Errorf("status %s", resp.Status),
			fmt.Sprintf("downloading the image from %s failed: HTTP %s", shown, resp.Status), hint)
	}
	if resp.ContentLength > f.maxBytes {
		return nil, f.tooLarge(resp.ContentLength)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, f.classify(ctx, err, shown, fail)
	}
	if int64(len(data)) > f.maxBytes {
		return nil, f.tooLarge(-1)
	}
	return data, nil
}

func (f *Fetcher) tooLarge(n int64) error {
	msg := fmt.Sprintf("the image at the URL is larger than %d bytes (MAX_IMAGE_BYTES)", f.maxBytes)
	if n > 0 {
		msg = fmt.Sprintf("the image at the URL is %d bytes; this server accepts at most %d (MAX_IMAGE_BYTES)", n, f.maxBytes)
	}
	return apperr.Field(apperr.ImageTooLarge, "image", msg,
		"send a smaller file: downscale it (2048 pixels on the long side is plenty) or re-encode it as JPEG")
}

// classify turns a transport error into a message with a hint.
func (f *Fetcher) classify(ctx context.Context, err error, shown string, fail func(error, string, string) error) error {
	var blocked *blockedAddrError
	var redirects *errTooManyRedirects
	var dns *net.DNSError
	switch {
	case errors.As(err, &blocked):
		return fail(err, fmt.Sprintf("the image URL %s resolves to %s, %s", shown, blocked.addr, blocked.kind),
			"use a publicly reachable URL; a trusted deployment may set ALLOW_PRIVATE_IMAGE_URLS=true")
	case errors.As(err, &redirects):
		return fail(err, fmt.Sprintf("downloading the image from %s %s", shown, redirects.Error()),
			"give the final URL of the image, or raise IMAGE_FETCH_MAX_REDIRECTS on the server")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fail(err, fmt.Sprintf("downloading the image from %s timed out after %s", shown, f.timeout),
			"use a faster image host or a smaller image, send it as base64, or raise IMAGE_FETCH_TIMEOUT on the server")
	case ctx.Err() != nil:
		return fail(ctx.Err(), "downloading the image was cancelled", "the job was cancelled; nothing to change")
	case errors.As(err, &dns):
		return fail(err, fmt.Sprintf("the host of the image URL %s cannot be resolved", shown),
			"check the host name; the worker must be able to resolve it")
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return fail(err, fmt.Sprintf("downloading the image from %s failed: %s", shown, strings.TrimSpace(msg)),
		"check that the URL is reachable from the worker, or send the image as base64")
}
