package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
)

func TestGenerate(t *testing.T) {
	needFFmpeg(t)
	fake := fakeComfy(t, comfytest.Options{StepDelay: 250 * time.Millisecond})
	dir := t.TempDir()
	imgPath := testImage(t, dir)
	out := filepath.Join(dir, "clip.mp4")
	cmd := exec.Command(binary, "generate", "--image", imgPath, "--prompt", "a lighthouse at dusk",
		"--width", "96", "--height", "64", "--length", "9", "--steps", "4", "--seed", "18446744073709551615",
		"--last-frame", "--comfy-url", fake.URL, "-o", out)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("stdout is not the result JSON: %v\n%s", err, stdout)
	}
	if res["video_path"] != out || res["width"] != 96.0 || res["height"] != 64.0 || res["frames"] != 9.0 {
		t.Errorf("result = %v", res)
	}
	// The seed survives as an exact uint64.
	if !strings.Contains(string(stdout), `"seed": 18446744073709551615`) {
		t.Errorf("seed not echoed exactly: %s", stdout)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("no video at %s: %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "clip.last.png")); err != nil {
		t.Errorf("last frame not written: %v", err)
	}
	// The progress bar went to stderr (plain mode: not a terminal), with the
	// sampling stages and steps.
	if e := stderr.String(); !strings.Contains(e, "sampling_low") || !strings.Contains(e, "/4") {
		t.Errorf("no progress on stderr:\n%s", e)
	}
	// Nothing left behind next to the output.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".wan22-generate-") {
			t.Errorf("temporary folder left: %s", e.Name())
		}
	}
}

func TestGenerateBadInput(t *testing.T) {
	fake := fakeComfy(t, comfytest.Options{})
	dir := t.TempDir()
	img := filepath.Join(dir, "not-an-image.png")
	if err := os.WriteFile(img, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "generate", "--image", img, "--prompt", "x", "--comfy-url", fake.URL, "-o", filepath.Join(dir, "o.mp4"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if code := exitCode(err); code != 2 { // an input error, as submit and validate say it
		t.Fatalf("exit code %d, want 2\n%s", code, stderr.String())
	}
	if !strings.Contains(string(stdout), `"IMAGE_INVALID: `) || !strings.Contains(stderr.String(), "hint:") {
		t.Errorf("stdout %s\nstderr %s", stdout, stderr.String())
	}
}

// TestGenerateInterrupted: Ctrl-C during a job interrupts ComfyUI's prompt,
// prints CANCELLED and exits 130, as submit does.
func TestGenerateInterrupted(t *testing.T) {
	needFFmpeg(t)
	fake := fakeComfy(t, comfytest.Options{StepDelay: 2 * time.Second})
	dir := t.TempDir()
	imgPath := testImage(t, dir)
	cmd := exec.Command(binary, "generate", "--image", imgPath, "--prompt", "x", "--width", "64", "--height", "64",
		"--length", "5", "--comfy-url", fake.URL, "-o", filepath.Join(dir, "o.mp4"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !slices.ContainsFunc(fake.Requests(), func(r comfytest.Request) bool { return r.Path == "/prompt" }) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the prompt never reached ComfyUI\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	if code := exitCode(cmd.Wait()); code != 130 {
		t.Fatalf("exit code %d, want 130\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "CANCELLED") {
		t.Errorf("stderr does not say the job was cancelled:\n%s", stderr.String())
	}
	if !slices.ContainsFunc(fake.Requests(), func(r comfytest.Request) bool { return r.Path == "/interrupt" }) {
		t.Error("ComfyUI's prompt was not interrupted")
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
