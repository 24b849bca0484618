// Command fakerunpod runs the fake RunPod job server of
// internal/runpod/runpodtest on its own, for trying the worker against a
// local queue: it prints the RUNPOD_WEBHOOK_* variables to give the worker,
// queues the jobs of -jobs, and logs every request as a JSON line.
//
// Control routes: POST /_fake/jobs (a job {"id","input"} or a list),
// POST /_fake/stop ({"jobsToStop": [...]}), GET /_fake/requests.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/runpod/runpodtest"
)

func main() {
	os.Exit(run())
}

func run() int {
	addr := flag.String("addr", "127.0.0.1:19981", "listen address")
	endpoint := flag.String("endpoint", "ep", "endpoint id in the URLs")
	jobsFile := flag.String("jobs", "", "JSON file with a job {\"id\",\"input\"} (a test_input.json) or a list of jobs to queue")
	hold := flag.Duration("hold", 20*time.Second, "how long job-take and job-stop hold an empty answer")
	maxResult := flag.Int("max-result-bytes", 20<<20, "job-done bodies above this are refused with 413 (0: no limit)")
	requireOutput := flag.Bool("require-output", true, "answer 400 to a final result without \"output\" (as sls-local-server)")
	flag.Parse()

	srv := runpodtest.New(runpodtest.Options{EndpointID: *endpoint, Hold: *hold, MaxResultBytes: *maxResult,
		RequireOutput: *requireOutput})
	if *jobsFile != "" {
		jobs, err := readJobs(*jobsFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakerunpod:", err)
			return 2
		}
		srv.Enqueue(jobs...)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakerunpod:", err)
		return 1
	}
	for _, line := range srv.Templates("http://" + ln.Addr().String()).Env() {
		fmt.Printf("export %s\n", shellQuote(line))
	}
	fmt.Println("export RUNPOD_POD_ID=fake-pod RUNPOD_AI_API_KEY=fake-key RUNPOD_ENDPOINT_ID=" + *endpoint)

	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		seen := 0
		for ctx.Err() == nil {
			_ = srv.Wait(ctx, func() bool { return len(srv.Requests("")) > seen })
			reqs := srv.Requests("")
			for _, q := range reqs[seen:] {
				if len(q.Body) > 2000 {
					q.Body = append(q.Body[:2000:2000], "..."...)
				}
				_ = enc.Encode(map[string]any{"seq": q.Seq, "route": q.Route, "job_id": q.JobID, "status": q.Status,
					"progress": q.Progress, "query": q.RawQuery, "body": string(q.Body)})
			}
			seen = len(reqs)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "fakerunpod:", err)
		return 1
	}
	if p := srv.Problems(); len(p) > 0 {
		fmt.Fprintln(os.Stderr, "fakerunpod: protocol problems:\n  "+strings.Join(p, "\n  "))
		return 1
	}
	return 0
}

func readJobs(path string) ([]runpodtest.Job, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type fileJob struct {
		ID    string          `json:"id"`
		Input json.RawMessage `json:"input"`
	}
	var list []fileJob
	if strings.HasPrefix(strings.TrimSpace(string(b)), "[") {
		err = json.Unmarshal(b, &list)
	} else {
		var one fileJob
		err = json.Unmarshal(b, &one)
		list = append(list, one)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	jobs := make([]runpodtest.Job, len(list))
	for i, j := range list {
		if j.ID == "" {
			j.ID = fmt.Sprintf("fake-job-%d", i+1)
		}
		jobs[i] = runpodtest.Job{ID: j.ID, Input: j.Input}
	}
	return jobs, nil
}

func shellQuote(kv string) string {
	k, v, _ := strings.Cut(kv, "=")
	return k + "='" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
