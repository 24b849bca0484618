package integration

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
)

var updateScreenshot = flag.Bool("update-screenshot", false,
	"TestPlayground: also write its 1280-px screenshot to docs/playground.png (make playground-screenshot)")

// chromium finds a Chromium or Chrome binary: $CHROME_PATH, then the usual
// names on PATH. The test skips without one.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (install Debian's chromium package: scripts/setup-test-deps.sh does; or set CHROME_PATH)")
	return ""
}

// screenshotDir is where the screenshots go: $PLAYGROUND_SCREENSHOTS when
// set (to keep them, e.g. as CI artifacts), else the test's temporary folder.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PLAYGROUND_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// page drives one headless browser tab.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string // screenshots

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newPage(t *testing.T, chrome, base string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	p := &page{t: t, ctx: ctx, base: base, dir: screenshotDir(t)}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.console {
			if m.IsException() {
				t.Errorf("page exception: %s at %s:%d", m.Text, m.URL, m.Line)
			} else if t.Failed() {
				t.Logf("console %s (%s)", m, m.URL)
			}
		}
		t.Logf("screenshots in %s", p.dir)
	})
	return p
}

// do runs actions, failing the test with what was being done.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.shot("failed")
		p.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// wait polls a JavaScript expression until it is truthy and returns its value.
func wait[T any](p *page, what, expr string, timeout time.Duration) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		p.shot("failed")
		p.t.Fatalf("waiting for %s (%s): %v\nstatus: %s\nerror box: %s", what, expr, err,
			evalOr(p, `document.getElementById('status').textContent`), evalOr(p, `document.getElementById('error').innerText`))
	}
	return v
}

func evalOr(p *page, expr string) string {
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		return err.Error()
	}
	return v
}

// shot saves a screenshot of the whole page as name.png and returns its path.
func (p *page) shot(name string) string {
	b, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// setValue sets an input's value as typing would, firing input and change.
func (p *page) setValue(id, value string) {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = %q;
		e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); return true })()`, id, value)
	eval[bool](p, js)
}

// TestPlayground makes videos with the playground page in headless Chromium,
// against the real `serve --api` (with an API token) and the fake ComfyUI:
// the token prompt, the preview's size against the video's, progress through
// the stages, the <video> playing the job's duration, continuing from the last
// frame, a bad length shown next to the length field, cancelling a slow job,
// the history, a phone-width layout, and no request leaving the server.
func TestPlayground(t *testing.T) {
	needFFmpeg(t)
	chrome := chromium(t)
	const token = "playground-test-token"
	// 120 ms a sampler step: a 4-step job samples for about half a second, and
	// the 40-step job to cancel for about five.
	fake := fakeComfy(t, comfytest.Options{StepDelay: 120 * time.Millisecond, NodeDelay: 5 * time.Millisecond})
	addr := freeAddr(t)
	startWorker(t, []string{"COMFY_URL=" + fake.URL, "API_ADDR=" + addr, "OUTPUT_DIR=" + t.TempDir(),
		"API_TOKEN=" + token}, "serve", "--api")
	base := "http://" + addr
	waitHTTP(t, base+"/health")

	img := filepath.Join(t.TempDir(), "input.png")
	if err := os.WriteFile(img, comfytest.GradientPNG(320, 180), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newPage(t, chrome, base)

	// The page loads without the token.
	p.do("loading the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#submit"))
	p.do("picking the image", chromedp.SetUploadFiles("#file", []string{img}))
	previewSize := wait[string](p, "the preview", `document.getElementById('frame-info').dataset.size`, 10*time.Second)
	if previewSize != "1104x624" { // docs/api.md: a 16:9 image becomes 1104×624 by default
		t.Errorf("preview size = %s, want 1104x624", previewSize)
	}
	p.setValue("prompt", "a gradient drifting slowly, cinematic lighting")
	p.setValue("length", "9")
	p.setValue("steps", "4")
	if s := eval[string](p, `document.getElementById('seconds').value`); s != "0.56" {
		t.Errorf("9 frames at 16 fps shows %s s, want 0.56", s)
	}

	// Submitting asks for the token once; the job then runs.
	p.do("submitting", chromedp.Click("#submit"))
	wait[bool](p, "the token dialog", `document.getElementById('token-dialog').open`, 10*time.Second)
	p.do("giving the token", chromedp.SendKeys("#token", token), chromedp.Click("#token-ok"))

	type videoState struct {
		ReadyState int      `json:"readyState"`
		Duration   float64  `json:"duration"`
		Width      int      `json:"width"`
		Height     int      `json:"height"`
		Stages     []string `json:"stages"`
		Bar        float64  `json:"bar"`
	}
	const videoJS = `(() => { const v = document.getElementById('video');
		if (document.getElementById('result').hidden || v.readyState < 2) return null;
		return {readyState: v.readyState, duration: v.duration, width: v.videoWidth, height: v.videoHeight,
			stages: [...document.querySelectorAll('#stages li.seen')].map(li => li.dataset.stage),
			bar: document.getElementById('bar').value}; })()`
	v := wait[videoState](p, "the video", videoJS, 30*time.Second)
	if want := 9.0 / 16; v.Duration < want-0.07 || v.Duration > want+0.07 {
		t.Errorf("video duration = %.3f s, want %.3f (9 frames at 16 fps)", v.Duration, want)
	}
	if got := fmt.Sprintf("%dx%d", v.Width, v.Height); got != previewSize {
		t.Errorf("video is %s, the preview said %s", got, previewSize)
	}
	for _, st := range []string{"uploading", "sampling_high", "sampling_low", "encoding_video"} {
		if !slices.Contains(v.Stages, st) {
			t.Errorf("the progress never showed %s; it showed %v", st, v.Stages)
		}
	}
	if v.Bar != 100 {
		t.Errorf("progress bar at %v after the video, want 100", v.Bar)
	}
	if got := eval[string](p, `localStorage.getItem('wan22.token')`); got != token {
		t.Errorf("stored token = %q", got)
	}
	seed := eval[string](p, `document.getElementById('result-seed').textContent`)
	if seed == "" || seed != eval[string](p, `document.getElementById('seed').value`) {
		t.Errorf("result seed %q differs from the form's seed", seed)
	}
	resultShot := p.shot("1-result")

	// Continue from the last frame: a second job whose image is the first
	// video's last frame (so the preview shows an image of the video's size).
	p.do("continuing", chromedp.Click("#continue"))
	wait[bool](p, "the second video", `(() => { const h = JSON.parse(localStorage.getItem('wan22.history') || '[]');
		return h.length === 2 && h[0].status === 'COMPLETED' && document.getElementById('video').readyState >= 2; })()`, 30*time.Second)
	if info := eval[string](p, `document.getElementById('frame-info').textContent`); !strings.HasPrefix(info, "Image 1104×624 ") {
		t.Errorf("after continuing, the image is not the last frame: %q", info)
	}
	if n := eval[int](p, `document.querySelectorAll('#history .history-item').length`); n != 2 {
		t.Errorf("history shows %d jobs, want 2", n)
	}

	// A bad length: the worker's hint appears next to the length input.
	p.setValue("length", "80")
	p.do("submitting a bad length", chromedp.Click("#submit"))
	hint := wait[string](p, "the length error", `(() => { const e = document.getElementById('err-length');
		return !e.hidden && e.closest('.field').contains(document.getElementById('length')) && e.textContent; })()`, 30*time.Second)
	if !strings.Contains(hint, "INVALID_INPUT") || !strings.Contains(hint, "use 77 or 81") {
		t.Errorf("length error = %q, want the code and the hint \"use 77 or 81\"", hint)
	}
	if got := eval[string](p, `document.getElementById('length').getAttribute('aria-invalid')`); got != "true" {
		t.Errorf("length aria-invalid = %q", got)
	}
	p.shot("2-bad-length")

	// Cancel a slow job once it samples.
	p.setValue("length", "9")
	p.setValue("steps", "40")
	p.do("submitting a slow job", chromedp.Click("#submit"))
	if got := eval[string](p, `document.getElementById('err-length').hidden ? 'hidden' : 'shown'`); got != "hidden" {
		t.Errorf("the length error is still %s after a new submit", got)
	}
	wait[bool](p, "sampling", `document.querySelector('#stages li[data-stage=sampling_high].seen') !== null`, 20*time.Second)
	p.shot("3-running")
	p.do("cancelling", chromedp.Click("#cancel"))
	wait[bool](p, "the cancelled state", `document.getElementById('status').dataset.status === 'CANCELLED' &&
		!document.getElementById('submit').disabled`, 20*time.Second)
	cancelledID := eval[string](p, `JSON.parse(localStorage.getItem('wan22.history'))[0].id`)
	if st := apiStatus(t, base, token, cancelledID); st != "CANCELLED" {
		t.Errorf("the server says the cancelled job is %s", st)
	}
	wait[bool](p, "the history", `JSON.parse(localStorage.getItem('wan22.history'))[0].status === 'CANCELLED'`, 5*time.Second)
	p.shot("4-cancelled")

	// Re-opening the first job from the history shows its video again.
	p.do("re-opening the first job", chromedp.Click("#history li:last-child .history-item"))
	wait[videoState](p, "the re-opened video", videoJS, 10*time.Second)

	// Every request stayed on this server (no CDN).
	if off := eval[[]string](p, `performance.getEntriesByType('resource').map(e => e.name)
		.filter(u => !u.startsWith(location.origin + '/') && !/^(blob|data):/.test(u))`); len(off) > 0 {
		t.Errorf("the page loaded from elsewhere: %v", off)
	}

	// Phone width: nothing wider than the screen.
	p.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(), chromedp.WaitVisible("#submit"))
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at 390 px the page is %d px wide", w)
	}
	p.shot("5-phone")

	if *updateScreenshot && resultShot != "" {
		b, err := os.ReadFile(resultShot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "playground.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// apiStatus is a job's status through the API.
func apiStatus(t *testing.T, base, token, id string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/status/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Status
}
