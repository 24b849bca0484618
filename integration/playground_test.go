package integration

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/playground"
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
	p.setValue("length", "17")
	p.setValue("steps", "4")
	if s := eval[string](p, `document.getElementById('seconds').value`); s != "1.06" {
		t.Errorf("17 frames at 16 fps shows %s s, want 1.06", s)
	}

	// Submitting asks for the token (again after a wrong one); the job then runs.
	p.do("submitting", chromedp.Click("#submit"))
	wait[bool](p, "the token dialog", `document.getElementById('token-dialog').open`, 10*time.Second)
	p.do("giving a wrong token", chromedp.SendKeys("#token", "wrong"), chromedp.Click("#token-ok"))
	wait[bool](p, "the token asked again", `document.getElementById('token-dialog').open &&
		document.getElementById('token-why').textContent.includes('refused')`, 10*time.Second)
	p.setValue("token", "")
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
	if want := 17.0 / 16; v.Duration < want-0.07 || v.Duration > want+0.07 {
		t.Errorf("video duration = %.3f s, want %.3f (17 frames at 16 fps)", v.Duration, want)
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
	// For the screenshot: a frame from the middle, without the player's
	// controls (headless Chromium draws a loading indicator over them).
	p.do("seeking", chromedp.Evaluate[chromedp.Void](`new Promise(r => { const v = document.getElementById('video');
		v.controls = false; v.onseeked = () => r(true); v.currentTime = 0.5; })`, chromedp.EvalAwaitPromise))
	resultShot := p.shot("1-result")
	eval[bool](p, `document.getElementById('video').controls = true`)

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

	// An end frame, a resolution, a fixed aspect ratio, interpolation and a video quality.
	p.do("picking an end image", chromedp.SetUploadFiles("#end-file", []string{img}))
	wait[bool](p, "the end image", `!document.getElementById('end-preview').hidden`, 10*time.Second)
	p.setValue("size", "480p")
	p.setValue("aspect", "1:1")
	p.setValue("interpolate", "2")
	p.setValue("quality", "low")
	if info := eval[string](p, `document.getElementById('frame-info').dataset.size`); info != "480x480" {
		t.Errorf("480p 1:1 preview = %s", info)
	}
	p.do("submitting with the new options", chromedp.Click("#submit"))
	wait[bool](p, "the third video", `(() => { const h = JSON.parse(localStorage.getItem('wan22.history') || '[]');
		return h.length === 3 && h[0].status === 'COMPLETED'; })()`, 30*time.Second)
	v = wait[videoState](p, "the interpolated video", videoJS, 10*time.Second)
	if want := 33.0 / 32; v.Width != 480 || v.Height != 480 || v.Duration < want-0.07 || v.Duration > want+0.07 {
		t.Errorf("interpolated video %dx%d %.3f s, want 480x480 %.3f s (17 frames → 33 at 32 fps)", v.Width, v.Height, v.Duration, want)
	}
	if !slices.Contains(v.Stages, "interpolating") {
		t.Errorf("the progress never showed interpolating: %v", v.Stages)
	}
	p.setValue("size", "default")
	p.setValue("aspect", "auto")
	p.setValue("interpolate", "")
	p.setValue("quality", "")
	p.do("removing the end image", chromedp.Click("#end-clear"))

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

	// Two bad fields: each problem of the merged error is shown at its own field.
	p.setValue("steps", "1")
	p.do("submitting two bad fields", chromedp.Click("#submit"))
	both := wait[[]string](p, "both field errors", `(() => { const l = document.getElementById('err-length'),
		s = document.getElementById('err-steps'); return !l.hidden && !s.hidden && [l.textContent, s.textContent]; })()`, 30*time.Second)
	if !strings.Contains(both[0], "options.length") || !strings.Contains(both[1], "options.steps") {
		t.Errorf("field errors = %q", both)
	}
	p.setValue("steps", "4")

	// A LoRA the server does not have: the job's MODEL_MISSING is shown at the LoRAs.
	p.setValue("length", "9")
	p.do("adding a LoRA", chromedp.Click("#lora-add"), chromedp.SendKeys("#loras .lora-name", "wan/nope.safetensors"))
	p.do("submitting a missing LoRA", chromedp.Click("#submit"))
	loraErr := wait[string](p, "the LoRA error", `(() => { const e = document.getElementById('err-loras');
		return !e.hidden && e.textContent; })()`, 30*time.Second)
	if !strings.Contains(loraErr, "MODEL_MISSING") || !strings.Contains(loraErr, "wan/nope.safetensors") {
		t.Errorf("LoRA error = %q", loraErr)
	}
	// A LoRA by URL goes to the worker as url (a LORA_ error, where a name would be
	// INVALID_INPUT), shown at the LoRAs.
	p.setValue(eval[string](p, `document.querySelector('#loras .lora-name').id`), "http://127.0.0.1:1/style.safetensors")
	p.do("submitting a LoRA URL", chromedp.Click("#submit"))
	urlErr := wait[string](p, "the LoRA URL error", `(() => { const e = document.getElementById('err-loras');
		return !e.hidden && e.textContent.includes('LORA_') && e.textContent; })()`, 30*time.Second)
	t.Logf("LoRA URL error: %s", urlErr)
	p.do("removing the LoRA", chromedp.Click("#loras .lora-remove"))

	// Cancel a slow job once it samples.
	p.setValue("steps", "40")
	p.do("submitting a slow job", chromedp.Click("#submit"))
	if got := eval[string](p, `document.getElementById('err-length').hidden ? 'hidden' : 'shown'`); got != "hidden" {
		t.Errorf("the length error is still %s after a new submit", got)
	}
	wait[bool](p, "sampling", `document.querySelector('#stages li[data-stage=sampling_high].seen') !== null`, 20*time.Second)
	// After a reload the page follows the running job again.
	p.do("reloading", chromedp.Reload(), chromedp.WaitVisible("#submit"))
	wait[bool](p, "the job followed again", `document.getElementById('status').dataset.status === 'IN_PROGRESS' &&
		!document.getElementById('cancel').hidden`, 10*time.Second)
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

// TestPlaygroundSizeMatchesWorker: the page's size rules (size.js, which
// draws the preview) give the size the worker itself chooses (`validate`),
// for images of several aspect ratios, with one side given, and under a
// smaller MAX_PIXELS.
func TestPlaygroundSizeMatchesWorker(t *testing.T) {
	chrome := chromium(t)
	type sizeCase struct {
		ImgW       int    `json:"imgW"`
		ImgH       int    `json:"imgH"`
		W          int    `json:"width,omitempty"`
		H          int    `json:"height,omitempty"`
		Resolution string `json:"resolution,omitempty"`
		Aspect     string `json:"aspect_ratio,omitempty"`
		MaxPixels  int    `json:"maxPixels"`
	}
	cases := []sizeCase{
		{ImgW: 192, ImgH: 108}, {ImgW: 108, ImgH: 192}, {ImgW: 128, ImgH: 96}, {ImgW: 64, ImgH: 64},
		{ImgW: 252, ImgH: 108}, {ImgW: 333, ImgH: 217}, {ImgW: 17, ImgH: 300}, {ImgW: 300, ImgH: 17},
		{ImgW: 192, ImgH: 108, W: 832}, {ImgW: 192, ImgH: 108, H: 480}, {ImgW: 108, ImgH: 192, W: 1280},
		{ImgW: 192, ImgH: 108, MaxPixels: 409600}, {ImgW: 333, ImgH: 217, MaxPixels: 160000},
		{ImgW: 64, ImgH: 64, MaxPixels: 250000},
	}
	for i := range cases {
		cases[i].MaxPixels = cmp.Or(cases[i].MaxPixels, 921600)
	}
	for _, c := range []sizeCase{
		{ImgW: 192, ImgH: 108, Resolution: "480p"}, {ImgW: 108, ImgH: 192, Resolution: "580p"},
		{ImgW: 333, ImgH: 217, Resolution: "720p"}, {ImgW: 192, ImgH: 108, Resolution: "720p", Aspect: "1:1"},
		{ImgW: 192, ImgH: 108, Aspect: "4:3"}, {ImgW: 192, ImgH: 108, Aspect: "9:16", W: 480},
		{ImgW: 64, ImgH: 64, Resolution: "480p", Aspect: "16:9", MaxPixels: 300000},
		{ImgW: 17, ImgH: 300, Resolution: "580p"},
	} {
		c.MaxPixels = cmp.Or(c.MaxPixels, 921600)
		cases = append(cases, c)
	}
	dir := t.TempDir()
	var want [][2]int
	for i, c := range cases {
		opts := map[string]any{}
		if c.W > 0 {
			opts["width"] = c.W
		}
		if c.H > 0 {
			opts["height"] = c.H
		}
		if c.Resolution != "" {
			opts["resolution"] = c.Resolution
		}
		if c.Aspect != "" {
			opts["aspect_ratio"] = c.Aspect
		}
		job, _ := json.Marshal(map[string]any{"input": map[string]any{"prompt": "x", "options": opts,
			"image": base64.StdEncoding.EncodeToString(comfytest.GradientPNG(c.ImgW, c.ImgH))}})
		path := filepath.Join(dir, fmt.Sprintf("job%d.json", i))
		if err := os.WriteFile(path, job, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binary, "validate", fmt.Sprintf("--max-pixels=%d", c.MaxPixels), path).Output()
		if err != nil {
			t.Fatalf("validate %+v: %v\n%s", c, err, out)
		}
		var norm struct {
			Options struct {
				Width  int `json:"width"`
				Height int `json:"height"`
			} `json:"options"`
		}
		if err := json.Unmarshal(out, &norm); err != nil {
			t.Fatal(err)
		}
		want = append(want, [2]int{norm.Options.Width, norm.Options.Height})
	}

	srv := httptest.NewServer(playground.Handler())
	defer srv.Close()
	p := newPage(t, chrome, srv.URL)
	p.do("loading the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible("#submit"))
	in, _ := json.Marshal(cases)
	got, err := chromedp.Run(p.ctx, chromedp.Evaluate[[][2]int](fmt.Sprintf(`import('./playground/size.js').then(m =>
		%s.map(c => m.jobSize(c, c.imgW, c.imgH, c.maxPixels)))`, in), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if got[i] != want[i] {
			t.Errorf("%dx%d image, options %+v: page %v, worker %v", c.ImgW, c.ImgH, c, got[i], want[i])
		}
	}
}

// TestPlaygroundImageInputs: an image can also be dropped, pasted or given by
// URL; the preview follows the fit; every control has a label.
func TestPlaygroundImageInputs(t *testing.T) {
	chrome := chromium(t)
	mux := http.NewServeMux()
	mux.Handle("/", playground.Handler())
	mux.HandleFunc("GET /remote.png", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(comfytest.GradientPNG(48, 27))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p := newPage(t, chrome, srv.URL)
	p.do("loading the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible("#submit"))

	if unlabelled := eval[[]string](p, `[...document.querySelectorAll('input, select, textarea')]
		.filter(e => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.id)`); len(unlabelled) > 0 {
		t.Errorf("controls without a label: %v", unlabelled)
	}

	// Keyboard: Tab reaches the image area, and Enter there opens the file chooser.
	evCtx, stopEvents := context.WithTimeout(p.ctx, 10*time.Second)
	defer stopEvents()
	chooser := chromedp.Events(evCtx, cdppage.FileChooserOpened)
	p.do("pressing Enter on the image area", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.SetInterceptFileChooserDialog, cdppage.SetInterceptFileChooserDialogParams{Enabled: true})
		return err
	}), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
	if id := eval[string](p, `document.activeElement.id`); id != "drop" {
		t.Errorf("the third Tab reaches #%s, want the image area (#drop)", id)
	}
	p.do("pressing Enter", chromedp.KeyEvent(kb.Enter))
	for _, err := range chooser {
		if err != nil {
			t.Errorf("Enter on the image area opened no file chooser: %v", err)
		}
		break
	}

	// makeFile is page code that resolves to a w×h PNG File.
	const makeFile = `(w, h) => new Promise(resolve => { const c = document.createElement('canvas'); c.width = w; c.height = h;
		c.getContext('2d').fillRect(0, 0, w, h); c.toBlob(b => resolve(new File([b], 'x.png', {type: 'image/png'}))); })`
	info := func(what, want string) {
		t.Helper()
		got := wait[string](p, what, fmt.Sprintf(`(() => { const t = document.getElementById('frame-info').textContent;
			return t.startsWith(%q) && t; })()`, want), 10*time.Second)
		t.Logf("%s: %s", what, got)
	}

	eval[bool](p, `(`+makeFile+`)(40, 30).then(f => { const dt = new DataTransfer(); dt.items.add(f);
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); }), true`)
	info("a dropped image", "Image 40×30 → video 960×720, crop")

	eval[bool](p, `(`+makeFile+`)(30, 40).then(f => { const dt = new DataTransfer(); dt.items.add(f);
		document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true})); }), true`)
	info("a pasted image", "Image 30×40 → video 720×960, crop")

	p.setValue("image-url", srv.URL+"/remote.png")
	info("an image URL", "Image 48×27 → video 1104×624, crop")

	p.setValue("fit", "pad")
	info("pad", "Image 48×27 → video 1104×624, pad")
	p.setValue("size", "720p")
	info("720p", "Image 48×27 → video 1280×720, pad")
	p.setValue("aspect", "1:1")
	info("720p square", "Image 48×27 → video 720×720, pad")
	p.setValue("aspect", "auto")
	p.setValue("size", "custom")
	p.setValue("width", "640")
	p.setValue("height", "")
	info("a custom width", "Image 48×27 → video 640×368, pad")
	p.shot("inputs")
	p.do("dark colour scheme", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	p.shot("inputs-dark")
}
