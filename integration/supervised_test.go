package integration

// Tests of the worker supervising its ComfyUI: cmd/fakecomfy is started by
// the worker's supervisor exactly as ComfyUI would be (COMFY_PYTHON names the
// fake, COMFYUI_DIR holds an empty main.py, fake flags travel in
// COMFY_EXTRA_ARGS), and the test kills it with SIGKILL mid-job.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/runpod/runpodtest"
)

// supervisedEnv is the environment of a worker that starts the fake as its
// ComfyUI, with fakeArgs appended to ComfyUI's command line.
func supervisedEnv(t testing.TB, fakeArgs string) []string {
	t.Helper()
	comfyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(comfyDir, "main.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	return []string{
		"COMFYUI_DIR=" + comfyDir,
		"COMFY_PYTHON=" + fakeComfyBinary,
		"COMFY_EXTRA_ARGS=" + fakeArgs,
		"COMFY_LOG_FILE=" + filepath.Join(tmp, "comfyui.log"),
		"COMFY_START_TIMEOUT=30s",
		"MODELS_DIRS=" + t.TempDir(),
		"OUTPUT_DIR=" + t.TempDir(),
		"WARMUP=off",
		// The supervisor's work dir, should the worker be killed before it removes it.
		"TMPDIR=" + tmp,
	}
}

// procStat reads the state, parent and process group of pid from
// /proc/<pid>/stat; ok is false when the process does not exist.
func procStat(pid int) (state byte, ppid, pgrp int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	pgrp, _ = strconv.Atoi(f[2])
	return f[0][0], ppid, pgrp, true
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	state, _, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// processes returns the live processes for which keep is true.
func processes(t testing.TB, keep func(pid, ppid, pgrp int) bool) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, ppid, pgrp, ok := procStat(pid)
		if ok && state != 'Z' && state != 'X' && keep(pid, ppid, pgrp) {
			out = append(out, pid)
		}
	}
	return out
}

// comfyPID waits until the worker runs a ComfyUI process (its only child)
// other than previous, and returns its pid.
func comfyPID(t testing.TB, w *worker, previous int) int {
	t.Helper()
	parent := w.cmd.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		kids := processes(t, func(pid, ppid, _ int) bool { return ppid == parent && pid != previous })
		if len(kids) == 1 {
			return kids[0]
		}
		if len(kids) > 1 {
			t.Fatalf("the worker runs %d child processes (%v), want one ComfyUI", len(kids), kids)
		}
		select {
		case err := <-w.done:
			t.Fatalf("worker exited (%v) while waiting for ComfyUI", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("the worker started no ComfyUI process (besides %d)", previous)
	return 0
}

// assertGone checks that pid and every process of its group have ended.
func assertGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := processes(t, func(p, _, pgrp int) bool { return p == pid || pgrp == pid })
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("ComfyUI (pid %d) or its group outlived the worker: %v", pid, left)
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs ComfyUI, as the kernel's OOM killer would.
func kill(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing ComfyUI (pid %d): %v", pid, err)
	}
}

// waitExit waits for the worker to exit and returns its exit code.
func waitExit(t testing.TB, w *worker, within time.Duration) int {
	t.Helper()
	select {
	case <-w.done:
		return w.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("worker did not exit within %s", within)
		return 0
	}
}

// apiJob is a local API /status answer.
type apiJob struct {
	Status string          `json:"status"`
	Output json.RawMessage `json:"output"`
	Error  string          `json:"error"`
}

// stage is the progress stage of an IN_PROGRESS job's output.
func (j apiJob) stage() string {
	var p struct{ Stage string }
	_ = json.Unmarshal(j.Output, &p)
	return p.Stage
}

func submit(t testing.TB, base string, input map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"input": input})
	resp, err := http.Post(base+"/v2/local/run", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var run struct{ ID, Status string }
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil || run.ID == "" {
		t.Fatalf("/run: %d %+v %v", resp.StatusCode, run, err)
	}
	return run.ID
}

// waitJob polls /status until done returns true for the job.
func waitJob(t testing.TB, base, id string, done func(apiJob) bool) apiJob {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/v2/local/status/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var st apiJob
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("/status: %v", err)
		}
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: still %s %s", id, st.Status, st.Output)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sampling(stage string) bool { return strings.HasPrefix(stage, "sampling_") }

// errorObject is output.error of a failed job.
func errorObject(t testing.TB, output json.RawMessage) map[string]any {
	t.Helper()
	var out struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(output, &out); err != nil || out.Error == nil {
		t.Fatalf("output.error missing in %s (%v)", output, err)
	}
	return out.Error
}

// checkCrashed checks a COMFY_CRASHED failure: the contract's error string,
// output.error with a hint, and ComfyUI's last log lines in the message.
func checkCrashed(t testing.TB, errStr string, output json.RawMessage) {
	t.Helper()
	if !strings.HasPrefix(errStr, "COMFY_CRASHED: ") {
		t.Errorf("error = %q, want COMFY_CRASHED", errStr)
		return
	}
	e := errorObject(t, output)
	if e["code"] != "COMFY_CRASHED" {
		t.Errorf("output.error.code = %v", e["code"])
	}
	if hint, _ := e["hint"].(string); !strings.Contains(hint, "restart") {
		t.Errorf("output.error.hint = %q, want the restart hint", hint)
	}
	msg, _ := e["message"].(string)
	if !strings.Contains(msg, "signal: killed") || !strings.Contains(msg, "To see the GUI go to: http://127.0.0.1:") {
		t.Errorf("output.error.message lacks the exit status or ComfyUI's log tail:\n%s", msg)
	}
}

func TestSupervisedComfyCrashLocalAPI(t *testing.T) {
	needFFmpeg(t)
	addr := freeAddr(t)
	env := append(supervisedEnv(t, "--step-delay 400ms --node-delay 5ms"), "API_ADDR="+addr)
	w := startWorker(t, env, "serve", "--api")
	base := "http://" + addr
	waitHTTP(t, base+"/health") // the API listens once ComfyUI is ready
	first := comfyPID(t, w, 0)
	input := testInput(t, map[string]any{"width": 64, "height": 64, "length": 5, "steps": 4})

	// Job 1: ComfyUI dies while it samples.
	crashed := submit(t, base, input)
	waitJob(t, base, crashed, func(j apiJob) bool {
		if j.Status != "IN_QUEUE" && j.Status != "IN_PROGRESS" {
			t.Fatalf("job 1 ended before the crash: %s %s %s", j.Status, j.Error, j.Output)
		}
		return sampling(j.stage())
	})
	kill(t, first)
	killed := time.Now()
	res := waitJob(t, base, crashed, func(j apiJob) bool { return j.Status != "IN_PROGRESS" })
	// Fail fast: the crash is seen at once, not after a websocket or job timeout.
	if d := time.Since(killed); d > 15*time.Second {
		t.Errorf("the job failed %s after ComfyUI died", d.Round(time.Millisecond))
	}
	if res.Status != "FAILED" {
		t.Fatalf("job 1 = %s %s, want FAILED", res.Status, res.Error)
	}
	checkCrashed(t, res.Error, res.Output)

	// The supervisor restarts ComfyUI and job 2 runs on the new process.
	second := comfyPID(t, w, first)
	ok := submit(t, base, input)
	done := waitJob(t, base, ok, func(j apiJob) bool { return j.Status != "IN_QUEUE" && j.Status != "IN_PROGRESS" })
	if done.Status != "COMPLETED" {
		t.Fatalf("job 2 after the restart = %s %s", done.Status, done.Error)
	}
	var out struct {
		Video  string  `json:"video"`
		Frames float64 `json:"frames"`
	}
	if err := json.Unmarshal(done.Output, &out); err != nil || out.Video == "" || out.Frames != 5 {
		t.Errorf("job 2 output: frames %v, %d base64 bytes (%v)", out.Frames, len(out.Video), err)
	}
	if alive(first) {
		t.Errorf("the killed ComfyUI (pid %d) still runs", first)
	}
	// One crash is within COMFY_MAX_RESTARTS (default 3): still healthy.
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Workers struct{ Unhealthy int } `json:"workers"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if health.Workers.Unhealthy != 0 {
		t.Error("/health reports the worker unhealthy after one crash")
	}

	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, w, 30*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	assertGone(t, second)
}

// stopPod reads stopPod from a job-done body.
func stopPod(t testing.TB, rp *runpodtest.Server, id string) bool {
	t.Helper()
	for _, r := range rp.Results(id) {
		if r.Progress || !r.Accepted() {
			continue
		}
		var b struct {
			StopPod bool `json:"stopPod"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatalf("job %s: result is not JSON: %v", id, err)
		}
		return b.StopPod
	}
	t.Fatalf("job %s: no accepted final result", id)
	return false
}

// killWhileSampling waits until job id reports a sampling stage, then kills
// ComfyUI.
func killWhileSampling(ctx context.Context, t testing.TB, rp *runpodtest.Server, id string, pid int) {
	t.Helper()
	err := rp.Wait(ctx, func() bool {
		for _, r := range rp.Progress(id) {
			var b struct {
				Output struct{ Stage string } `json:"output"`
			}
			if json.Unmarshal(r.Body, &b) == nil && sampling(b.Output.Stage) {
				return true
			}
		}
		return rp.Finals(id) > 0
	})
	if err != nil {
		t.Fatalf("job %s never reached sampling: %v", id, err)
	}
	if rp.Finals(id) > 0 {
		t.Fatalf("job %s finished before the crash: %s", id, rp.Results(id)[len(rp.Results(id))-1].Body)
	}
	kill(t, pid)
}

func TestSupervisedComfyCrashesMakeRunPodWorkerUnhealthy(t *testing.T) {
	needFFmpeg(t)
	rp, env := fakeRunPod(t, runpodtest.Options{Hold: 200 * time.Millisecond})
	input := testInput(t, map[string]any{"width": 64, "height": 64, "length": 5, "steps": 4})
	rp.Enqueue(
		runpodtest.Job{ID: "crash-1", Input: input},
		runpodtest.Job{ID: "crash-2", Input: input},
		runpodtest.Job{ID: "never-1", Input: input},
	)
	// One crash is tolerated, the second makes the worker unhealthy.
	env = append(env, supervisedEnv(t, "--step-delay 1s --node-delay 5ms")...)
	env = append(env, "COMFY_MAX_RESTARTS=1")
	w := startWorker(t, env, "serve")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	first := comfyPID(t, w, 0)
	killWhileSampling(ctx, t, rp, "crash-1", first)
	if err := rp.Wait(ctx, func() bool { return rp.Finals("crash-1") > 0 }); err != nil {
		t.Fatalf("no result for crash-1: %v", err)
	}
	r1 := finalResult(t, rp, "crash-1")
	raw1, _ := json.Marshal(r1.Output)
	checkCrashed(t, r1.Error, raw1)
	if stopPod(t, rp, "crash-1") {
		t.Error("crash-1: stopPod after the first crash, want the worker kept (COMFY_MAX_RESTARTS=1)")
	}

	second := comfyPID(t, w, first)
	killWhileSampling(ctx, t, rp, "crash-2", second)
	if err := rp.Wait(ctx, func() bool { return rp.Finals("crash-2") > 0 }); err != nil {
		t.Fatalf("no result for crash-2: %v", err)
	}
	r2 := finalResult(t, rp, "crash-2")
	raw2, _ := json.Marshal(r2.Output)
	checkCrashed(t, r2.Error, raw2)
	if !stopPod(t, rp, "crash-2") {
		t.Error("crash-2: no stopPod after the second crash: the unhealthy worker did not ask to be replaced")
	}

	// The loop ends with ErrUnhealthy: exit 1, no further job taken, ComfyUI stopped.
	if code := waitExit(t, w, 30*time.Second); code != 1 {
		t.Errorf("exit code of the unhealthy worker = %d, want 1", code)
	}
	if rp.Queued() != 1 || rp.Finals("never-1") != 0 {
		t.Errorf("the unhealthy worker took another job (queued %d)", rp.Queued())
	}
	if !strings.Contains(w.stderr.String(), "worker unhealthy") {
		t.Error("the worker's log does not say it is unhealthy")
	}
	// Every ComfyUI is gone, including one restarted after the last crash.
	pids := startedPIDs(w)
	if len(pids) < 2 || pids[0] != first || pids[1] != second {
		t.Errorf("ComfyUI processes in the log = %v, want %d and %d first", pids, first, second)
	}
	for _, pid := range pids {
		assertGone(t, pid)
	}
	if p := rp.Problems(); len(p) > 0 {
		t.Errorf("protocol problems: %v", p)
	}
}

// startedPIDs returns the pids of every ComfyUI the worker's log says it
// started. Read it only after the worker exited.
func startedPIDs(w *worker) []int {
	var pids []int
	for _, line := range strings.Split(w.stderr.String(), "\n") {
		if !strings.Contains(line, "ComfyUI started") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "pid="); ok {
				if pid, err := strconv.Atoi(v); err == nil {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

func TestSupervisedSIGTERMStopsComfy(t *testing.T) {
	needFFmpeg(t)
	rp, env := fakeRunPod(t, runpodtest.Options{Hold: 200 * time.Millisecond})
	rp.Enqueue(runpodtest.Job{ID: "long-1", Input: testInput(t, map[string]any{"width": 64, "height": 64, "length": 5})})
	env = append(env, supervisedEnv(t, "--step-delay 1s --node-delay 5ms")...)
	env = append(env, "SHUTDOWN_GRACE=1s")
	w := startWorker(t, env, "serve")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pid := comfyPID(t, w, 0)
	if err := rp.Wait(ctx, func() bool { return len(rp.Progress("long-1")) > 0 }); err != nil {
		t.Fatalf("job never ran: %v", err)
	}

	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, w, 30*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	assertGone(t, pid)
	if res := finalResult(t, rp, "long-1"); !strings.HasPrefix(res.Error, "CANCELLED: ") {
		t.Errorf("result after SIGTERM past the grace = %q, want CANCELLED", res.Error)
	}
	if strings.Contains(w.stderr.String(), "ComfyUI crashed") {
		t.Error("stopping ComfyUI on purpose was logged as a crash")
	}
}
