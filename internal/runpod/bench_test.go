package runpod_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/logging"
	"github.com/wan22-worker/wan22-worker/internal/runpod"
	"github.com/wan22-worker/wan22-worker/internal/runpod/runpodtest"
)

// BenchmarkLoop runs jobs through the worker loop against the fake job
// server with a handler that costs nothing: what remains is the loop's own
// overhead per job (take, run, post) and the gap between a result post and
// the next job-take.
func BenchmarkLoop(b *testing.B) {
	fake := runpodtest.New(runpodtest.Options{Hold: 10 * time.Second})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	o := fastOptions(fake.Templates(srv.URL))
	o.PingInterval = time.Hour // pings are not per-job work
	o.StopPollMinInterval = time.Second
	h := newScripted(nil)
	h.started = make(chan string, b.N+10)

	jobs := make([]runpodtest.Job, b.N)
	for i := range jobs {
		jobs[i] = runpodtest.Job{ID: fmt.Sprintf("bench-%d", i), Input: map[string]any{"prompt": "p"}}
	}
	ctx, cancel := context.WithCancel(b.Context())
	errc := make(chan error, 1)
	b.ResetTimer()
	go func() { errc <- runpod.Run(ctx, o, h, logging.Discard()) }()
	fake.Enqueue(jobs...)
	last := jobs[len(jobs)-1].ID
	if err := fake.Wait(b.Context(), func() bool { return fake.Finals(last) == 1 }); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cancel()
	<-errc

	// Gap: from each accepted result to the take that follows it.
	var gaps time.Duration
	var n int
	var lastDone time.Time
	for _, q := range fake.Requests("") {
		switch {
		case q.Route == runpodtest.Done && q.Accepted() && !q.Progress:
			lastDone = q.At
		case q.Route == runpodtest.Take && !lastDone.IsZero():
			gaps += q.At.Sub(lastDone)
			n++
			lastDone = time.Time{}
		}
	}
	if n > 0 {
		b.ReportMetric(float64(gaps.Microseconds())/float64(n), "µs-post-to-take")
	}
	for _, p := range fake.Problems() {
		b.Error(p)
	}
}
