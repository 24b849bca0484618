//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildWorker builds the worker binary, or skips when it has no serve and
// generate commands yet.
func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wan22-worker")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/wan22-worker/wan22-worker/cmd/wan22-worker").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	help, _ := exec.CommandContext(t.Context(), bin, "help").CombinedOutput()
	for _, c := range []string{"serve", "generate"} {
		if !bytes.Contains(help, []byte("\n  "+c+" ")) {
			t.Skipf("the worker has no %q command yet", c)
		}
	}
	return bin
}

// workerEnv is the environment of a worker that supervises ComfyUI on the
// CPU with the fixtures as its only models folder.
func (e *env) workerEnv(t *testing.T, models, comfyLog string, extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		// Nothing of the caller's worker or RunPod settings leaks in.
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "RUNPOD_") || strings.HasPrefix(name, "COMFY") || strings.HasPrefix(name, "MODEL") ||
			strings.HasPrefix(name, "API_") || strings.HasPrefix(name, "BUCKET_") {
			continue
		}
		out = append(out, kv)
	}
	args := "--disable-cuda-malloc"
	if !e.frontend {
		web := filepath.Join(t.TempDir(), "web")
		if err := os.MkdirAll(web, 0o755); err != nil {
			t.Fatal(err)
		}
		args += " --front-end-root " + web
	}
	out = append(out,
		"COMFYUI_DIR="+e.comfyDir, "COMFY_PYTHON="+e.python, "COMFY_VRAM_MODE=cpu", "COMFY_ATTENTION=pytorch",
		"COMFY_EXTRA_ARGS="+args, "COMFY_START_TIMEOUT=10m", "COMFY_LOG_FILE="+comfyLog,
		"TORCH_COMPILE=0", "MODELS_DIRS="+models, "WARMUP=off", "LOG_FORMAT=text", "OUTPUT_DIR="+t.TempDir(),
		"JOB_TIMEOUT=25m")
	return append(out, extra...)
}

// result is the job output contract (DESIGN.md §4).
type result struct {
	Video      string           `json:"video"`
	Filename   string           `json:"filename"`
	PromptID   string           `json:"prompt_id"`
	FilesCount int              `json:"files_count"`
	VideoPath  string           `json:"video_path"`
	MimeType   string           `json:"mime_type"`
	Width      int              `json:"width"`
	Height     int              `json:"height"`
	Frames     int              `json:"frames"`
	FrameRate  float64          `json:"frame_rate"`
	DurationS  float64          `json:"duration_s"`
	Seed       uint64           `json:"seed"`
	SizeBytes  int64            `json:"size_bytes"`
	SHA256     string           `json:"sha256"`
	Timings    map[string]int64 `json:"timings_ms"`
}

// checkResult asserts the result of a 64×64, 5-frame, 16 fps job and its video bytes.
func checkResult(t *testing.T, raw []byte, r result, video []byte, id string, seed uint64) {
	t.Helper()
	checkVideo(t, video)
	sum := sha256.Sum256(video)
	if r.SHA256 != hex.EncodeToString(sum[:]) || r.SizeBytes != int64(len(video)) {
		t.Errorf("sha256 %s / size %d do not match the video (%d bytes)", r.SHA256, r.SizeBytes, len(video))
	}
	if !strings.HasSuffix(r.Filename, ".mp4") || r.PromptID != id || r.FilesCount != 1 || r.MimeType != "video/mp4" {
		t.Errorf("filename %q, prompt_id %q, files_count %d, mime_type %q; want *.mp4, %q, 1, video/mp4",
			r.Filename, r.PromptID, r.FilesCount, r.MimeType, id)
	}
	if r.Width != 64 || r.Height != 64 || r.Frames != 5 || r.FrameRate != 16 || math.Abs(r.DurationS-5.0/16) > 0.01 || r.Seed != seed {
		t.Errorf("width %d height %d frames %d frame_rate %g duration_s %g seed %d; want 64 64 5 16 %.4f %d",
			r.Width, r.Height, r.Frames, r.FrameRate, r.DurationS, r.Seed, 5.0/16, seed)
	}
	for _, k := range []string{"validate", "upload", "queue", "inference", "fetch", "deliver", "total"} {
		if _, ok := r.Timings[k]; !ok {
			t.Errorf("timings_ms has no %q: %s", k, truncate(string(raw), 400))
		}
	}
	if r.Timings["total"] <= 0 || r.Timings["inference"] <= 0 {
		t.Errorf("timings_ms = %v", r.Timings)
	}
	t.Logf("result: %s, %d bytes, timings_ms %v", r.Filename, r.SizeBytes, r.Timings)
}

// worker is a running `wan22-worker serve --api`.
type worker struct {
	cmd      *exec.Cmd
	url      string
	log      string
	comfyLog string
	done     chan struct{}
}

func (e *env) startWorkerAPI(t *testing.T, bin, models string) *worker {
	t.Helper()
	port := freePort(t)
	w := &worker{url: fmt.Sprintf("http://127.0.0.1:%d", port), log: e.logPath(t, "worker-api.log"),
		comfyLog: e.logPath(t, "worker-api-comfyui.log"), done: make(chan struct{})}
	logFile, err := os.Create(w.log)
	if err != nil {
		t.Fatal(err)
	}
	w.cmd = exec.Command(bin, "serve", "--api")
	// WARMUP=on (the default under RunPod): the models are loaded by the
	// warm-up run before the API answers. The last value of a key wins.
	w.cmd.Env = e.workerEnv(t, models, w.comfyLog, fmt.Sprintf("API_ADDR=127.0.0.1:%d", port), "WARMUP=on")
	w.cmd.Stdout, w.cmd.Stderr = logFile, logFile
	begin := time.Now()
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w.cmd.Wait()
		logFile.Close()
		close(w.done)
	}()
	t.Cleanup(func() { w.stop(t) })
	t.Logf("worker pid %d, API %s, log %s, ComfyUI log %s", w.cmd.Process.Pid, w.url, w.log, w.comfyLog)

	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	for {
		if status, _, err := w.call(ctx, http.MethodGet, "/health", nil); err == nil && status == http.StatusOK {
			break
		}
		select {
		case <-w.done:
			t.Fatalf("the worker exited during start:\n%s", tail(w.log, 40))
		case <-ctx.Done():
			t.Fatalf("the worker's API did not answer within 12 minutes:\n%s", tail(w.log, 40))
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Logf("worker API ready in %s", time.Since(begin).Round(time.Millisecond))
	return w
}

func (w *worker) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.url+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// jobStatus is GET /status/{id}.
type jobStatus struct {
	ID     string          `json:"id"`
	Status string          `json:"status"`
	Output json.RawMessage `json:"output"`
	Error  string          `json:"error"`
}

func (w *worker) submit(t *testing.T, input map[string]any) string {
	t.Helper()
	status, body, err := w.call(t.Context(), http.MethodPost, "/run", map[string]any{"input": input})
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /run: %d %s %v", status, body, err)
	}
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.ID == "" {
		t.Fatalf("POST /run answered %s", body)
	}
	return r.ID
}

func (w *worker) status(t *testing.T, id string) jobStatus {
	t.Helper()
	status, body, err := w.call(t.Context(), http.MethodGet, "/status/"+id, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /status/%s: %d %s %v", id, status, truncate(string(body), 300), err)
	}
	var s jobStatus
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("GET /status/%s: %v", id, err)
	}
	return s
}

// wait polls the job until until(status) holds or the job ends.
func (w *worker) wait(t *testing.T, id string, limit time.Duration, until func(jobStatus) bool) jobStatus {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s := w.status(t, id)
		if until(s) || s.Status == "COMPLETED" || s.Status == "FAILED" || s.Status == "CANCELLED" || s.Status == "TIMED_OUT" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %s\nworker log:\n%s", id, s.Status, limit, tail(w.log, 30))
		}
		select {
		case <-w.done:
			t.Fatalf("the worker exited:\n%s", tail(w.log, 40))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// comfyPID finds the worker's ComfyUI child process.
func (w *worker) comfyPID(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: the comm may hold spaces, so parse after the last ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(w.cmd.Process.Pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte("main.py")) {
			return pid
		}
	}
	t.Fatalf("no ComfyUI child of worker pid %d", w.cmd.Process.Pid)
	return 0
}

// stop ends the worker with SIGTERM (it stops ComfyUI itself), then SIGKILL.
func (w *worker) stop(t *testing.T) {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		t.Logf("the worker ignored SIGTERM for 60 s; killing it")
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// waitLog waits until the file contains s (after offset) or the limit passes.
func waitLog(t *testing.T, path string, offset int64, s string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && int64(len(data)) > offset && bytes.Contains(data[offset:], []byte(s)) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestWorkerAPI runs the worker binary with the local RunPod-compatible API,
// supervising the real ComfyUI: a job during which ComfyUI is killed fails
// COMFY_CRASHED; the next job succeeds on the restarted ComfyUI (its MP4 and
// result JSON are checked); a job naming a missing LoRA fails MODEL_MISSING.
func TestWorkerAPI(t *testing.T) {
	e := requireComfyUI(t)
	bin := buildWorker(t)
	models := e.fixtures(t)
	w := e.startWorkerAPI(t, bin, models)
	const prompt = "a yellow ball rolls across a blue floor"

	t.Run("warm-up loads the models before the API answers", func(t *testing.T) {
		b, err := os.ReadFile(w.log)
		if err != nil {
			t.Fatal(err)
		}
		log := string(b)
		warm, listen := strings.Index(log, "warm-up done: models loaded"), strings.Index(log, "local API listening")
		if warm < 0 || listen < 0 || warm > listen {
			t.Fatalf("want the warm-up to finish before the API listens (warm-up at %d, listening at %d):\n%s",
				warm, listen, tail(w.log, 30))
		}
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "warm-up done") {
				t.Log(strings.TrimSpace(line))
			}
		}
	})

	t.Run("start-up timeline in /health", func(t *testing.T) {
		_, b, err := w.call(t.Context(), http.MethodGet, "/health", nil)
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			Startup struct {
				Steps []struct {
					Name   string  `json:"name"`
					AtMS   int64   `json:"at_ms"`
					TookMS int64   `json:"took_ms"`
					File   string  `json:"file"`
					Source string  `json:"source"`
					Bytes  int64   `json:"bytes"`
					MBPerS float64 `json:"mb_per_s"`
				} `json:"steps"`
			} `json:"startup"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("/health: %v: %s", err, b)
		}
		seen := map[string]int{}
		for _, s := range h.Startup.Steps {
			seen[s.Name]++
			t.Logf("%8.1f s  %-16s %s %s took %d ms, %d bytes, %.1f MB/s", float64(s.AtMS)/1000, s.Name, s.File, s.Source, s.TookMS, s.Bytes, s.MBPerS)
		}
		for _, want := range []string{"process_start", "comfyui_spawned", "comfyui_ready", "warmup_started", "warmup_done"} {
			if seen[want] != 1 {
				t.Errorf("%s appears %d times in the timeline", want, seen[want])
			}
		}
		if seen["model_loaded"] < 4 {
			t.Errorf("%d model_loaded steps, want one per loader (experts, text encoder, VAE)", seen["model_loaded"])
		}
	})

	t.Run("ComfyUI killed mid-job fails COMFY_CRASHED", func(t *testing.T) {
		offset := fileSize(w.comfyLog)
		id := w.submit(t, jobInput(t, prompt, 1, nil))
		s := w.wait(t, id, 5*time.Minute, func(s jobStatus) bool { return s.Status == "IN_PROGRESS" })
		if s.Status != "IN_PROGRESS" {
			t.Fatalf("job %s is %s before it ran: %s %s", id, s.Status, s.Error, truncate(string(s.Output), 300))
		}
		// Kill once ComfyUI has the prompt, so the crash happens while it runs.
		if !waitLog(t, w.comfyLog, offset, "got prompt", 5*time.Minute) {
			t.Fatalf("ComfyUI never got the prompt:\n%s", tail(w.comfyLog, 20))
		}
		if s := w.status(t, id); s.Status != "IN_PROGRESS" {
			t.Fatalf("job %s is %s before the kill", id, s.Status)
		}
		pid := w.comfyPID(t)
		t.Logf("SIGKILL to ComfyUI pid %d during job %s", pid, id)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s = w.wait(t, id, 5*time.Minute, func(jobStatus) bool { return false })
		if s.Status != "FAILED" || !strings.HasPrefix(s.Error, "COMFY_CRASHED") {
			t.Errorf("job %s: %s %q, want FAILED with COMFY_CRASHED", id, s.Status, s.Error)
		}
	})

	t.Run("next job succeeds on the restarted ComfyUI", func(t *testing.T) {
		id := w.submit(t, jobInput(t, prompt, 2, nil))
		s := w.wait(t, id, 25*time.Minute, func(jobStatus) bool { return false })
		if s.Status != "COMPLETED" {
			t.Fatalf("job %s: %s %q %s\nworker log:\n%s", id, s.Status, s.Error, truncate(string(s.Output), 500), tail(w.log, 30))
		}
		var r result
		if err := json.Unmarshal(s.Output, &r); err != nil {
			t.Fatalf("output: %v: %s", err, truncate(string(s.Output), 300))
		}
		video, err := base64.StdEncoding.DecodeString(r.Video)
		if err != nil || len(video) == 0 {
			t.Fatalf("output.video is not inline base64 (%v); video_path %q", err, r.VideoPath)
		}
		checkResult(t, s.Output, r, video, id, 2)
	})

	t.Run("missing LoRA fails MODEL_MISSING", func(t *testing.T) {
		id := w.submit(t, jobInput(t, prompt, 3, map[string]any{"loras": []map[string]any{{"name": "nope.safetensors"}}}))
		s := w.wait(t, id, 5*time.Minute, func(jobStatus) bool { return false })
		if s.Status != "FAILED" || !strings.HasPrefix(s.Error, "MODEL_MISSING") || !strings.Contains(s.Error, "nope.safetensors") {
			t.Errorf("job %s: %s %q, want FAILED with MODEL_MISSING naming nope.safetensors", id, s.Status, s.Error)
		}
	})

	w.stop(t)
	checkLog(t, w.comfyLog)
}

// generateOutput runs `wan22-worker generate args…` with env (25 minutes
// at most) and returns its stdout and stderr; a failure ends the test with
// the end of its stderr.
func generateOutput(t *testing.T, bin string, env []string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"generate"}, args...)...)
	cmd.Env = env
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	begin := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("generate: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), tail2(errs.String(), 40))
	}
	t.Logf("generate took %s", time.Since(begin).Round(time.Millisecond))
	return out.Bytes(), errs.Bytes()
}

// runGenerate runs `wan22-worker generate` for the 64×64 job and checks its
// MP4 and the result JSON it prints.
func runGenerate(t *testing.T, bin string, env []string, prompt string, seed uint64) {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "start.png")
	if err := os.WriteFile(img, startImage(t), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mp4")
	stdout, _ := generateOutput(t, bin, env, "--image", img, "--prompt", prompt, "--width", "64", "--height", "64",
		"--length", "5", "--steps", "2", "--seed", strconv.FormatUint(seed, 10), "--id", "e2e-generate", "-o", out)
	video, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(stdout, &r); err != nil {
		t.Fatalf("generate printed %q: %v", truncate(string(stdout), 300), err)
	}
	if r.VideoPath != out {
		t.Errorf("video_path = %q, want %q", r.VideoPath, out)
	}
	checkResult(t, stdout, r, video, "e2e-generate", seed)
}

func tail2(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
