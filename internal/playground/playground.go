// Package playground is the browser page that `serve --api` serves at `/`:
// plain HTML, CSS and JavaScript modules, embedded in the binary, that make a
// video through the local API (/run, /stream, /status, /cancel) without
// writing code. The page itself needs no token; every API call it makes
// sends the one the user gives it.
package playground

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is the path under which the page's scripts and styles are served.
const Prefix = "/playground/"

// csp allows the page its own scripts, styles and API only. Images and videos
// may come from elsewhere: an image URL the user types, and a video_url or
// last_frame_url that S3 delivery returns.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data: blob: http: https:; media-src 'self' data: blob: http: https:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// Files returns the page's files: index.html and the assets it loads.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("playground: the embedded static folder is missing: " + err.Error()) // fixed at build time
	}
	return sub
}

// Serves reports whether r is for the page: GET or HEAD of / or of a file
// under Prefix.
func Serves(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, Prefix)
}

// Handler serves index.html at / and the assets under Prefix.
func Handler() http.Handler {
	files := http.FileServerFS(Files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		p := r.URL.Path
		if p == "/" {
			http.ServeFileFS(w, r, Files(), "index.html")
			return
		}
		if p == Prefix+"index.html" || strings.HasSuffix(p, "/") {
			http.NotFound(w, r) // no second copy of the page, no directory listings
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimPrefix(p, Prefix[:len(Prefix)-1])
		files.ServeHTTP(w, r2)
	})
}
