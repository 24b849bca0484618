package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/pylock"
)

// requirementNames returns the package names of a requirements file (comments, options and blank lines
// skipped), normalized, with the exact version where the line pins one.
func requirementNames(t *testing.T, data []byte) map[string]string {
	t.Helper()
	nameRE := regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==\s*([^\s;]+))?`)
	names := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-") {
			continue
		}
		m := nameRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("requirement %q has no name", line)
		}
		name := pylock.Normalize(m[1])
		if m[4] != "" || names[name] == "" {
			names[name] = m[4]
		}
	}
	return names
}

func repoLock(t *testing.T) []pylock.Pin {
	t.Helper()
	pins, errs := pylock.Parse(readRepoFile(t, "docker/requirements.lock"))
	for _, err := range errs {
		t.Errorf("docker/requirements.lock: %v", err)
	}
	return pins
}

// TestRepoLockIsPinnedAndHashed checks that every requirement of the lock is one exact version with hashes.
func TestRepoLockIsPinnedAndHashed(t *testing.T) {
	pins := repoLock(t)
	if len(pins) < 50 {
		t.Fatalf("the lock holds %d packages; the image needs torch, its CUDA wheels and ComfyUI's dependencies", len(pins))
	}
	seen := map[string]bool{}
	for _, p := range pins {
		if seen[p.Name] {
			t.Errorf("line %d: %s is locked twice", p.Line, p.Name)
		}
		seen[p.Name] = true
	}
}

// TestRepoLockCoversRequirements checks that every package the image asks for is in the lock, at the version
// requirements.in pins; with COMFYUI_DIR set, it also reads ComfyUI's and VideoHelperSuite's own requirement
// files and checks each of their packages.
func TestRepoLockCoversRequirements(t *testing.T) {
	pins := repoLock(t)
	check := func(file string, names map[string]string) {
		for name, want := range names {
			if name == "opencv-python" { // VideoHelperSuite's; the image installs the headless build
				name = "opencv-python-headless"
			}
			got := pylock.Version(pins, name)
			switch {
			case got == "":
				t.Errorf("%s asks for %s, which docker/requirements.lock does not hold: add it to docker/requirements.in and run scripts/lock-python.sh", file, name)
			case want != "" && got != want:
				t.Errorf("%s pins %s==%s, the lock holds %s: run scripts/lock-python.sh", file, name, want, got)
			}
		}
	}
	in := requirementNames(t, readRepoFile(t, "docker/requirements.in"))
	for _, must := range []string{"torch", "torchvision", "torchaudio", "xformers", "opencv-python-headless", "comfyui-frontend-package", "av"} {
		if _, ok := in[must]; !ok {
			t.Errorf("docker/requirements.in lacks %s", must)
		}
	}
	check("docker/requirements.in", in)
	dir := os.Getenv("COMFYUI_DIR")
	if dir == "" {
		t.Log("COMFYUI_DIR not set: ComfyUI's own requirements.txt not read (docker/requirements.in records it)")
		return
	}
	for _, rel := range []string{"requirements.txt", "custom_nodes/ComfyUI-VideoHelperSuite/requirements.txt"} {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Error(err)
			continue
		}
		names := requirementNames(t, data)
		check(filepath.Join(dir, rel), names)
		for name := range names {
			if _, ok := in[name]; !ok && name != "opencv-python" {
				t.Errorf("%s asks for %s; docker/requirements.in does not list it", rel, name)
			}
		}
	}
}

// TestDockerfileInstallsTheLock checks that the runtime stage copies the lock and that the versions its ARGs
// state (labels, the torch check) are the lock's.
func TestDockerfileInstallsTheLock(t *testing.T) {
	df, _, err := ParseDockerfile("Dockerfile", readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	rt := df.Stages[len(df.Stages)-1]
	pins := repoLock(t)
	for arg, pkg := range map[string]string{"TORCH_VERSION": "torch", "XFORMERS_VERSION": "xformers"} {
		if got, want := rt.Args[arg], pylock.Version(pins, pkg); got != want {
			t.Errorf("ARG %s=%q, the lock holds %s %q", arg, got, pkg, want)
		}
	}
	copied := false
	for _, c := range rt.Copies {
		if c.From == "" && len(c.Args) == 2 && c.Args[0] == "docker/requirements.lock" {
			copied = true
		}
	}
	if !copied {
		t.Error("the runtime stage does not COPY docker/requirements.lock")
	}
	for _, r := range rt.Runs {
		text := strings.ReplaceAll(r.Text, `pip install "pip==${PIP_VERSION}"`, "") // pip itself, pinned
		if strings.Contains(text, "pip install") && !strings.Contains(text, "--require-hashes") {
			t.Errorf("line %d: a pip install outside the lock: %s", r.Line, r.Text)
		}
	}
}
