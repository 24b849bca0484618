package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
)

// startAPI runs `serve --api` against a fake ComfyUI and returns its base URL.
func startAPI(t testing.TB, o comfytest.Options, env ...string) string {
	t.Helper()
	fake := fakeComfy(t, o)
	addr := freeAddr(t)
	startWorker(t, append([]string{"COMFY_URL=" + fake.URL, "API_ADDR=" + addr, "OUTPUT_DIR=" + t.TempDir()}, env...),
		"serve", "--api")
	base := "http://" + addr
	waitHTTP(t, base+"/health")
	return base
}

// submitRun is a finished `wan22-worker submit`.
type submitRun struct {
	code           int
	stdout, stderr string
}

func (r submitRun) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, tail(r.stderr, 40))
}

func (r submitRun) result(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r)
	}
	return m
}

func submitCmd(t testing.TB, dir string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"submit"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	return cmd, &stdout, stderr
}

// startSubmitJob starts submit on a 64×64, 9-frame job of the given steps
// against url, kills it when the test ends, and waits until stderr says
// until (the job's stage or line).
func startSubmitJob(t *testing.T, dir, url string, steps int, until string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd, _, stderr := submitCmd(t, dir, nil, "--api-url", url, "--image", testImage(t, dir), "--prompt", "x",
		"--width", "64", "--height", "64", "--length", "9", "--steps", strconv.Itoa(steps), "--poll", "50ms", "-o", "o.mp4")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitFor(t, until, 20*time.Second, func() bool { return strings.Contains(stderr.String(), until) })
	return cmd, stderr
}

// submittedID is the job id submit printed ("job <id> submitted to …").
func submittedID(stderr string) string {
	return strings.Fields(stderr[strings.Index(stderr, "job "):])[1]
}

func runSubmit(t testing.TB, dir string, env []string, args ...string) submitRun {
	t.Helper()
	cmd, stdout, stderr := submitCmd(t, dir, env, args...)
	err := cmd.Run()
	return submitRun{code: exitCode(err), stdout: stdout.String(), stderr: stderr.String()}
}

// lockedBuffer is a buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// proxy is a reverse proxy in front of the API that counts requests and can
// answer some of them itself (injected faults).
type proxy struct {
	mu     sync.Mutex
	counts map[string]int // "POST /run" → requests that reached the API
	runs   []string       // the prompts of the /run bodies that reached the API
	// fault, when set, may answer a request instead of the API: it returns
	// an HTTP status (or -1 to reset the connection, -2 to never answer),
	// 0 to pass it on.
	fault func(method, path string, n int) int
	seen  map[string]int // every request, faults included
}

func newProxy(t testing.TB, target string) (*proxy, string) {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &proxy{counts: map[string]int{}, seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := r.Method + " " + routeOf(r.URL.Path)
		p.mu.Lock()
		p.seen[route]++
		n := p.seen[route]
		f := p.fault
		p.mu.Unlock()
		if f != nil {
			switch code := f(r.Method, routeOf(r.URL.Path), n); {
			case code == -2: // no answer until the client gives up
				<-r.Context().Done()
				return
			case code == -1:
				hj, _ := w.(http.Hijacker)
				c, _, _ := hj.Hijack()
				c.Close()
				return
			case code > 0:
				w.WriteHeader(code)
				_, _ = w.Write([]byte(`{"error":"injected"}`))
				return
			}
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.counts[route]++
		if route == "POST /run" {
			var j struct {
				Input struct{ Prompt string } `json:"input"`
			}
			_ = json.Unmarshal(body, &j)
			p.runs = append(p.runs, j.Input.Prompt)
		}
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// routeOf is the route of a path: /status/<id> → /status.
func routeOf(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	return "/" + parts[0]
}

func (p *proxy) count(route string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[route]
}

func (p *proxy) prompts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.runs...)
}

func TestSubmitInline(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 20 * time.Millisecond})
	px, url := newProxy(t, base)
	dir := t.TempDir()
	r := runSubmit(t, dir, nil, "--api-url", url, "--image", testImage(t, dir), "--prompt", "a lighthouse",
		"--width", "64", "--height", "48", "--length", "9", "--seed", "12", "--last-frame", "--poll", "50ms", "-o", "clip.mp4")
	if r.code != 0 {
		t.Fatalf("submit: %s", r)
	}
	res := r.result(t)
	out := filepath.Join(dir, "clip.mp4")
	if _, ok := res["video"]; ok {
		t.Error("the result JSON carries the base64 video")
	}
	if _, ok := res["last_frame"]; ok {
		t.Error("the result JSON carries the base64 last frame")
	}
	if res["video_path"] != out || res["frames"] != 9.0 || res["width"] != 64.0 || res["seed"] != 12.0 {
		t.Errorf("result = %v", res)
	}
	if got := fileSHA256(t, out); got != res["sha256"] {
		t.Errorf("sha256 of the file %s, result %v", got, res["sha256"])
	}
	if n := ffprobeFrames(t, out); n != 9 {
		t.Errorf("%d frames", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "clip.last.png")); err != nil {
		t.Errorf("last frame: %v", err)
	}
	id, _ := res["job_id"].(string)
	for _, want := range []string{"job " + id + " submitted", "waited for a worker", "sampling_low", "step 6/6"} {
		if id == "" || !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if px.count("POST /run") != 1 {
		t.Errorf("%d /run requests", px.count("POST /run"))
	}
}

func TestSubmitBadLocalImageSendsNothing(t *testing.T) {
	base := startAPI(t, comfytest.Options{})
	px, url := newProxy(t, base)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.png")
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runSubmit(t, dir, nil, "--api-url", url, "--image", bad, "--prompt", "x", "--length", "80", "-o", "o.mp4")
	if r.code != 2 {
		t.Fatalf("want exit 2: %s", r)
	}
	// Every problem at once: the image and the length.
	for _, want := range []string{"IMAGE_INVALID", "options.length", "hint:", "nothing was sent"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	px.mu.Lock()
	defer px.mu.Unlock()
	if len(px.seen) != 0 {
		t.Errorf("requests were sent: %v", px.seen)
	}
}

func TestSubmitTypedJobError(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 5 * time.Millisecond, Fault: comfytest.Fault{Kind: comfytest.FaultOOM, At: comfytest.Point{Step: 1}}})
	dir := t.TempDir()
	r := runSubmit(t, dir, nil, "--api-url", base, "--image", testImage(t, dir), "--prompt", "x",
		"--width", "64", "--height", "64", "--length", "9", "--poll", "50ms", "-o", "o.mp4")
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	res := r.result(t)
	e, _ := res["output"].(map[string]any)["error"].(map[string]any)
	if e["code"] != "OUT_OF_MEMORY" || e["hint"] == "" {
		t.Errorf("error = %v", res)
	}
	if !strings.Contains(r.stderr, "submit: OUT_OF_MEMORY: ") || !strings.Contains(r.stderr, "hint: ") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "o.mp4")); err == nil {
		t.Error("a video was written for a failed job")
	}
}

// An input error found by the endpoint (its limits are lower than this
// machine's) exits 2, as one found locally does.
func TestSubmitEndpointInputError(t *testing.T) {
	base := startAPI(t, comfytest.Options{}, "MAX_FRAMES=5")
	dir := t.TempDir()
	r := runSubmit(t, dir, nil, "--api-url", base, "--image", testImage(t, dir), "--prompt", "x",
		"--width", "64", "--height", "64", "--length", "9", "--poll", "20ms", "-o", "o.mp4")
	if r.code != 2 {
		t.Fatalf("want exit 2: %s", r)
	}
	if !strings.Contains(r.stderr, "submit: INVALID_INPUT: ") || !strings.Contains(r.stderr, "field: options.length") ||
		!strings.Contains(r.stderr, "hint: ") || !strings.Contains(r.stdout, `"code": "INVALID_INPUT"`) {
		t.Errorf("%s", r)
	}
}

func TestSubmitCancelBySignal(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 200 * time.Millisecond})
	dir := t.TempDir()
	cmd, stderr := startSubmitJob(t, dir, base, 40, "sampling_high")
	id := submittedID(stderr.String())
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(cmd.Wait()); code != 130 {
		t.Errorf("exit %d, want 130\n%s", code, stderr.String())
	}
	for _, want := range []string{"cancelling job " + id + " on the endpoint", "was cancelled on the endpoint"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	// The endpoint has the job cancelled.
	waitFor(t, "CANCELLED", 10*time.Second, func() bool {
		resp, err := http.Get(base + "/status/" + id)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct{ Status string }
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return st.Status == "CANCELLED"
	})
}

func TestSubmitSecondInterruptQuits(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 200 * time.Millisecond})
	px, url := newProxy(t, base)
	px.fault = func(method, route string, n int) int {
		if route == "/cancel" {
			return -2 // the endpoint never answers the cancel
		}
		return 0
	}
	dir := t.TempDir()
	cmd, stderr := startSubmitJob(t, dir, url, 40, "sampling_high")
	_ = cmd.Process.Signal(syscall.SIGINT)
	waitFor(t, "the cancel", 10*time.Second, func() bool { return strings.Contains(stderr.String(), "Ctrl-C again to quit at once") })
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	code := exitCode(cmd.Wait())
	if code != 130 || time.Since(start) > 5*time.Second {
		t.Errorf("second Ctrl-C: exit %d after %s\n%s", code, time.Since(start), stderr.String())
	}
	if !strings.Contains(stderr.String(), "may still be running") || !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("no advice to resume:\n%s", stderr.String())
	}
}

func TestSubmitAuth(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: time.Millisecond}, "API_TOKEN=s3cret")
	dir := t.TempDir()
	args := []string{"--api-url", base, "--image", testImage(t, dir), "--prompt", "x",
		"--width", "64", "--height", "64", "--length", "5", "--poll", "50ms", "-o", "o.mp4"}
	if r := runSubmit(t, dir, []string{"API_TOKEN=s3cret"}, args...); r.code != 0 {
		t.Errorf("with the token: %s", r)
	}
	r := runSubmit(t, dir, []string{"API_TOKEN=wrong"}, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "HTTP 401") || !strings.Contains(r.stderr, "API_TOKEN") {
		t.Errorf("with a wrong token: %s", r)
	}
}

func TestSubmitRetriesThroughFaults(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 10 * time.Millisecond})
	px, url := newProxy(t, base)
	px.fault = func(method, route string, n int) int {
		switch {
		case route == "/run" && n == 1:
			return http.StatusTooManyRequests
		case route == "/run" && n == 2:
			return http.StatusServiceUnavailable
		case route == "/status" && n == 2:
			return http.StatusBadGateway
		case route == "/status" && n == 3:
			return -1 // a reset connection
		}
		return 0
	}
	dir := t.TempDir()
	r := runSubmit(t, dir, nil, "--api-url", url, "--image", testImage(t, dir), "--prompt", "x",
		"--width", "64", "--height", "64", "--length", "9", "--poll", "50ms", "-o", "o.mp4")
	if r.code != 0 {
		t.Fatalf("submit: %s", r)
	}
	if n := px.count("POST /run"); n != 1 {
		t.Errorf("%d /run requests reached the API, want 1", n)
	}
	for _, want := range []string{"HTTP 429", "HTTP 503", "HTTP 502", "retry 1"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if got := fileSHA256(t, filepath.Join(dir, "o.mp4")); got != r.result(t)["sha256"] {
		t.Errorf("sha256 %s", got)
	}
}

func TestSubmitResume(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 100 * time.Millisecond})
	dir := t.TempDir()
	// A client that dies (kill -9) after the submission leaves the job running.
	cmd, stderr := startSubmitJob(t, dir, base, 10, " submitted to ")
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	id := submittedID(stderr.String())

	r := runSubmit(t, dir, nil, "--api-url", base, "--resume", id, "--last-frame", "--poll", "50ms", "-o", "resumed.mp4")
	if r.code != 0 {
		t.Fatalf("submit --resume: %s", r)
	}
	res := r.result(t)
	if res["job_id"] != id || res["frames"] != 9.0 {
		t.Errorf("result = %v", res)
	}
	if got := fileSHA256(t, filepath.Join(dir, "resumed.mp4")); got != res["sha256"] {
		t.Errorf("sha256 %s, want %v", got, res["sha256"])
	}
	// Attaching to a finished job works too.
	if r := runSubmit(t, dir, nil, "--api-url", base, "--resume", id, "-o", "again.mp4"); r.code != 0 {
		t.Errorf("second --resume: %s", r)
	}
	// An unknown job is a clear error.
	r = runSubmit(t, dir, nil, "--api-url", base, "--resume", "no-such-job", "-o", "x.mp4")
	if r.code != 1 || !strings.Contains(r.stderr, "HTTP 404") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("unknown job: %s", r)
	}
}

func TestSubmitS3(t *testing.T) {
	needFFmpeg(t)
	endpoint := os.Getenv("WAN22_TEST_S3_ENDPOINT")
	if endpoint == "" {
		t.Skip("WAN22_TEST_S3_ENDPOINT not set: start the test server with eval \"$(scripts/s3-test-server.sh start)\"")
	}
	access, secret := os.Getenv("WAN22_TEST_S3_ACCESS_KEY"), os.Getenv("WAN22_TEST_S3_SECRET_KEY")
	region := os.Getenv("WAN22_TEST_S3_REGION")
	if region == "" {
		region = "us-east-1"
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	bucket := "wan22-submit-" + hex.EncodeToString(rnd[:])
	c := s3.New(s3.Options{Region: region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	t.Cleanup(func() {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err == nil {
			for _, o := range out.Contents {
				_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			}
		}
		_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	})
	base := startAPI(t, comfytest.Options{StepDelay: 5 * time.Millisecond},
		"BUCKET_ENDPOINT_URL="+endpoint+"/"+bucket, "BUCKET_ACCESS_KEY_ID="+access,
		"BUCKET_SECRET_ACCESS_KEY="+secret, "BUCKET_REGION="+region)
	dir := t.TempDir()
	in := testInput(t, map[string]any{"width": 64, "height": 64, "length": 9, "output": "s3", "last_frame": true})
	job, _ := json.Marshal(map[string]any{"input": in})
	if err := os.WriteFile(filepath.Join(dir, "job.json"), job, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runSubmit(t, dir, nil, "--api-url", base, "--poll", "50ms", "-o", "s3.mp4", "job.json")
	if r.code != 0 {
		t.Fatalf("submit: %s", r)
	}
	res := r.result(t)
	if u, _ := res["video_url"].(string); !strings.HasPrefix(u, endpoint) {
		t.Errorf("video_url = %v", res["video_url"])
	}
	if got := fileSHA256(t, filepath.Join(dir, "s3.mp4")); got != res["sha256"] {
		t.Errorf("downloaded sha256 %s, result %v", got, res["sha256"])
	}
	if n := ffprobeFrames(t, filepath.Join(dir, "s3.mp4")); n != 9 {
		t.Errorf("%d frames", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "s3.last.png")); err != nil {
		t.Errorf("last frame from last_frame_url: %v", err)
	}
}

func TestSubmitChain(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 5 * time.Millisecond})
	px, url := newProxy(t, base)
	dir := t.TempDir()
	const length = 13
	prompts := filepath.Join(dir, "prompts.txt")
	if err := os.WriteFile(prompts, []byte("a lighthouse\n\nthe light turns on\nnight falls\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runSubmit(t, dir, nil, "--api-url", url, "--image", testImage(t, dir), "--prompts", prompts,
		"--width", "64", "--height", "64", "--length", strconv.Itoa(length), "--seed", "100", "--poll", "50ms", "-o", "long.mp4")
	if r.code != 0 {
		t.Fatalf("submit: %s", r)
	}
	out := filepath.Join(dir, "long.mp4")
	if n := ffprobeFrames(t, out); n != 3*length-2 {
		t.Errorf("joined video has %d frames, want %d", n, 3*length-2)
	}
	if got := px.prompts(); strings.Join(got, "|") != "a lighthouse|the light turns on|night falls" {
		t.Errorf("jobs sent: %q", got)
	}
	var res struct {
		Clips []map[string]any `json:"clips"`
	}
	_ = json.Unmarshal([]byte(r.stdout), &res)
	for k, c := range res.Clips {
		if c["seed"] != float64(100+k) {
			t.Errorf("clip %d seed %v", k+1, c["seed"])
		}
	}
	// Without --keep-clips, no clip is left.
	if m, _ := filepath.Glob(filepath.Join(dir, "long.clip*")); len(m) != 0 {
		t.Errorf("clips left: %v", m)
	}
}

func TestSubmitChainFailedClipResumes(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 5 * time.Millisecond})
	px, url := newProxy(t, base)
	// The second clip's /run fails for good (every retry).
	px.fault = func(method, route string, n int) int {
		if route == "/run" && n >= 2 {
			return http.StatusBadRequest
		}
		return 0
	}
	dir := t.TempDir()
	args := []string{"--api-url", url, "--image", testImage(t, dir), "--prompt", "one", "--prompt", "two", "--prompt", "three",
		"--width", "64", "--height", "64", "--length", "9", "--poll", "50ms", "-o", "long.mp4"}
	r := runSubmit(t, dir, nil, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "clip 2 of 3 failed") || !strings.Contains(r.stderr, "--from-clip 2") {
		t.Fatalf("want a failed chain with a resume line: %s", r)
	}
	for _, f := range []string{"long.clip1.mp4", "long.clip1.last.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("kept: %v", err)
		}
	}
	px.mu.Lock()
	px.fault = nil
	px.mu.Unlock()
	r = runSubmit(t, dir, nil, append(args, "--from-clip", "2")...)
	if r.code != 0 {
		t.Fatalf("resumed chain: %s", r)
	}
	if got := px.prompts(); strings.Join(got, "|") != "one|two|three" {
		t.Errorf("jobs that reached the API: %q (clip 1 must not run again)", got)
	}
	if n := ffprobeFrames(t, filepath.Join(dir, "long.mp4")); n != 3*9-2 {
		t.Errorf("%d frames", n)
	}
}

func TestSubmitBatchInterruptedAndRerun(t *testing.T) {
	needFFmpeg(t)
	base := startAPI(t, comfytest.Options{StepDelay: 60 * time.Millisecond})
	px, url := newProxy(t, base)
	dir := t.TempDir()
	img := testImage(t, dir)
	var lines []string
	const jobs = 6
	for i := 1; i <= jobs; i++ {
		in := map[string]any{"prompt": fmt.Sprintf("job %d", i), "image": filepath.Base(img),
			"options": map[string]any{"width": 64, "height": 64, "length": 5, "steps": 4}}
		b, _ := json.Marshal(map[string]any{"input": in})
		lines = append(lines, string(b))
	}
	// One line fails the local checks and is never sent.
	lines = append(lines, `{"input": {"prompt": "bad", "image": "in.png", "options": {"lenght": 9}}}`)
	if err := os.WriteFile(filepath.Join(dir, "jobs.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--api-url", url, "--batch", "jobs.jsonl", "--out-dir", "out", "--concurrency", "2", "--poll", "50ms"}
	cmd, _, stderr := submitCmd(t, dir, nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	// Interrupt once two jobs have finished and two more are running.
	waitFor(t, "two finished jobs", 30*time.Second, func() bool { return strings.Count(stderr.String(), "COMPLETED in") >= 2 })
	waitFor(t, "four submitted jobs", 30*time.Second, func() bool { return px.count("POST /run") >= 4 })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(cmd.Wait()); code != 130 {
		t.Fatalf("interrupted batch: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "run the same command again") {
		t.Errorf("no re-run advice:\n%s", stderr.String())
	}
	state, err := os.ReadFile(filepath.Join(dir, "out", "batch-state.json"))
	if err != nil || !strings.Contains(string(state), `"SUBMITTED"`) {
		t.Fatalf("state file after the interruption (%v):\n%s", err, state)
	}
	before := px.count("POST /run")

	r := runSubmit(t, dir, nil, args...)
	if r.code != 1 { // the bad line fails
		t.Fatalf("re-run: %s", r)
	}
	// Every job sent once: none twice, none lost.
	got := px.prompts()
	if len(got) != jobs {
		t.Errorf("%d jobs sent in all (%d before the re-run), want %d: %q", len(got), before, jobs, got)
	}
	seen := map[string]int{}
	for _, p := range got {
		seen[p]++
	}
	for i := 1; i <= jobs; i++ {
		p := fmt.Sprintf("job %d", i)
		if seen[p] != 1 {
			t.Errorf("%q sent %d times", p, seen[p])
		}
		name := filepath.Join(dir, "out", fmt.Sprintf("job-%04d", i))
		var res map[string]any
		b, err := os.ReadFile(name + ".json")
		if err != nil || json.Unmarshal(b, &res) != nil {
			t.Errorf("%s.json: %v", name, err)
			continue
		}
		if fileSHA256(t, name+".mp4") != res["sha256"] {
			t.Errorf("%s.mp4 does not match its result", name)
		}
	}
	if !strings.Contains(r.stderr, "re-attaching to job") {
		t.Errorf("the re-run did not re-attach:\n%s", r.stderr)
	}
	for _, want := range []string{"ok                        6", "failed INVALID_INPUT      1", "total                     7", "GPU time"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	// A third run has nothing left to do.
	r = runSubmit(t, dir, nil, args...)
	if len(px.prompts()) != jobs || !strings.Contains(r.stderr, "7 lines were finished by an earlier run") {
		t.Errorf("third run: %s", r)
	}
}
