package integration

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
)

// ffprobeFrames counts the decoded frames of a video with ffprobe.
func ffprobeFrames(t testing.TB, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ffprobe %s said %q", path, out)
	}
	return n
}

// testImage writes test_input.json's image to dir and returns its path.
func testImage(t testing.TB, dir string) string {
	t.Helper()
	img, err := base64.StdEncoding.DecodeString(testInput(t, nil)["image"].(string))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "in.png")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGenerateChain(t *testing.T) {
	needFFmpeg(t)
	fake := fakeComfy(t, comfytest.Options{StepDelay: 5 * time.Millisecond})
	dir := t.TempDir()
	out := filepath.Join(dir, "long.mp4")
	const length = 9
	cmd := exec.Command(binary, "generate", "--image", testImage(t, dir),
		"--prompt", "a lighthouse at dusk", "--prompt", "the light turns on", "--prompt", "night falls",
		"--width", "64", "--height", "64", "--length", strconv.Itoa(length), "--steps", "2", "--seed", "41",
		"--end-image", testImage(t, t.TempDir()), "--keep-clips", "--comfy-url", fake.URL, "-o", out)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr.String())
	}
	var res struct {
		VideoPath string           `json:"video_path"`
		Frames    int              `json:"frames"`
		Clips     []map[string]any `json:"clips"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("stdout: %v\n%s", err, stdout)
	}
	if n := ffprobeFrames(t, out); n != 3*length-2 || res.Frames != 3*length-2 {
		t.Errorf("joined video: ffprobe %d frames, result %d, want %d", n, res.Frames, 3*length-2)
	}
	// The seed policy: a fixed seed goes up by one a clip.
	for k, c := range res.Clips {
		if c["seed"] != float64(41+k) {
			t.Errorf("clip %d seed = %v, want %d", k+1, c["seed"], 41+k)
		}
		if n := ffprobeFrames(t, c["video_path"].(string)); n != length {
			t.Errorf("clip %d has %d frames", k+1, n)
		}
	}
	if len(res.Clips) != 3 {
		t.Fatalf("%d clips", len(res.Clips))
	}
	for _, p := range []string{"long.clip1.last.png", "long.clip2.last.png"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("--keep-clips: %v", err)
		}
	}
	// --end-image is where the chain ends: only the last clip's graph has it.
	var firstLast []bool
	for _, r := range fake.Requests() {
		if r.Method == "POST" && r.Path == "/prompt" {
			firstLast = append(firstLast, strings.Contains(r.Body, "WanFirstLastFrameToVideo"))
		}
	}
	if want := []bool{false, false, true}; !slices.Equal(firstLast, want) {
		t.Errorf("clips with the end image: %v, want %v", firstLast, want)
	}
}
