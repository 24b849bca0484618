package job

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// GuardedTransport returns an HTTP transport with the image URL guard for
// other downloads of URLs a job gives (LoRAs): unless allowPrivate, every
// connection is refused whose address, checked after name resolution, is not
// public. It ignores proxy settings, so that the check sees the real peer.
func GuardedTransport(allowPrivate bool) *http.Transport {
	f := &Fetcher{allowPrivate: allowPrivate}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: f.checkDial}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          8,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// BlockedAddress reports whether err (from a client using GuardedTransport)
// is a connection the guard refused, and if so the address and what kind it
// is ("a private address", …).
func BlockedAddress(err error) (addr, kind string, ok bool) {
	var b *blockedAddrError
	if !errors.As(err, &b) {
		return "", "", false
	}
	return b.addr.String(), b.kind, true
}

// RedactURL shows a URL without its query, fragment and credentials, for
// messages and logs (presigned URLs and some download links carry secrets in
// the query).
func RedactURL(raw string) string { return redact(raw) }
