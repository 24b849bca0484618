//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/modelpaths"
	"github.com/wan22-worker/wan22-worker/internal/mp4"
	"github.com/wan22-worker/wan22-worker/internal/testmodels"
)

// comfyVersion is the ComfyUI release the worker is pinned to.
const comfyVersion = "0.3.64"

// env is the ComfyUI installation under test.
type env struct {
	comfyDir string // checkout (main.py)
	python   string // interpreter with ComfyUI's requirements
	frontend bool   // comfyui-frontend-package is installed
	cache    string // fixtures and logs kept between runs
}

// requireComfyUI returns the installation, or skips the test with what is
// missing.
func requireComfyUI(t *testing.T) *env {
	t.Helper()
	dir := os.Getenv("COMFYUI_DIR")
	if dir == "" {
		t.Skip("COMFYUI_DIR is not set: point it at a ComfyUI v" + comfyVersion + " checkout with a Python environment (docs/e2e.md)")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "main.py")); err != nil {
		t.Skipf("COMFYUI_DIR=%s has no main.py: not a ComfyUI checkout", dir)
	}
	v, err := os.ReadFile(filepath.Join(dir, "comfyui_version.py"))
	if err != nil {
		t.Skipf("COMFYUI_DIR=%s has no comfyui_version.py: %v", dir, err)
	}
	if m := regexp.MustCompile(`__version__\s*=\s*"([^"]+)"`).FindSubmatch(v); m == nil || string(m[1]) != comfyVersion {
		t.Skipf("COMFYUI_DIR=%s is not ComfyUI v%s (comfyui_version.py: %q)", dir, comfyVersion, strings.TrimSpace(string(v)))
	}
	py := os.Getenv("COMFY_PYTHON")
	if py == "" {
		py = filepath.Join(dir, "venv", "bin", "python")
	}
	out, err := exec.CommandContext(t.Context(), py, "-c",
		"import importlib.util, torch; print(torch.__version__); print(importlib.util.find_spec('comfyui_frontend_package') is not None)").Output()
	if err != nil {
		t.Skipf("%s cannot import torch (set COMFY_PYTHON to ComfyUI's Python): %v", py, err)
	}
	lines := strings.Fields(string(out))
	e := &env{comfyDir: dir, python: py, frontend: len(lines) == 2 && lines[1] == "True", cache: cacheDir(t)}
	t.Logf("ComfyUI %s at %s, python %s (torch %s), frontend package: %v", comfyVersion, dir, py, lines[0], e.frontend)
	return e
}

// cacheDir is $WAN22_E2E_CACHE, or e2e/.cache (ignored by git).
func cacheDir(t *testing.T) string {
	dir := os.Getenv("WAN22_E2E_CACHE")
	if dir == "" {
		dir = ".cache"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fixtures returns the models folder of the tiny WAN 2.2 stand-ins, in the
// original layout (unet, clip, vae, loras/wan) under the production names,
// generating them on first use.
func (e *env) fixtures(t *testing.T) string {
	t.Helper()
	opts := testmodels.DefaultOptions()
	start := time.Now()
	dir, err := testmodels.Ensure(t.Context(), filepath.Join(e.cache, "models"), opts)
	if err != nil {
		t.Fatalf("generating the model fixtures: %v", err)
	}
	if err := testmodels.Prune(filepath.Join(e.cache, "models"), testmodels.Key(opts)); err != nil {
		t.Logf("pruning old fixtures: %v", err)
	}
	t.Logf("model fixtures (generator v%d) at %s, ready in %s", testmodels.Version, dir, time.Since(start).Round(time.Millisecond))
	return dir
}

// logPath returns a file under the cache for a log that should outlive the
// test (for reading after a failure).
func (e *env) logPath(t *testing.T, name string) string {
	dir := filepath.Join(e.cache, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startImage is a 64×64 PNG with some structure (a gradient and a disc).
func startImage(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			c := color.RGBA{uint8(x * 4), uint8(y * 4), 128, 255}
			if (x-32)*(x-32)+(y-32)*(y-32) < 200 {
				c = color.RGBA{240, 200, 40, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jobInput is a job's input for the 64×64, 5-frame, 2-step run.
func jobInput(t *testing.T, prompt string, seed int, extra map[string]any) map[string]any {
	opts := map[string]any{"width": 64, "height": 64, "length": 5, "steps": 2, "split_step": 1, "seed": seed}
	for k, v := range extra {
		opts[k] = v
	}
	return map[string]any{"prompt": prompt, "image": base64.StdEncoding.EncodeToString(startImage(t)), "options": opts}
}

// videoInfo is what ffprobe says about the first video stream.
type videoInfo struct {
	Codec  string
	PixFmt string
	Width  int
	Height int
	Frames int
}

// probe checks an MP4 with ffprobe (decoding it to count the frames) and
// with the worker's own container reader.
func probe(t *testing.T, data []byte) videoInfo {
	t.Helper()
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal("ffprobe is not on PATH (install ffmpeg; docs/e2e.md)")
	}
	path := filepath.Join(t.TempDir(), "video.mp4")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,pix_fmt,width,height,nb_read_frames", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var r struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			PixFmt string `json:"pix_fmt"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	s := r.Streams[0]
	frames, _ := strconv.Atoi(s.Frames)
	info := videoInfo{Codec: s.Codec, PixFmt: s.PixFmt, Width: s.Width, Height: s.Height, Frames: frames}

	m, err := mp4.Probe(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Errorf("mp4.Probe: %v", err)
	} else if m.Codec != info.Codec || m.Width != info.Width || m.Height != info.Height || m.Frames != info.Frames {
		t.Errorf("mp4.Probe = %+v, ffprobe = %+v", m, info)
	}
	return info
}

// checkVideo asserts the MP4 of a 64×64, 5-frame job.
func checkVideo(t *testing.T, data []byte) {
	t.Helper()
	got := probe(t, data)
	want := videoInfo{Codec: "h264", PixFmt: "yuv420p", Width: 64, Height: 64, Frames: 5}
	if got != want {
		t.Errorf("video = %+v, want %+v", got, want)
	}
	// NaN anywhere in the models ends as a uniform (black) picture.
	if lo, hi := lumaRange(t, data); hi-lo < 8 {
		t.Errorf("the video is almost uniform (luma %d…%d): the models produced no picture", lo, hi)
	}
}

// lumaRange decodes the video to 8-bit grey with ffmpeg and returns the
// smallest and largest value over all frames.
func lumaRange(t *testing.T, data []byte) (lo, hi byte) {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg is not on PATH (docs/e2e.md)")
	}
	cmd := exec.CommandContext(t.Context(), ffmpeg, "-v", "error", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("ffmpeg decode: %v", err)
	}
	lo, hi = 255, 0
	for _, b := range out {
		lo, hi = min(lo, b), max(hi, b)
	}
	return lo, hi
}

// logProblems are lines of ComfyUI's log that mean a fixture or the graph is
// wrong even though the run succeeded.
var logProblems = []string{"lora key not loaded", "NOT LOADED", "unet missing", "unet unexpected", "clip missing",
	"Missing VAE keys", "ERROR UNSUPPORTED", "No VAE weights detected", "Traceback"}

// checkLog fails on any of logProblems in the log file.
func checkLog(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		for _, p := range logProblems {
			if strings.Contains(line, p) {
				t.Errorf("ComfyUI log (%s): %s", path, truncate(line, 300))
			}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// memStatus reads the resident-set fields of /proc/<pid>/status, in bytes:
// VmHWM (peak), VmRSS, RssAnon and RssFile.
func memStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, v, ok := strings.Cut(s.Text(), ":")
		if !ok || !strings.HasPrefix(name, "Vm") && !strings.HasPrefix(name, "Rss") {
			continue
		}
		if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			out[name] = kb << 10
		}
	}
	return out, s.Err()
}

// server is a ComfyUI process started by the test.
type server struct {
	url     string
	pid     int
	log     string
	started time.Duration // from exec to the first answer of /system_stats
	cmd     *exec.Cmd
	done    chan struct{}

	mu   sync.Mutex
	peak map[string]int64 // largest VmHWM, VmRSS, RssAnon, RssFile seen
}

// startComfyUI starts ComfyUI on the CPU with the fixtures wired through an
// extra model paths file, in folders of its own (input, output, temp, user),
// and waits until it answers. The server is stopped when the test ends.
func (e *env) startComfyUI(t *testing.T, models string) *server {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{"input", "output", "temp", "user", "web"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The worker's own wiring: one section per models folder, both layouts.
	paths := modelpaths.Resolve([]string{models}, nil)
	if len(paths.Roots) != 1 {
		t.Fatalf("modelpaths did not find the fixtures folder %s: %+v", models, paths)
	}
	yaml := filepath.Join(base, "extra_model_paths.yaml")
	if err := paths.WriteFile(yaml); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	args := []string{"main.py", "--cpu", "--listen", "127.0.0.1", "--port", strconv.Itoa(port),
		"--disable-auto-launch", "--disable-api-nodes", "--use-pytorch-cross-attention", "--disable-cuda-malloc",
		"--log-stdout", "--extra-model-paths-config", yaml,
		"--input-directory", filepath.Join(base, "input"), "--output-directory", filepath.Join(base, "output"),
		"--temp-directory", filepath.Join(base, "temp"), "--user-directory", filepath.Join(base, "user")}
	if !e.frontend {
		args = append(args, "--front-end-root", filepath.Join(base, "web"))
	}
	logPath := e.logPath(t, "comfyui-"+sanitize(t.Name())+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.python, args...)
	cmd.Dir = e.comfyDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{url: fmt.Sprintf("http://127.0.0.1:%d", port), pid: cmd.Process.Pid, log: logPath, cmd: cmd,
		done: make(chan struct{}), peak: map[string]int64{}}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	go s.sampleMemory()
	t.Cleanup(func() { s.stop(t) })
	t.Logf("ComfyUI pid %d on %s, log %s", s.pid, s.url, logPath)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/system_stats", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-s.done:
			t.Fatalf("ComfyUI exited during start:\n%s", tail(logPath, 40))
		case <-ctx.Done():
			t.Fatalf("ComfyUI did not answer /system_stats within 5 minutes:\n%s", tail(logPath, 40))
		case <-time.After(250 * time.Millisecond):
		}
	}
	s.started = time.Since(begin)
	t.Logf("ComfyUI ready in %s", s.started.Round(time.Millisecond))
	return s
}

// sampleMemory records the largest resident-set figures twice a second
// while the server runs (VmHWM alone does not say how much was anonymous
// memory and how much mapped file pages).
func (s *server) sampleMemory() {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

func (s *server) sample() {
	m, err := memStatus(s.pid)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{"VmHWM", "VmRSS", "RssAnon", "RssFile"} {
		s.peak[k] = max(s.peak[k], m[k])
	}
}

// memory returns the peaks seen so far, in GiB, as "VmHWM 1.23 GiB, …".
func (s *server) memory() (string, map[string]float64) {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	gib := map[string]float64{}
	var parts []string
	for _, k := range []string{"VmHWM", "RssAnon", "RssFile"} {
		gib[k] = float64(s.peak[k]) / (1 << 30)
		parts = append(parts, fmt.Sprintf("%s %.2f GiB", k, gib[k]))
	}
	return strings.Join(parts, ", "), gib
}

// stop ends the server: SIGTERM, then SIGKILL after 15 s.
func (s *server) stop(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	s.sample()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		t.Logf("ComfyUI pid %d ignored SIGTERM; killing it", s.pid)
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}
