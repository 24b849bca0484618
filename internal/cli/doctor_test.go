package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/doctor"
	"github.com/wan22-worker/wan22-worker/internal/models"
)

// doctorTestDeps sees no programs and plenty of disk under a temporary root.
func doctorTestDeps(t *testing.T) doctor.Deps {
	return doctor.Deps{
		Run: func(_ context.Context, name string, _ ...string) ([]byte, []byte, error) {
			return nil, nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
		},
		LookPath:  func(string) (string, error) { return "", exec.ErrNotFound },
		FreeSpace: func(p string) (models.Space, error) { return models.Space{Dir: p, Free: 100 << 30}, nil },
		Root:      t.TempDir(),
		TempDir:   "/tmp",
	}
}

func TestDoctorCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		contains []string
		absent   []string
	}{
		{name: "text", args: nil, code: exitFailed,
			contains: []string{"✗ comfyui ", "COMFYUI_DIR /comfyui has no main.py", "→ ", "failed: NOT ready"}},
		{name: "json", args: []string{"-o", "json"}, code: exitFailed, contains: []string{`"checks"`, `"ok": false`}},
		{name: "verbose shows the redacted configuration", args: []string{"-v"}, env: map[string]string{"HF_TOKEN": "hf_secret"}, code: exitFailed,
			contains: []string{"Configuration (secrets redacted):", "HF_TOKEN", "<set>"}, absent: []string{"hf_secret"}},
		{name: "bad configuration is a failed check", env: map[string]string{"MAX_FRAMES": "lots"}, code: exitFailed,
			contains: []string{"✗ configuration ", "MAX_FRAMES"}},
		{name: "flags are settings", args: []string{"--api-addr", "0.0.0.0:8000"}, code: exitFailed,
			contains: []string{"API_ADDR 0.0.0.0:8000 is reachable"}},
		{name: "bad output", args: []string{"-o", "xml"}, code: exitInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return tc.env[k] }}
			c := doctorCommand()
			code := runDoctor(t.Context(), env, tc.args, c, doctorTestDeps(t))
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.contains {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.absent {
				if strings.Contains(out.String(), w) {
					t.Errorf("output shows %q", w)
				}
			}
		})
	}
}

func TestDoctorJSONShape(t *testing.T) {
	var out bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	runDoctor(t.Context(), env, []string{"-o", "json"}, doctorCommand(), doctorTestDeps(t))
	var rep struct {
		Checks []struct {
			Name, Status, Detail, Hint string
		} `json:"checks"`
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, c := range rep.Checks {
		names[c.Name] = c.Status
	}
	for name, want := range map[string]string{"configuration": "pass", "comfyui": "fail", "gpu": "warn", "ffmpeg": "warn", "runpod": "pass", "local api": "pass"} {
		if names[name] != want {
			t.Errorf("%s: %q, want %q", name, names[name], want)
		}
	}
}
