//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHubSelfTest runs the RunPod Hub's test as the Hub does, on a worker
// without the models: the job and the env of .runpod/tests.json (SELF_TEST=1
// among them), `serve --test-input`, and MODELS_DIRS an empty folder. The
// worker must write its stand-in models, start the real ComfyUI on them, run
// the production graph and return a video with self_test: true. Only the
// video's size is made CPU-sized (64×64, 5 frames instead of 480×480, 33,
// whose VAE decode alone takes many minutes on a CPU); prompt, image, steps
// and seed are the Hub test's.
func TestHubSelfTest(t *testing.T) {
	e := requireComfyUI(t)
	bin := buildWorker(t)

	b, err := os.ReadFile(filepath.Join("..", ".runpod", "tests.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hub struct {
		Tests []struct {
			Input map[string]any `json:"input"`
		} `json:"tests"`
		Config struct {
			Env []struct{ Key, Value string } `json:"env"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &hub); err != nil || len(hub.Tests) == 0 {
		t.Fatalf(".runpod/tests.json: %v", err)
	}
	input := hub.Tests[0].Input
	opts, _ := input["options"].(map[string]any)
	if opts == nil {
		opts = map[string]any{}
	}
	opts["width"], opts["height"], opts["length"] = 64, 64, 5
	input["options"] = opts
	seed := uint64(42)
	if s, ok := opts["seed"].(float64); ok {
		seed = uint64(s)
	}
	job, _ := json.Marshal(map[string]any{"input": input})
	jobFile := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(jobFile, job, 0o644); err != nil {
		t.Fatal(err)
	}

	tmp := t.TempDir()
	var extra []string
	for _, kv := range hub.Config.Env {
		extra = append(extra, kv.Key+"="+kv.Value)
	}
	extra = append(extra, "TMPDIR="+tmp)
	comfyLog := e.logPath(t, "hub-selftest-comfyui.log")
	workerLog := e.logPath(t, "hub-selftest-worker.log")
	logFile, err := os.Create(workerLog)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.CommandContext(t.Context(), bin, "serve", "--test-input", jobFile)
	cmd.Env = e.workerEnv(t, t.TempDir(), comfyLog, extra...) // no models: the Hub has no volume
	cmd.Stderr = logFile
	begin := time.Now()
	out, err := cmd.Output()
	t.Logf("serve --test-input took %s; worker log %s, ComfyUI log %s", time.Since(begin).Round(time.Second), workerLog, comfyLog)
	if err != nil {
		t.Fatalf("serve --test-input: %v\n%s\nworker log:\n%s", err, truncate(string(out), 600), tail(workerLog, 30))
	}
	var done struct {
		Output json.RawMessage `json:"output"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(out, &done); err != nil || done.Error != "" {
		t.Fatalf("result %s: %v", truncate(string(out), 600), err)
	}
	var r result
	var mark struct {
		SelfTest bool `json:"self_test"`
	}
	if err := json.Unmarshal(done.Output, &r); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(done.Output, &mark); err != nil || !mark.SelfTest {
		t.Errorf("self_test = %v (%v), want true", mark.SelfTest, err)
	}
	video, err := base64.StdEncoding.DecodeString(r.Video)
	if err != nil {
		t.Fatalf("video is not base64: %v", err)
	}
	checkResult(t, done.Output, r, video, "local_test", seed)
	checkLog(t, comfyLog)

	// The stand-in models were written under TMPDIR and are gone after exit.
	logText, _ := os.ReadFile(workerLog)
	if !strings.Contains(string(logText), "wan22-selftest-models-") {
		t.Errorf("the worker log does not name the self-test models folder")
	}
	entries, _ := os.ReadDir(tmp)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "wan22-selftest-models-") {
			t.Errorf("the self-test models folder %s outlived the worker", en.Name())
		}
	}
}
