package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/draw"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
	"github.com/wan22-worker/wan22-worker/internal/runpod/runpodtest"
)

// benchJobs is the number of jobs one benchmark run sends through the
// worker (WAN22_BENCH_JOBS overrides it).
func benchJobs() int {
	if n, err := strconv.Atoi(os.Getenv("WAN22_BENCH_JOBS")); err == nil && n > 0 {
		return n
	}
	return 300
}

// BenchmarkWorkerOverhead runs jobs through the real worker binary, taken from
// the fake RunPod job server and run on the fake ComfyUI in its zero-latency
// mode (a pre-made MP4 of the given size, no per-step delay), and reports the
// worker's own cost per job — everything between taking the job and posting
// its result except ComfyUI's queue and execution time — the gap between
// posting a result and asking for the next job, and the worker's peak RSS.
// Targets (DESIGN.md §10): overhead median < 25 ms for an 832×832 PNG in and
// a 5 MB MP4 out inline; gap < 2 ms; RSS < 60 MB delivering 10 MB inline.
// It also reports the p50/p95 of each stage of the overhead (validate,
// upload, deliver, post: from the worker's timings_ms, post being the rest
// of the span, mostly sending the result), and the CPU per job of the worker
// process and of this process, which runs the fake ComfyUI (decoding each
// uploaded image like LoadImage) and the fake RunPod server.
func BenchmarkWorkerOverhead(b *testing.B) {
	needFFmpeg(b)
	for _, size := range []int{11 << 10, 5 << 20, 10 << 20} {
		name := fmt.Sprintf("inline_%dMB", size>>20)
		if size < 1<<20 {
			name = fmt.Sprintf("inline_%dKB", size>>10)
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				benchBatch(b, size, benchJobs())
			}
		})
	}
}

func benchBatch(b *testing.B, videoSize, jobs int) {
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	spec := comfytest.VideoSpec{Width: 832, Height: 832, Frames: 81, FPS: 16, CRF: 30}
	if videoSize < 1<<20 {
		spec = comfytest.VideoSpec{Width: 64, Height: 64, Frames: 9, FPS: 16, CRF: 40}
	}
	small, err := comfytest.MakeMP4(ctx, "ffmpeg", spec)
	if err != nil {
		b.Fatal(err)
	}
	fake := fakeComfy(b, comfytest.Options{Video: comfytest.PadMP4(small, videoSize)})
	rp := runpodtest.New(runpodtest.Options{Hold: 100 * time.Millisecond})
	clock := &answerClock{next: rp, taken: map[string]time.Time{}, done: map[string]time.Time{}}
	srv := httptest.NewServer(clock)
	b.Cleanup(srv.Close)
	env := append(rp.Templates(srv.URL).Env(), "RUNPOD_POD_ID=pod-bench", "RUNPOD_AI_API_KEY=bench-key")
	// An 832×832 PNG in, as the target says (test_input.json's image, scaled).
	in := testInput(b, map[string]any{"width": 832, "height": 832, "length": 81, "seed": 1})
	in["image"] = scaledPNG(b, in["image"].(string), 832, 832)
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%04d", i)
		rp.Enqueue(runpodtest.Job{ID: ids[i], Input: in})
	}
	// Inline must fit a 10 MB video: raise the cap for this measurement.
	selfCPU := processCPU(os.Getpid())
	w := startWorker(b, append(env, "COMFY_URL="+fake.URL, "OUTPUT_DIR="+b.TempDir(), "LOG_LEVEL=warn",
		"INLINE_MAX_BYTES=20000000"), "serve")
	if err := rp.Wait(ctx, func() bool {
		n := 0
		for _, id := range ids {
			n += rp.Finals(id)
		}
		return n == jobs
	}); err != nil {
		b.Fatalf("not every result was posted: %v", err)
	}
	rss := vmHWM(w.cmd.Process.Pid)
	workerCPU := processCPU(w.cmd.Process.Pid)
	fakesCPU := processCPU(os.Getpid()) - selfCPU

	// Times are when the fake finished answering: the worker's clock starts
	// when it has the job and stops when its result was accepted, so the
	// fake's own work (reading and checking a 7 MB body) is not counted.
	allTakes := rp.Requests(runpodtest.Take)
	var overhead, gaps []float64
	stages := map[string]float64{}
	split := map[string][]float64{}
	for _, id := range ids {
		var done time.Time
		var res struct {
			Output struct {
				Timings map[string]float64 `json:"timings_ms"`
			} `json:"output"`
			Error string `json:"error"`
		}
		var posted time.Time
		for _, r := range rp.Results(id) {
			if !r.Progress && r.Accepted() {
				posted = r.At // the whole body received, before the fake checks it
				if err := json.Unmarshal(r.Body, &res); err != nil {
					b.Fatal(err)
				}
			}
		}
		if res.Error != "" {
			b.Fatalf("job %s failed: %s", id, res.Error)
		}
		for k, v := range res.Output.Timings {
			stages[k] += v / float64(jobs)
		}
		comfyMS := res.Output.Timings["queue"] + res.Output.Timings["inference"]
		taken, done := clock.times(id)
		span := float64(posted.Sub(taken).Microseconds()) / 1000
		overhead = append(overhead, span-comfyMS)
		for _, k := range []string{"validate", "upload", "deliver"} {
			split[k] = append(split[k], res.Output.Timings[k])
		}
		split["post"] = append(split["post"], span-res.Output.Timings["total"])
		// The next take after this result.
		for _, t := range allTakes {
			if t.At.After(done) {
				gaps = append(gaps, float64(t.At.Sub(done).Microseconds())/1000)
				break
			}
		}
	}
	slices.Sort(overhead)
	slices.Sort(gaps)
	b.ReportMetric(pct(overhead, 50), "overhead-ms-p50")
	b.ReportMetric(pct(overhead, 95), "overhead-ms-p95")
	b.ReportMetric(pct(gaps, 50), "gap-ms-p50")
	b.ReportMetric(pct(gaps, 95), "gap-ms-p95")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
	fmt.Printf("worker overhead over %d jobs (%d MB video inline): p50 %.1f ms, p95 %.1f ms; result→next take p50 %.2f ms, p95 %.2f ms; peak RSS %.1f MB\n",
		jobs, videoSize>>20, pct(overhead, 50), pct(overhead, 95), pct(gaps, 50), pct(gaps, 95), float64(rss)/(1<<20))
	fmt.Printf("mean timings_ms per stage: %v\n", stages)
	var line strings.Builder
	for _, k := range []string{"validate", "upload", "deliver", "post"} {
		slices.Sort(split[k])
		b.ReportMetric(pct(split[k], 50), k+"-ms-p50")
		fmt.Fprintf(&line, " %s p50 %.1f ms p95 %.1f ms;", k, pct(split[k], 50), pct(split[k], 95))
	}
	perJob := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(jobs) }
	b.ReportMetric(perJob(workerCPU), "worker-cpu-ms/job")
	b.ReportMetric(perJob(fakesCPU), "fakes-cpu-ms/job")
	fmt.Printf("stages:%s CPU per job: worker %.1f ms, fake ComfyUI + fake RunPod %.1f ms\n", line.String(), perJob(workerCPU), perJob(fakesCPU))
	_ = w.cmd.Process.Signal(os.Interrupt)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
	}
}

// scaledPNG returns the base64 PNG b64 scaled to w×h, as base64.
func scaledPNG(b *testing.B, b64 string, w, h int) string {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		b.Fatal(err)
	}
	src, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	if err := png.Encode(&buf, dst); err != nil {
		b.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// answerClock wraps the fake RunPod server and notes when it finished
// answering the take that handed out each job and the last job-done post of
// each job (the final result comes last).
type answerClock struct {
	next  http.Handler
	mu    sync.Mutex
	taken map[string]time.Time
	done  map[string]time.Time
}

func (c *answerClock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &bodyTap{ResponseWriter: w}
	c.next.ServeHTTP(rec, r)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.Contains(r.URL.Path, "/job-take/"):
		var job struct{ ID string }
		if json.Unmarshal(rec.body, &job) == nil && job.ID != "" {
			c.taken[job.ID] = now
		}
	case strings.Contains(r.URL.Path, "/job-done/"):
		c.done[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]] = now
	}
}

func (c *answerClock) times(id string) (taken, done time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.taken[id], c.done[id]
}

// bodyTap keeps a copy of a (small) response body.
type bodyTap struct {
	http.ResponseWriter
	body []byte
}

func (t *bodyTap) Write(p []byte) (int, error) {
	if len(t.body) < 1<<16 {
		t.body = append(t.body, p...)
	}
	return t.ResponseWriter.Write(p)
}

// processCPU is the user plus system CPU time pid has used so far (from
// /proc/<pid>/stat; 0 where that cannot be read).
func processCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func pct(sorted []float64, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted) - 1) * p / 100
	return sorted[i]
}
