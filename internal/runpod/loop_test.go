package runpod_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/progress"
	"github.com/wan22-worker/wan22-worker/internal/runpod"
	"github.com/wan22-worker/wan22-worker/internal/runpod/runpodtest"
	"github.com/wan22-worker/wan22-worker/internal/worker"
)

func TestLoopRunsJobsAndPostsResults(t *testing.T) {
	hs := startLoop(t, runpodtest.Options{}, newScripted(nil), nil)
	hs.fake.Enqueue(runpodtest.Job{ID: "job-1", Input: map[string]any{"prompt": "a"}},
		runpodtest.Job{ID: "job-2", Input: map[string]any{"prompt": "b"}})
	hs.waitResults("job-1", "job-2")
	hs.checkClean("job-1", "job-2")

	if got := hs.h.Calls(); len(got) != 2 || got[0] != "job-1" || got[1] != "job-2" {
		t.Errorf("handler calls = %v", got)
	}
	for _, take := range hs.fake.Requests(runpodtest.Take) {
		if take.Pod != "pod-1" {
			t.Errorf("take path pod = %q, want pod-1 ($ID replaced by the worker id)", take.Pod)
		}
		if take.Query.Get("gpu") != "NVIDIA RTX A5000" || take.Query.Get("job_in_progress") != "0" {
			t.Errorf("take query = %q", take.RawQuery)
		}
		if take.Header.Get("Authorization") != "rp-key" {
			t.Errorf("take Authorization = %q, want the raw key", take.Header.Get("Authorization"))
		}
		if take.Header.Get("Content-Type") != "application/json" {
			t.Errorf("take Content-Type = %q", take.Header.Get("Content-Type"))
		}
		if ua := take.Header.Get("User-Agent"); !strings.HasPrefix(ua, "wan22-worker/test ") {
			t.Errorf("User-Agent = %q", ua)
		}
	}
	post := hs.fake.Results("job-1")[0]
	if post.Pod != "pod-1" || post.JobID != "job-1" {
		t.Errorf("job-done path: pod %q job %q", post.Pod, post.JobID)
	}
	if !strings.HasSuffix(post.RawQuery, "&isStream=false") || post.Query.Get("gpu") == "" {
		t.Errorf("job-done query = %q", post.RawQuery)
	}
	if ct := post.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("job-done Content-Type = %q, want the SDK's", ct)
	}
	if cs := post.Header.Get("charset"); cs != "utf-8" {
		t.Errorf("job-done charset header = %q", cs)
	}
	if id := post.Header.Get("X-Request-ID"); id != "job-1" {
		t.Errorf("job-done X-Request-ID = %q, want the job id", id)
	}
	want, _ := json.Marshal(map[string]any{"output": result("job-1")})
	if string(post.Body) != string(want) {
		t.Errorf("job-done body\n got %s\nwant %s", post.Body, want)
	}
}

func TestLoopSurvivesFaults(t *testing.T) {
	tests := []struct {
		name   string
		route  runpodtest.Route
		faults []runpodtest.Fault
	}{
		{"take 500s", runpodtest.Take, []runpodtest.Fault{runpodtest.Status(500), runpodtest.Status(503)}},
		{"take reset", runpodtest.Take, []runpodtest.Fault{runpodtest.Reset(), runpodtest.Reset()}},
		{"take 429", runpodtest.Take, []runpodtest.Fault{runpodtest.Status(429)}},
		{"take slow", runpodtest.Take, []runpodtest.Fault{runpodtest.Delay(150 * time.Millisecond)}},
		{"take 400 flashboot", runpodtest.Take, []runpodtest.Fault{runpodtest.Status(400)}},
		{"take 204", runpodtest.Take, []runpodtest.Fault{runpodtest.Status(204)}},
		{"done 5xx", runpodtest.Done, []runpodtest.Fault{runpodtest.Status(502), runpodtest.Status(500), runpodtest.Status(503)}},
		{"done reset", runpodtest.Done, []runpodtest.Fault{runpodtest.Reset(), runpodtest.Reset()}},
		{"done 429", runpodtest.Done, []runpodtest.Fault{runpodtest.Status(429)}},
		{"done slow", runpodtest.Done, []runpodtest.Fault{runpodtest.Delay(100 * time.Millisecond)}},
		{"ping 500 and reset", runpodtest.Ping, []runpodtest.Fault{runpodtest.Status(500), runpodtest.Reset(), runpodtest.Status(429)}},
		{"stop 500 and garbage", runpodtest.Stop, []runpodtest.Fault{runpodtest.Status(500), runpodtest.Respond(200, "application/json", "{not json")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := startLoop(t, runpodtest.Options{}, newScripted(nil), nil)
			hs.fake.Fail(tc.route, tc.faults...)
			hs.fake.Enqueue(runpodtest.Job{ID: "j1", Input: map[string]any{}}, runpodtest.Job{ID: "j2", Input: map[string]any{}})
			hs.waitResults("j1", "j2")
			hs.checkClean("j1", "j2")
			for _, id := range []string{"j1", "j2"} {
				if code := errorCode(t, hs.fake.Results(id)[0]); code != "" {
					t.Errorf("job %s failed with %s; faults must be retried, not reported", id, code)
				}
			}
		})
	}
}

func TestTakeBackoffIsNotAHotLoop(t *testing.T) {
	// Lower bounds only: the loop must wait between failed takes.
	const fails = 5
	hs := startLoop(t, runpodtest.Options{}, newScripted(nil), func(o *runpod.Options) {
		o.RetryMin, o.RetryMax, o.RateLimitWait = 20*time.Millisecond, 20*time.Millisecond, 80*time.Millisecond
	})
	faults := make([]runpodtest.Fault, fails)
	for i := range faults {
		faults[i] = runpodtest.Status(500)
	}
	faults = append(faults, runpodtest.Status(429))
	hs.fake.Fail(runpodtest.Take, faults...)
	hs.fake.Enqueue(runpodtest.Job{ID: "j", Input: map[string]any{}})
	hs.waitResults("j")
	takes := hs.fake.Requests(runpodtest.Take)
	if len(takes) < fails+2 {
		t.Fatalf("only %d takes", len(takes))
	}
	for i := 1; i <= fails; i++ {
		if gap := takes[i].At.Sub(takes[i-1].At); gap < 10*time.Millisecond {
			t.Errorf("take %d came %v after a 500; want the backoff (≥ 10ms)", i, gap)
		}
	}
	if gap := takes[fails+1].At.Sub(takes[fails].At); gap < 80*time.Millisecond {
		t.Errorf("take after 429 came %v later; want ≥ RateLimitWait", gap)
	}
}

func TestMalformedJobs(t *testing.T) {
	tests := []struct {
		name       string
		job        runpodtest.Job
		wantResult string // job id for which an INVALID_INPUT result must be posted
	}{
		{"not json", runpodtest.Job{Raw: []byte("{oops")}, ""},
		{"no id", runpodtest.Job{Raw: []byte(`{"input":{"prompt":"x"}}`)}, ""},
		{"numeric id", runpodtest.Job{Raw: []byte(`{"id":12,"input":{}}`)}, ""},
		{"no input", runpodtest.Job{ID: "bad-1", Raw: []byte(`{"id":"bad-1"}`)}, "bad-1"},
		{"null input", runpodtest.Job{ID: "bad-2", Raw: []byte(`{"id":"bad-2","input":null}`)}, "bad-2"},
		{"html answer", runpodtest.Job{Raw: []byte("<html>gateway</html>"), ContentType: "text/html"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := startLoop(t, runpodtest.Options{}, newScripted(nil), nil)
			hs.fake.Enqueue(tc.job, runpodtest.Job{ID: "good", Input: map[string]any{}})
			hs.waitResults("good")
			if tc.wantResult != "" {
				hs.waitResults(tc.wantResult)
				if code := errorCode(t, hs.fake.Results(tc.wantResult)[0]); code != "INVALID_INPUT" {
					t.Errorf("result code = %q, want INVALID_INPUT", code)
				}
			}
			if got := hs.h.Calls(); len(got) != 1 || got[0] != "good" {
				t.Errorf("handler ran %v, want only the good job", got)
			}
			hs.checkClean("good", tc.wantResult)
		})
	}
}

func TestJobWithWrongContentTypeStillRuns(t *testing.T) {
	hs := startLoop(t, runpodtest.Options{}, newScripted(nil), nil)
	hs.fake.Enqueue(runpodtest.Job{ID: "x", Raw: []byte(`{"id":"x","input":{"prompt":"p"}}`), ContentType: "text/plain"})
	hs.waitResults("x")
	hs.checkClean("x")
}

func TestDuplicateJobIDs(t *testing.T) {
	hs := startLoop(t, runpodtest.Options{}, newScripted(nil), nil)
	// Handed out twice in a row (a platform retry): run and post each time.
	hs.fake.Enqueue(runpodtest.Job{ID: "dup", Input: map[string]any{}}, runpodtest.Job{ID: "dup", Input: map[string]any{}})
	hs.wait("two results", func() bool { return len(hs.fake.Results("dup")) == 2 })
	// The same id twice in one batch: run once, post once.
	hs.fake.Enqueue(runpodtest.Job{ID: "batch", Raw: []byte(`[{"id":"batch","input":{}},{"id":"batch","input":{}}]`)},
		runpodtest.Job{ID: "after", Input: map[string]any{}})
	hs.waitResults("batch", "after")
	hs.checkClean("dup", "batch", "after")
	n := 0
	for _, id := range hs.h.Calls() {
		if id == "batch" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("batch duplicate ran %d times, want 1", n)
	}
}

func TestStopSignalCancelsJobAndPostsNothing(t *testing.T) {
	var cancelled atomic.Bool
	h := newScripted(func(ctx context.Context, id string, in json.RawMessage, p progress.Func) (*worker.Result, error) {
		if id != "long" {
			return succeed(ctx, id, in, p)
		}
		<-ctx.Done()
		cancelled.Store(true)
		return nil, apperr.Wrap(apperr.Cancelled, ctx.Err(), "interrupted", "")
	})
	hs := startLoop(t, runpodtest.Options{}, h, nil)
	hs.fake.Enqueue(runpodtest.Job{ID: "long", Input: map[string]any{}})
	hs.waitStarted("long")
	hs.fake.StopJobs("long")
	hs.fake.Enqueue(runpodtest.Job{ID: "next", Input: map[string]any{}})
	hs.waitResults("next")
	if !cancelled.Load() {
		t.Error("the stopped job's context was not cancelled")
	}
	if n := len(hs.fake.Requests(runpodtest.Done)); n != 1 {
		t.Errorf("%d job-done posts, want only the next job's (nothing for the stopped one)", n)
	}
	stops := hs.fake.Requests(runpodtest.Stop)
	if len(stops) == 0 {
		t.Fatal("no job-stop poll")
	}
	if stops[0].Pod != "pod-1" || stops[0].Query.Get("gpu") == "" || stops[0].Query.Has("job_in_progress") {
		t.Errorf("job-stop request: pod %q query %q", stops[0].Pod, stops[0].RawQuery)
	}
	for _, p := range hs.fake.Problems() {
		t.Errorf("protocol problem: %s", p)
	}
}

func TestRefusedResultIsReplacedBySmallError(t *testing.T) {
	big := strings.Repeat("A", 4096)
	bigResult := func(_ context.Context, id string, _ json.RawMessage, _ progress.Func) (*worker.Result, error) {
		r := result(id)
		r.Video = worker.Base64(big)
		return r, nil
	}
	tests := []struct {
		name     string
		fo       runpodtest.Options
		faults   []runpodtest.Fault
		fn       func(context.Context, string, json.RawMessage, progress.Func) (*worker.Result, error)
		wantCode string
	}{
		{"413 too large", runpodtest.Options{MaxResultBytes: 2048}, nil, bigResult, "OUTPUT_TOO_LARGE"},
		{"400 too large", runpodtest.Options{MaxResultBytes: 2048, TooLargeStatus: 400}, nil, bigResult, "OUTPUT_TOO_LARGE"},
		{"400 small result", runpodtest.Options{}, []runpodtest.Fault{runpodtest.Status(400)}, succeed, "INTERNAL"},
		{"400 naming the size, under the small limit", runpodtest.Options{},
			[]runpodtest.Fault{runpodtest.Respond(400, "text/plain", "payload too large")}, succeed, "OUTPUT_TOO_LARGE"},
		{"422 body over the limit", runpodtest.Options{},
			[]runpodtest.Fault{runpodtest.Respond(422, "application/json", `{"error":"request body exceeds the maximum size"}`)}, succeed, "OUTPUT_TOO_LARGE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := startLoop(t, tc.fo, newScripted(tc.fn), func(o *runpod.Options) { o.SmallResultBytes = 2048 })
			hs.fake.Fail(runpodtest.Done, tc.faults...)
			hs.fake.Enqueue(runpodtest.Job{ID: "j", Input: map[string]any{}})
			hs.waitResults("j")
			hs.checkClean("j")
			res := hs.fake.Results("j")[0]
			if code := errorCode(t, res); code != tc.wantCode {
				t.Errorf("replacement code = %q, want %s (body %s)", code, tc.wantCode, res.Body)
			}
			m := body(t, res)
			if e, _ := m["error"].(string); !strings.HasPrefix(e, tc.wantCode+": ") {
				t.Errorf("error string = %q", e)
			}
			if tc.wantCode == "OUTPUT_TOO_LARGE" && !strings.Contains(string(res.Body), "BUCKET_ENDPOINT_URL") {
				t.Errorf("no hint about a bucket: %s", res.Body)
			}
		})
	}
}

func TestResultRefusedTwiceIsGivenUp(t *testing.T) {
	hs := startLoop(t, runpodtest.Options{}, newScripted(nil), nil)
	hs.fake.Fail(runpodtest.Done, runpodtest.Status(404), runpodtest.Status(404))
	hs.fake.Enqueue(runpodtest.Job{ID: "gone", Input: map[string]any{}}, runpodtest.Job{ID: "next", Input: map[string]any{}})
	hs.waitResults("next")
	if n := len(hs.fake.Requests(runpodtest.Done)); n != 3 {
		t.Errorf("%d job-done posts, want 3 (result, replacement, next job)", n)
	}
}

func TestPingsFlowDuringLongJobAndNoTakeWhileItRuns(t *testing.T) {
	release := make(chan struct{})
	h := newScripted(func(ctx context.Context, id string, _ json.RawMessage, _ progress.Func) (*worker.Result, error) {
		// Busy CPU work that ignores everything until released.
		for {
			select {
			case <-release:
				return result(id), nil
			default:
			}
		}
	})
	hs := startLoop(t, runpodtest.Options{}, h, nil)
	hs.fake.Enqueue(runpodtest.Job{ID: "render", Input: map[string]any{}})
	hs.waitStarted("render")
	takesBefore := len(hs.fake.Requests(runpodtest.Take))
	pingsWithJob := func() int {
		n := 0
		for _, p := range hs.fake.Requests(runpodtest.Ping) {
			if p.Query.Get("job_id") == "render" {
				n++
			}
		}
		return n
	}
	hs.wait("5 pings naming the job", func() bool { return pingsWithJob() >= 5 })
	if n := len(hs.fake.Requests(runpodtest.Take)); n != takesBefore {
		t.Errorf("%d job-takes while the job ran", n-takesBefore)
	}
	close(release)
	hs.waitResults("render")
	n := len(hs.fake.Requests(runpodtest.Ping))
	hs.wait("a ping without the job", func() bool {
		ps := hs.fake.Requests(runpodtest.Ping)
		return len(ps) > n && !ps[len(ps)-1].Query.Has("job_id")
	})
	p := hs.fake.Requests(runpodtest.Ping)[0]
	if p.Pod != "pod-1" || p.Query.Get("runpod_version") != "test" || p.Header.Get("Authorization") != "rp-key" {
		t.Errorf("ping: pod %q query %q auth %q", p.Pod, p.RawQuery, p.Header.Get("Authorization"))
	}
	hs.checkClean("render")
}

func TestPingListsEveryHeldJob(t *testing.T) {
	release := make(chan struct{})
	h := newScripted(func(ctx context.Context, id string, _ json.RawMessage, _ progress.Func) (*worker.Result, error) {
		<-release
		return result(id), nil
	})
	hs := startLoop(t, runpodtest.Options{}, h, nil)
	hs.fake.Enqueue(runpodtest.Job{ID: "b1", Raw: []byte(`[{"id":"b1","input":{}},{"id":"b2","input":{}}]`)})
	hs.waitStarted("b1")
	hs.wait("a ping with both ids", func() bool {
		for _, p := range hs.fake.Requests(runpodtest.Ping) {
			if strings.Contains(p.RawQuery, "job_id=b1%2Cb2") {
				return true
			}
		}
		return false
	})
	close(release)
	hs.waitResults("b1", "b2")
}

func TestShutdownMidJob(t *testing.T) {
	t.Run("grace over: CANCELLED posted", func(t *testing.T) {
		hs := startLoop(t, runpodtest.Options{}, newScripted(blockUntilDone), func(o *runpod.Options) {
			o.ShutdownGrace = 100 * time.Millisecond
		})
		hs.fake.Enqueue(runpodtest.Job{ID: "j", Input: map[string]any{}})
		hs.waitStarted("j")
		pings := len(hs.fake.Requests(runpodtest.Ping))
		if err := hs.stop(); err != nil {
			t.Fatalf("Run = %v, want nil after shutdown", err)
		}
		res := hs.fake.Results("j")
		if len(res) != 1 {
			t.Fatalf("%d results, want 1", len(res))
		}
		if code := errorCode(t, res[0]); code != "CANCELLED" {
			t.Errorf("code = %q, want CANCELLED: %s", code, res[0].Body)
		}
		var during int
		for _, p := range hs.fake.Requests(runpodtest.Ping)[pings:] {
			if p.Query.Get("job_id") == "j" {
				during++
			}
		}
		if during == 0 {
			t.Error("no ping during the shutdown grace")
		}
		hs.checkClean("j")
	})
	t.Run("job finishes within grace", func(t *testing.T) {
		release := make(chan struct{})
		h := newScripted(func(ctx context.Context, id string, _ json.RawMessage, _ progress.Func) (*worker.Result, error) {
			select {
			case <-release:
				return result(id), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		hs := startLoop(t, runpodtest.Options{}, h, func(o *runpod.Options) { o.ShutdownGrace = 5 * time.Second })
		hs.fake.Enqueue(runpodtest.Job{ID: "j", Input: map[string]any{}})
		hs.waitStarted("j")
		takes := len(hs.fake.Requests(runpodtest.Take))
		go func() {
			time.Sleep(50 * time.Millisecond) // let the shutdown begin first
			close(release)
		}()
		if err := hs.stop(); err != nil {
			t.Fatal(err)
		}
		res := hs.fake.Results("j")
		if len(res) != 1 || errorCode(t, res[0]) != "" {
			t.Fatalf("results = %v, want one success", res)
		}
		if n := len(hs.fake.Requests(runpodtest.Take)); n != takes {
			t.Errorf("%d job-takes after shutdown", n-takes)
		}
	})
}

func TestNoProgressAfterFinalResult(t *testing.T) {
	h := newScripted(func(ctx context.Context, id string, _ json.RawMessage, p progress.Func) (*worker.Result, error) {
		// A misbehaving job keeps reporting progress after it returned.
		stop := make(chan struct{})
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p(progress.Progress{Stage: progress.SamplingHigh, Percent: i % 100, Step: i, Steps: 6})
				time.Sleep(100 * time.Microsecond)
			}
		}()
		time.AfterFunc(200*time.Millisecond, func() { close(stop) })
		time.Sleep(30 * time.Millisecond)
		return result(id), nil
	})
	hs := startLoop(t, runpodtest.Options{}, h, nil)
	ids := []string{"p1", "p2", "p3"}
	for _, id := range ids {
		hs.fake.Enqueue(runpodtest.Job{ID: id, Input: map[string]any{}})
	}
	hs.waitResults(ids...)
	time.Sleep(250 * time.Millisecond) // let the stray goroutines finish trying
	hs.checkClean(ids...)
	for _, id := range ids {
		final := hs.fake.Results(id)[0]
		prog := hs.fake.Progress(id)
		if len(prog) == 0 {
			t.Errorf("job %s: no progress posted", id)
			continue
		}
		for _, q := range prog {
			if q.Seq > final.Seq {
				t.Errorf("job %s: progress (request %d) after the final result (request %d)", id, q.Seq, final.Seq)
			}
		}
		m := body(t, prog[0])
		out, _ := m["output"].(map[string]any)
		if m["status"] != "IN_PROGRESS" || out["stage"] != "sampling_high" {
			t.Errorf("progress body = %s", prog[0].Body)
		}
		if !strings.HasSuffix(prog[0].RawQuery, "isStream=false") {
			t.Errorf("progress query = %q", prog[0].RawQuery)
		}
		if rid := prog[0].Header.Get("X-Request-ID"); rid != id {
			t.Errorf("progress X-Request-ID = %q, want %q", rid, id)
		}
	}
}

func TestHandlerOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		fn       func(context.Context, string, json.RawMessage, progress.Func) (*worker.Result, error)
		tweak    func(*runpod.Options)
		wantCode string
		wantMsg  string
	}{
		{"panic", func(context.Context, string, json.RawMessage, progress.Func) (*worker.Result, error) {
			panic("nil map")
		}, nil, "INTERNAL", "nil map"},
		{"typed error", func(context.Context, string, json.RawMessage, progress.Func) (*worker.Result, error) {
			return nil, apperr.Field(apperr.InvalidInput, "prompt", "prompt is empty", "give a prompt")
		}, nil, "INVALID_INPUT", "prompt is empty"},
		{"plain error", func(context.Context, string, json.RawMessage, progress.Func) (*worker.Result, error) {
			return nil, errBoom
		}, nil, "INTERNAL", "boom"},
		{"nil nil", func(context.Context, string, json.RawMessage, progress.Func) (*worker.Result, error) {
			return nil, nil
		}, nil, "INTERNAL", "neither"},
		{"job timeout, bare ctx error", func(ctx context.Context, _ string, _ json.RawMessage, _ progress.Func) (*worker.Result, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, func(o *runpod.Options) { o.JobTimeout = 50 * time.Millisecond }, "TIMEOUT", "JOB_TIMEOUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := startLoop(t, runpodtest.Options{}, newScripted(tc.fn), tc.tweak)
			hs.fake.Enqueue(runpodtest.Job{ID: "j", Input: map[string]any{}})
			hs.waitResults("j")
			res := hs.fake.Results("j")[0]
			if code := errorCode(t, res); code != tc.wantCode {
				t.Errorf("code = %q, want %s", code, tc.wantCode)
			}
			if !strings.Contains(string(res.Body), tc.wantMsg) {
				t.Errorf("body %s lacks %q", res.Body, tc.wantMsg)
			}
			// The loop goes on after a failure.
			hs.fake.Enqueue(runpodtest.Job{ID: "after", Input: map[string]any{}})
			hs.waitResults("after")
			hs.checkClean("j")
		})
	}
}

func TestRefreshAndHealth(t *testing.T) {
	t.Run("REFRESH_WORKER", func(t *testing.T) {
		hs := startLoop(t, runpodtest.Options{}, newScripted(nil), func(o *runpod.Options) { o.RefreshWorker = true })
		hs.fake.Enqueue(runpodtest.Job{ID: "j", Input: map[string]any{}}, runpodtest.Job{ID: "k", Input: map[string]any{}})
		select {
		case err := <-hs.errc:
			hs.errc <- err
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after a refresh")
		}
		res := hs.fake.Results("j")
		if len(res) != 1 || body(t, res[0])["stopPod"] != true {
			t.Fatalf("result = %v, want stopPod true", res)
		}
		if hs.fake.Delivered("k") != 0 {
			t.Error("took another job after asking for a fresh worker")
		}
	})
	t.Run("unhealthy after the job", func(t *testing.T) {
		h := newScripted(nil)
		var calls atomic.Int32
		h.healthy = func() (bool, string) {
			if calls.Add(1) > 1 {
				return false, "ComfyUI crashed 4 times"
			}
			return true, ""
		}
		hs := startLoop(t, runpodtest.Options{}, h, nil)
		hs.fake.Enqueue(runpodtest.Job{ID: "j", Input: map[string]any{}})
		var err error
		select {
		case err = <-hs.errc:
			hs.errc <- err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		if !errors.Is(err, runpod.ErrUnhealthy) {
			t.Errorf("Run = %v, want ErrUnhealthy", err)
		}
		res := hs.fake.Results("j")
		if len(res) != 1 || body(t, res[0])["stopPod"] != true || errorCode(t, res[0]) != "" {
			t.Fatalf("result = %s, want a success with stopPod", res[0].Body)
		}
	})
	t.Run("unhealthy before taking", func(t *testing.T) {
		h := newScripted(nil)
		h.healthy = func() (bool, string) { return false, "no GPU" }
		hs := startLoop(t, runpodtest.Options{}, h, nil)
		select {
		case err := <-hs.errc:
			hs.errc <- err
			if !errors.Is(err, runpod.ErrUnhealthy) {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		if n := len(hs.fake.Requests(runpodtest.Take)); n != 0 {
			t.Errorf("%d takes while unhealthy", n)
		}
		found := false
		for _, p := range hs.fake.Requests(runpodtest.Ping) {
			if p.Query.Get("status") == "unhealthy" && p.Query.Get("reason") == "no GPU" && p.Query.Get("check") != "" {
				found = true
			}
		}
		if !found {
			t.Error("no unhealthy report on the ping URL")
		}
	})
}

func TestAbandonedJob(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := newScripted(func(context.Context, string, json.RawMessage, progress.Func) (*worker.Result, error) {
		<-release // ignores its context
		return nil, nil
	})
	hs := startLoop(t, runpodtest.Options{}, h, func(o *runpod.Options) {
		o.JobTimeout, o.AbandonAfter = 20*time.Millisecond, 50*time.Millisecond
	})
	hs.fake.Enqueue(runpodtest.Job{ID: "stuck", Input: map[string]any{}})
	select {
	case err := <-hs.errc:
		hs.errc <- err
		if !errors.Is(err, runpod.ErrUnhealthy) {
			t.Errorf("Run = %v, want ErrUnhealthy", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	res := hs.fake.Results("stuck")
	if len(res) != 1 || body(t, res[0])["stopPod"] != true || errorCode(t, res[0]) != "INTERNAL" {
		t.Fatalf("results = %v", res)
	}
}

func TestRunNeedsURLs(t *testing.T) {
	err := runpod.Run(t.Context(), runpod.Options{}, newScripted(nil), testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "RUNPOD_WEBHOOK_GET_JOB") || !strings.Contains(err.Error(), "RUNPOD_WEBHOOK_POST_OUTPUT") {
		t.Errorf("Run without URLs = %v", err)
	}
}

func TestNoPingsWithoutKey(t *testing.T) {
	hs := startLoop(t, runpodtest.Options{}, newScripted(nil), func(o *runpod.Options) { o.APIKey = "" })
	hs.fake.Enqueue(runpodtest.Job{ID: "j", Input: map[string]any{}})
	hs.waitResults("j")
	if n := len(hs.fake.Requests(runpodtest.Ping)); n != 0 {
		t.Errorf("%d pings without RUNPOD_AI_API_KEY", n)
	}
	if a := hs.fake.Results("j")[0].Header.Get("Authorization"); a != "" {
		t.Errorf("Authorization %q sent without a key", a)
	}
}

// TestProgressKeepAlive: through a long silent stage the latest progress is
// posted again every ProgressKeepAlive, with the elapsed time growing.
func TestProgressKeepAlive(t *testing.T) {
	h := newScripted(func(ctx context.Context, id string, _ json.RawMessage, p progress.Func) (*worker.Result, error) {
		p(progress.Progress{Stage: progress.EncodingPrompt, Percent: 12})
		time.Sleep(400 * time.Millisecond) // a silent stage
		return result(id), nil
	})
	hs := startLoop(t, runpodtest.Options{}, h, func(o *runpod.Options) {
		o.ProgressInterval = 10 * time.Millisecond
		o.ProgressKeepAlive = 80 * time.Millisecond
	})
	hs.fake.Enqueue(runpodtest.Job{ID: "quiet", Input: map[string]any{}})
	hs.waitResults("quiet")
	prog := hs.fake.Progress("quiet")
	if len(prog) < 3 {
		t.Fatalf("%d progress posts through a 400 ms silent stage, want at least 3 (one every 80 ms)", len(prog))
	}
	last := -1.0
	for _, q := range prog {
		m := body(t, q)
		out, _ := m["output"].(map[string]any)
		el, ok := out["elapsed_s"].(float64)
		if out["stage"] != "encoding_prompt" || !ok || el < last {
			t.Errorf("progress %s: want encoding_prompt with a growing elapsed_s", q.Body)
		}
		last = el
	}
	if last < 0.2 {
		t.Errorf("last elapsed_s %.3f, want the time spent", last)
	}
}
