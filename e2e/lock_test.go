//go:build e2e

package e2e

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/wan22-worker/wan22-worker/docker"
	"github.com/wan22-worker/wan22-worker/internal/pylock"
)

// TestPythonEnvironmentIsTheLock: the tier runs ComfyUI in the Python environment the image ships, installed
// from docker/requirements.lock (docs/e2e.md): every package at its locked version, nothing else.
func TestPythonEnvironmentIsTheLock(t *testing.T) {
	e := requireComfyUI(t)
	out, err := exec.Command(e.python, "-c",
		`import json, importlib.metadata as m; print(json.dumps({d.metadata["Name"]: d.version for d in m.distributions() if d.metadata["Name"]}))`).Output()
	if err != nil {
		t.Fatalf("%s: %v", e.python, err)
	}
	var installed map[string]string
	if err := json.Unmarshal(out, &installed); err != nil {
		t.Fatal(err)
	}
	pins, errs := pylock.Parse(docker.RequirementsLock())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, d := range pylock.Compare(pins, installed) {
		t.Errorf("%s: %s; sync it: uv pip sync --python %s --require-hashes docker/requirements.lock", e.python, d, e.python)
	}
	t.Logf("%s: %d packages checked against the lock", e.python, len(pins))
}
