package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSelfTest runs the RunPod Hub's test (.runpod/tests.json: its input and
// its env) as `serve --test-input` with the fake as the supervised ComfyUI.
// The fake lists only the model files it finds through the extra model paths
// file the worker writes (-models-from-paths), and MODELS_DIRS is empty, as
// on the Hub without the network volume: with SELF_TEST=1 the worker must
// write the stand-in models, point ComfyUI at them and mark the result
// self_test; without it, the job fails MODEL_MISSING.
func TestSelfTest(t *testing.T) {
	needFFmpeg(t)
	hub := readHubTests(t)
	tests := []struct {
		name     string
		selfTest string
		wantCode string // "" for success
	}{
		{"SELF_TEST=1", "1", ""},
		{"SELF_TEST=0", "0", "MODEL_MISSING"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := supervisedEnv(t, "--step-delay 1ms --node-delay 1ms --models-from-paths")
			tmp := envValue(env, "TMPDIR")
			env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+t.TempDir())
			for k, v := range hub.env {
				if k != "SELF_TEST" {
					env = append(env, k+"="+v)
				}
			}
			env = append(env, "SELF_TEST="+tc.selfTest)
			job, _ := json.Marshal(map[string]any{"input": hub.input})
			path := filepath.Join(t.TempDir(), "job.json")
			if err := os.WriteFile(path, job, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binary, "serve", "--test-input", path)
			cmd.Env = env
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("worker log:\n%s", tail(stderr.String(), 40))
				}
			})
			var res result
			if jerr := json.Unmarshal(out, &res); jerr != nil {
				t.Fatalf("output %q: %v (exit: %v)", out, jerr, err)
			}
			if tc.wantCode != "" {
				if err == nil || !strings.HasPrefix(res.Error, tc.wantCode+": ") {
					t.Fatalf("exit %v, error %q, want %s", err, res.Error, tc.wantCode)
				}
				if res.Output["self_test"] != nil {
					t.Errorf("self_test = %v without SELF_TEST", res.Output["self_test"])
				}
				return
			}
			if err != nil || res.Error != "" {
				t.Fatalf("exit %v, error %q", err, res.Error)
			}
			if res.Output["self_test"] != true {
				t.Errorf("self_test = %v, want true", res.Output["self_test"])
			}
			if v, _ := res.Output["video"].(string); v == "" || res.Output["frames"] != hub.input["options"].(map[string]any)["length"] {
				t.Errorf("video %d chars, frames %v", len(v), res.Output["frames"])
			}
			// The stand-in models were written under TMPDIR and removed at exit.
			m := regexp.MustCompile(`models_dir=("(?:[^"\\]|\\.)*"|\S+)`).FindStringSubmatch(stderr.String())
			if m == nil {
				t.Fatal("no self-test models folder in the log")
			}
			dir := m[1]
			if u, err := strconv.Unquote(dir); err == nil {
				dir = u
			}
			if !strings.HasPrefix(dir, tmp+string(filepath.Separator)) {
				t.Fatalf("self-test models folder %s is not under TMPDIR %s", dir, tmp)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the self-test models folder %s is still there after exit (%v)", dir, err)
			}
		})
	}
}

// hubTest is the first test of .runpod/tests.json: its input and env.
type hubTest struct {
	input map[string]any
	env   map[string]string
}

func readHubTests(t testing.TB) hubTest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", ".runpod", "tests.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tests []struct {
			Input map[string]any `json:"input"`
		} `json:"tests"`
		Config struct {
			Env []struct{ Key, Value string } `json:"env"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &f); err != nil || len(f.Tests) == 0 {
		t.Fatalf(".runpod/tests.json: %v (%d tests)", err, len(f.Tests))
	}
	h := hubTest{input: f.Tests[0].Input, env: map[string]string{}}
	for _, e := range f.Config.Env {
		h.env[e.Key] = e.Value
	}
	return h
}

// envValue returns the value of key in env.
func envValue(env []string, key string) string {
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// TestGenerateSelfTest runs `generate` with SELF_TEST=1 and no models, the
// fake as the supervised ComfyUI listing only what the worker wired in; with
// COMFY_URL the self-test is refused, since an attached ComfyUI cannot be
// pointed at the stand-in models.
func TestGenerateSelfTest(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	imgPath := testImage(t, dir)
	out := filepath.Join(dir, "clip.mp4")
	args := []string{"generate", "--image", imgPath, "--prompt", "a lighthouse", "--width", "64", "--height", "64",
		"--length", "5", "--steps", "2", "-o", out}

	t.Run("supervised", func(t *testing.T) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(supervisedEnv(t, "--step-delay 1ms --node-delay 1ms --models-from-paths"),
			"PATH="+os.Getenv("PATH"), "HOME="+dir, "SELF_TEST=1", "TORCH_COMPILE=0")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("generate: %v\n%s", err, tail(stderr.String(), 30))
		}
		var res map[string]any
		if err := json.Unmarshal(stdout, &res); err != nil || res["self_test"] != true || res["video_path"] != out {
			t.Fatalf("result %s: %v", stdout, err)
		}
	})
	t.Run("attached", func(t *testing.T) {
		cmd := exec.Command(binary, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SELF_TEST=1", "COMFY_URL=http://127.0.0.1:1"}
		b, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(b), "SELF_TEST=1 needs the worker to start ComfyUI") {
			t.Fatalf("generate with COMFY_URL: %v\n%s", err, b)
		}
	})
}
