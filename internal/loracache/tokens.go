package loracache

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Tokens are the credentials for the hosts that need them. Each is sent only
// to its own host, over https, and never logged.
type Tokens struct {
	HuggingFace string // HF_TOKEN, for huggingface.co
	Civitai     string // CIVITAI_TOKEN, for civitai.com
}

// For returns the token to send to u: HuggingFace for https://huggingface.co,
// Civitai for https://civitai.com, "" for anything else (other hosts,
// subdomains, look-alikes, plain http, the CDNs downloads redirect to).
func (t Tokens) For(u *url.URL) string {
	if u == nil || u.Scheme != "https" {
		return ""
	}
	switch strings.TrimSuffix(strings.ToLower(u.Hostname()), ".") {
	case "huggingface.co":
		return t.HuggingFace
	case "civitai.com":
		return t.Civitai
	}
	return ""
}

// authorize sets or removes the Authorization header of req for its URL.
func (t Tokens) authorize(req *http.Request) {
	req.Header.Del("Authorization")
	if tok := t.For(req.URL); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
}

// maxRedirects caps the redirects of one request (Hugging Face and Civitai
// send one or two, to their CDNs).
const maxRedirects = 10

// checkRedirect caps redirects, keeps them on http(s), and decides the
// Authorization header again for the new host: a token never follows a
// redirect to another host.
func (t Tokens) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirected to a %s URL", req.URL.Scheme)
	}
	t.authorize(req)
	return nil
}

// String shows which tokens are set, never their values.
func (t Tokens) String() string {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "set"
	}
	return fmt.Sprintf("huggingface:%s civitai:%s", set(t.HuggingFace), set(t.Civitai))
}
