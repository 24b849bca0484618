package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/api"
)

// TestSDKRunSyncShapes replays the requests RunPod's SDKs make for a job
// that outlives /runsync's wait. JavaScript (runpod-sdk 1.1.2, runSync):
// POST /v2/<endpoint>/runsync?wait=5000, then GET
// /v2/<endpoint>/status-sync/<id>?wait=1000 until a final state. Python
// (runpod 1.12.0, run_sync): POST /v2/<endpoint>/runsync, then GET
// /v2/<endpoint>/status/<id>.
func TestSDKRunSyncShapes(t *testing.T) {
	hs := start(t, nil)
	auth := []string{"Authorization", "Bearer key"}
	start := time.Now()
	code, m := hs.call("POST", "/v2/ep1/runsync?wait=1000", `{"input":{"mode":"block"}}`, auth...)
	if code != 200 || m["status"] != "IN_PROGRESS" {
		t.Fatalf("runsync?wait=1000 = %d %v, want 200 IN_PROGRESS", code, m)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("runsync?wait=1000 answered after %v, want about 1 s", d)
	}
	id := m["id"].(string)

	// status-sync waits for the wait when the job goes on...
	start = time.Now()
	code, m = hs.call("GET", "/v2/ep1/status-sync/"+id+"?wait=1000", "", auth...)
	if code != 200 || m["status"] != "IN_PROGRESS" || m["id"] != id {
		t.Fatalf("status-sync = %d %v, want 200 IN_PROGRESS", code, m)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("status-sync?wait=1000 answered after %v, want about 1 s", d)
	}
	// ...and answers as soon as it ends.
	go func() { time.Sleep(200 * time.Millisecond); hs.h.Release() }()
	start = time.Now()
	code, m = hs.call("GET", "/v2/ep1/status-sync/"+id+"?wait=5000", "", auth...)
	if code != 200 || m["status"] != "COMPLETED" || m["output"] == nil {
		t.Fatalf("status-sync after the end = %d %v, want COMPLETED with output", code, m)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("status-sync waited %v after the job ended", d)
	}
	// Python's shape: the plain status poll, and the route without a prefix.
	for _, path := range []string{"/v2/ep1/status/" + id, "/status-sync/" + id, "/v2/ep1/status-sync/" + id} {
		if code, m := hs.call("GET", path, "", auth...); code != 200 || m["status"] != "COMPLETED" {
			t.Errorf("GET %s = %d %v", path, code, m)
		}
	}
	if code, _ := hs.call("POST", "/v2/ep1/status-sync/"+id+"?wait=1000", "", auth...); code != 200 {
		t.Errorf("POST status-sync = %d", code)
	}
	if code, _ := hs.call("GET", "/v2/ep1/status-sync/nope?wait=1000", "", auth...); code != 404 {
		t.Errorf("status-sync of an unknown job = %d, want 404", code)
	}
	if code, _ := hs.call("GET", "/v2/ep1/status-sync/"+id+"?wait=soon", "", auth...); code != 400 {
		t.Errorf("status-sync?wait=soon = %d, want 400", code)
	}
}

// TestQueueFullSaysHowFull: the 429 names the queue's size and fill and
// carries Retry-After.
func TestQueueFullSaysHowFull(t *testing.T) {
	hs := start(t, func(o *api.Options) { o.QueueSize = 1 })
	first := hs.submit(`{"mode":"block"}`)
	hs.waitStarted(first)
	hs.submit(`{"mode":"ok"}`)
	resp, err := http.Post(hs.base+"/run", "application/json", strings.NewReader(`{"input":{"mode":"ok"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error             string `json:"error"`
		InQueue           int    `json:"inQueue"`
		QueueSize         int    `json:"queueSize"`
		RetryAfterSeconds int    `json:"retryAfterSeconds"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("status %d, Retry-After %q, want 429 and 5", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if body.InQueue != 1 || body.QueueSize != 1 || body.RetryAfterSeconds != 5 ||
		!strings.Contains(body.Error, "1 of 1") || !strings.Contains(body.Error, "retry in 5 s") {
		t.Errorf("body %+v", body)
	}
}
