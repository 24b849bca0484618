package runpodtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/runpod/runpodtest"
)

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFakeServesAndRecords(t *testing.T) {
	fake := runpodtest.New(runpodtest.Options{RequireOutput: true})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	tm := fake.Templates(srv.URL)
	if !strings.HasSuffix(tm.GetJob, "/v2/ep/job-take/$ID?gpu=NVIDIA+RTX+A5000") ||
		!strings.HasSuffix(tm.PostOutput, "/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+RTX+A5000") {
		t.Errorf("templates = %+v", tm)
	}
	if env := tm.Env(); len(env) != 4 || !strings.HasPrefix(env[0], "RUNPOD_WEBHOOK_GET_JOB=") {
		t.Errorf("Env = %v", env)
	}
	base := srv.URL + "/v2/ep"

	if code, _ := do(t, "GET", base+"/job-take/pod?gpu=x", ""); code != 204 {
		t.Errorf("empty take = %d", code)
	}
	if code, _ := do(t, "POST", srv.URL+"/_fake/jobs", `[{"id":"a","input":{"p":1}},{"input":{}}]`); code != 202 {
		t.Errorf("enqueue = %d", code)
	}
	code, body := do(t, "GET", base+"/job-take/pod?gpu=x", "")
	var job map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &job) != nil || job["id"] != "a" {
		t.Errorf("take = %d %s", code, body)
	}

	fake.Fail(runpodtest.Done, runpodtest.Reset(), runpodtest.Status(503))
	if code, _ := do(t, "POST", base+"/job-done/pod/a?isStream=false", `{"output":{}}`); code != 0 {
		t.Errorf("reset fault answered %d", code)
	}
	if code, _ := do(t, "POST", base+"/job-done/pod/a?isStream=false", `{"output":{}}`); code != 503 {
		t.Errorf("status fault = %d", code)
	}
	if code, _ := do(t, "POST", base+"/job-done/pod/a?isStream=false", `{"error":"X: y"}`); code != 400 {
		t.Errorf("result without output = %d, want 400 (RequireOutput)", code)
	}
	if code, _ := do(t, "POST", base+"/job-done/pod/a?isStream=false", `{"output":{"ok":true}}`); code != 200 {
		t.Errorf("result = %d", code)
	}
	if n := len(fake.Results("a")); n != 1 {
		t.Errorf("%d accepted results", n)
	}
	if p := fake.Problems(); len(p) != 0 {
		t.Errorf("problems after one result: %v", p)
	}
	// A second final result and a progress update after it are violations.
	do(t, "POST", base+"/job-done/pod/a", `{"status":"IN_PROGRESS","output":{"stage":"x"}}`)
	do(t, "POST", base+"/job-done/pod/a", `{"output":{}}`)
	if p := fake.Problems(); len(p) != 2 {
		t.Errorf("problems = %v, want a late progress and a duplicate result", p)
	}

	if code, _ := do(t, "POST", srv.URL+"/_fake/stop", `{"jobsToStop":["a"]}`); code != 202 {
		t.Errorf("stop = %d", code)
	}
	if code, body := do(t, "GET", base+"/job-stop/pod?gpu=x", ""); code != 200 || body != `{"jobsToStop":["a"]}` {
		t.Errorf("job-stop = %d %s", code, body)
	}
	if code, _ := do(t, "GET", base+"/ping/pod?job_id=a&runpod_version=1", ""); code != 200 {
		t.Errorf("ping = %d", code)
	}
	code, body = do(t, "GET", srv.URL+"/_fake/requests?route=ping", "")
	if code != 200 || !strings.Contains(body, `"route":"ping"`) || strings.Contains(body, `"route":"job-take"`) {
		t.Errorf("requests = %d %s", code, body)
	}
	if q := fake.Requests(runpodtest.Ping)[0]; q.Query.Get("job_id") != "a" || q.Pod != "pod" {
		t.Errorf("recorded ping = %+v", q)
	}
}
