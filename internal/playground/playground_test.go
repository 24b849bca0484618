package playground_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/playground"
)

// allFiles returns every embedded file's text by name.
func allFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(playground.Files(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(playground.Files(), name)
		files[name] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if files["index.html"] == "" {
		t.Fatal("no index.html")
	}
	return files
}

// externalURL finds absolute and scheme-relative URLs. The one allowed is
// the SVG namespace, a name that nothing fetches.
var (
	externalURL = regexp.MustCompile(`(?i)(?:[a-z][a-z0-9+.-]*:)?//[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s"'<>)]*`)
	allowedURL  = map[string]bool{"http://www.w3.org/2000/svg": true}
)

// TestNoExternalURL: the page loads nothing from elsewhere: no CDN, no web
// fonts, no analytics. (The browser test also checks the requests it made.)
func TestNoExternalURL(t *testing.T) {
	for name, text := range allFiles(t) {
		for _, u := range externalURL.FindAllString(text, -1) {
			if !allowedURL[u] {
				t.Errorf("%s refers to %s", name, u)
			}
		}
		if strings.Contains(text, "@import") {
			t.Errorf("%s uses @import", name)
		}
	}
}

func TestExternalURLPatternFinds(t *testing.T) {
	for _, s := range []string{`<script src="https://cdn.example.com/x.js">`, `import x from "//esm.sh/lit"`,
		`url(http://fonts.gstatic.com/a.woff2)`} {
		if externalURL.FindString(s) == "" {
			t.Errorf("the pattern misses the URL in %s", s)
		}
	}
}

// reference finds the local files the page refers to: src and href
// attributes, module imports, CSS url().
var reference = regexp.MustCompile(`(?:\b(?:src|href)="([^"#]+)"|\bfrom "([^"]+)"|\burl\(([^)]+)\))`)

// TestReferencesExist: every file the page refers to is embedded, and every
// embedded file is used.
func TestReferencesExist(t *testing.T) {
	files := allFiles(t)
	used := map[string]bool{"index.html": true}
	for name, text := range files {
		for _, m := range reference.FindAllStringSubmatch(text, -1) {
			ref := m[1] + m[2] + m[3]
			if strings.HasPrefix(ref, "data:") || ref == "openapi.json" {
				continue // openapi.json is the API's own route
			}
			target := ""
			switch {
			case name == "index.html" && strings.HasPrefix(ref, "playground/"):
				target = strings.TrimPrefix(ref, "playground/")
			case strings.HasPrefix(ref, "./"):
				target = path.Join(path.Dir(name), ref)
			default:
				t.Errorf("%s refers to %q: use playground/<file> in index.html, ./<file> in modules", name, ref)
				continue
			}
			if _, ok := files[target]; !ok {
				t.Errorf("%s refers to %s, which is not embedded", name, ref)
			}
			used[target] = true
		}
	}
	for name := range files {
		if !used[name] {
			t.Errorf("%s is embedded but nothing refers to it", name)
		}
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(playground.Handler())
	defer srv.Close()
	cases := []struct {
		path, wantType string
		wantCode       int
	}{
		{"/", "text/html", 200},
		{"/playground/app.js", "text/javascript", 200},
		{"/playground/style.css", "text/css", 200},
		{"/playground/icon.svg", "image/svg+xml", 200},
		{"/playground/", "", 404},
		{"/playground/index.html", "", 404},
		{"/playground/nope.js", "", 404},
	}
	for _, c := range cases {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.wantCode {
			t.Errorf("GET %s = %d, want %d", c.path, resp.StatusCode, c.wantCode)
			continue
		}
		if c.wantCode != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.wantType) {
			t.Errorf("GET %s: Content-Type %q, want %s", c.path, ct, c.wantType)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") ||
			!strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
		if c.path == "/" && !strings.Contains(string(body), `<script type="module" src="playground/app.js">`) {
			t.Errorf("GET / is not the page:\n%.300s", body)
		}
	}
}

func TestServes(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/", true},
		{"HEAD", "/", true},
		{"GET", "/playground/app.js", true},
		{"POST", "/", false},
		{"GET", "/run", false},
		{"GET", "/status/x", false},
		{"GET", "/playgroundx", false},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if got := playground.Serves(r); got != c.want {
			t.Errorf("Serves(%s %s) = %v, want %v", c.method, c.path, got, c.want)
		}
	}
}
