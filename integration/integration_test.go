// Package integration runs the real wan22-worker binary against the fake
// ComfyUI (internal/comfy/comfytest) and the fake RunPod job server
// (internal/runpod/runpodtest): the RunPod job loop, the local API, SIGTERM,
// and the benchmark of the worker's own overhead (make bench).
package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/runpod/runpodtest"
)

// binary is the worker built once for the package's tests; fakeComfyBinary
// is cmd/fakecomfy, which the worker can start in place of ComfyUI.
var binary, fakeComfyBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wan22-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wan22-worker")
	fakeComfyBinary = filepath.Join(dir, "fakecomfy")
	build := exec.Command("go", "build", "-o", dir, "../cmd/wan22-worker", "../cmd/fakecomfy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the worker:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/setup-test-deps.sh installs it)")
	}
}

// testInput is the repository's test_input.json "input".
func testInput(t testing.TB, options map[string]any) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "test_input.json"))
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Input map[string]any `json:"input"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	if options != nil {
		in.Input["options"] = options
	}
	return in.Input
}

// worker is a running wan22-worker process.
type worker struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	done   chan error    // receives the exit error once
	exited chan struct{} // closed after the exit (done may have been read)
}

// startWorker runs the binary with args and env (on top of a clean base).
func startWorker(t testing.TB, env []string, args ...string) *worker {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LOG_LEVEL=debug"}, env...)
	var stderr strings.Builder
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &worker{cmd: cmd, stderr: &stderr, done: make(chan error, 1), exited: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-copied
		w.done <- err
		close(w.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", tail(stderr.String(), 60))
		}
	})
	return w
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// fakeRunPod serves a fake RunPod job server on loopback.
func fakeRunPod(t testing.TB, o runpodtest.Options) (*runpodtest.Server, []string) {
	t.Helper()
	rp := runpodtest.New(o)
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	env := append(rp.Templates(srv.URL).Env(), "RUNPOD_POD_ID=pod-test", "RUNPOD_AI_API_KEY=test-key",
		"RUNPOD_PING_INTERVAL=1000")
	return rp, env
}

func fakeComfy(t testing.TB, o comfytest.Options) *comfytest.Server {
	t.Helper()
	fake := comfytest.New(o)
	t.Cleanup(fake.Close)
	return fake
}

// result is a job-done body.
type result struct {
	Output map[string]any `json:"output"`
	Error  string         `json:"error"`
}

func finalResult(t testing.TB, rp *runpodtest.Server, id string) result {
	t.Helper()
	for _, r := range rp.Results(id) {
		if r.Progress || !r.Accepted() {
			continue
		}
		var res result
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatalf("job %s: result is not JSON: %v", id, err)
		}
		return res
	}
	t.Fatalf("job %s: no accepted final result", id)
	return result{}
}

func TestRunPodLoop(t *testing.T) {
	needFFmpeg(t)
	fake := fakeComfy(t, comfytest.Options{StepDelay: 20 * time.Millisecond, NodeDelay: time.Millisecond})
	rp, env := fakeRunPod(t, runpodtest.Options{Hold: 200 * time.Millisecond})
	rp.Enqueue(
		runpodtest.Job{ID: "ok-1", Input: testInput(t, map[string]any{"width": 128, "height": 128, "length": 9, "seed": 7})},
		runpodtest.Job{ID: "bad-1", Input: testInput(t, map[string]any{"length": 80})},
		runpodtest.Job{ID: "ok-2", Input: testInput(t, map[string]any{"width": 64, "height": 96, "length": 5, "output": "volume"})},
	)
	w := startWorker(t, append(env, "COMFY_URL="+fake.URL, "OUTPUT_DIR="+t.TempDir()), "serve")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := rp.Wait(ctx, func() bool { return rp.Finals("ok-1")+rp.Finals("bad-1")+rp.Finals("ok-2") == 3 }); err != nil {
		t.Fatalf("results not posted: %v", err)
	}

	ok := finalResult(t, rp, "ok-1")
	if ok.Error != "" || ok.Output["video"] == "" || ok.Output["frames"] != 9.0 || ok.Output["width"] != 128.0 || ok.Output["seed"] != 7.0 {
		t.Errorf("ok-1 = error %q, output keys %v frames %v", ok.Error, keys(ok.Output), ok.Output["frames"])
	}
	if len(rp.Progress("ok-1")) == 0 {
		t.Error("no progress updates for ok-1")
	}
	bad := finalResult(t, rp, "bad-1")
	if !strings.HasPrefix(bad.Error, "INVALID_INPUT: ") {
		t.Errorf("bad-1 error = %q", bad.Error)
	}
	vol := finalResult(t, rp, "ok-2")
	if p, _ := vol.Output["video_path"].(string); p == "" {
		t.Errorf("ok-2 = %+v", vol)
	} else if _, err := os.Stat(p); err != nil {
		t.Errorf("video_path: %v", err)
	}
	for _, id := range []string{"ok-1", "bad-1", "ok-2"} {
		if n := rp.Finals(id); n != 1 {
			t.Errorf("job %s: %d final results, want exactly 1", id, n)
		}
	}
	if len(rp.Requests(runpodtest.Ping)) == 0 {
		t.Error("no heartbeat")
	}
	if p := rp.Problems(); len(p) > 0 {
		t.Errorf("protocol problems: %v", p)
	}

	// SIGTERM: the loop stops taking jobs and the process exits cleanly.
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not exit after SIGTERM")
	}
}

func TestSIGTERMMidJobPostsResult(t *testing.T) {
	needFFmpeg(t)
	fake := fakeComfy(t, comfytest.Options{StepDelay: 700 * time.Millisecond})
	rp, env := fakeRunPod(t, runpodtest.Options{Hold: 200 * time.Millisecond})
	rp.Enqueue(runpodtest.Job{ID: "long-1", Input: testInput(t, map[string]any{"width": 64, "height": 64, "length": 5})})
	w := startWorker(t, append(env, "COMFY_URL="+fake.URL, "OUTPUT_DIR="+t.TempDir(), "SHUTDOWN_GRACE=1s"), "serve")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := rp.Wait(ctx, func() bool { return len(rp.Progress("long-1")) > 2 }); err != nil {
		t.Fatalf("job never ran: %v", err)
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not exit after SIGTERM")
	}
	if n := rp.Finals("long-1"); n != 1 {
		t.Fatalf("%d final results after SIGTERM, want 1", n)
	}
	res := finalResult(t, rp, "long-1")
	if !strings.HasPrefix(res.Error, "CANCELLED: ") {
		t.Errorf("result after SIGTERM past the grace = %q, want CANCELLED", res.Error)
	}
	var interrupted bool
	for _, r := range fake.Requests() {
		interrupted = interrupted || r.Path == "/interrupt"
	}
	if !interrupted {
		t.Error("ComfyUI was not interrupted")
	}
}

func TestLocalAPI(t *testing.T) {
	needFFmpeg(t)
	fake := fakeComfy(t, comfytest.Options{StepDelay: 10 * time.Millisecond})
	addr := freeAddr(t)
	startWorker(t, []string{"COMFY_URL=" + fake.URL, "API_ADDR=" + addr, "OUTPUT_DIR=" + t.TempDir()}, "serve", "--api")
	base := "http://" + addr
	waitHTTP(t, base+"/health")

	body, _ := json.Marshal(map[string]any{"input": testInput(t, map[string]any{"width": 64, "height": 64, "length": 5})})
	resp, err := http.Post(base+"/v2/local/run", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var run struct{ ID, Status string }
	_ = json.NewDecoder(resp.Body).Decode(&run)
	resp.Body.Close()
	if run.ID == "" || run.Status != "IN_QUEUE" {
		t.Fatalf("/run = %+v", run)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/v2/local/status/" + run.ID)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Status string         `json:"status"`
			Output map[string]any `json:"output"`
			Error  string         `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Status == "COMPLETED" {
			if st.Output["video"] == "" || st.Output["frames"] != 5.0 {
				t.Errorf("output = %v", keys(st.Output))
			}
			return
		}
		if st.Status == "FAILED" || time.Now().After(deadline) {
			t.Fatalf("status = %s %s", st.Status, st.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestOneShotTestInput(t *testing.T) {
	needFFmpeg(t)
	fake := fakeComfy(t, comfytest.Options{StepDelay: time.Millisecond})
	dir := t.TempDir()
	job, _ := json.Marshal(map[string]any{"input": testInput(t, map[string]any{"width": 64, "height": 64, "length": 5})})
	path := filepath.Join(dir, "job.json")
	if err := os.WriteFile(path, job, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--test-input", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "COMFY_URL=" + fake.URL, "OUTPUT_DIR=" + dir}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("serve --test-input: %v\n%s", err, out)
	}
	var res result
	if err := json.Unmarshal(out, &res); err != nil || res.Output["frames"] != 5.0 {
		t.Fatalf("output %s: %v", out, err)
	}
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	return k
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func waitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return -1
}
