package concat

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/comfy/comfytest"
)

// ffprobeFrames counts the decoded frames of a video.
func ffprobeFrames(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ffprobe said %q", out)
	}
	return n
}

func TestJoin(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	dir := t.TempDir()
	var clips []string
	for i, frames := range []int{9, 13, 9} {
		p := filepath.Join(dir, "clip"+strconv.Itoa(i)+".mp4")
		if err := comfytest.EncodeVideo(context.Background(), "", comfytest.VideoSpec{Width: 64, Height: 48,
			Frames: frames, FPS: 16, CRF: 20}, p); err != nil {
			t.Fatal(err)
		}
		clips = append(clips, p)
	}
	for _, tc := range []struct {
		mode Mode
		want int
	}{{Drop, 9 + 13 + 9 - 2}, {Copy, 9 + 13 + 9}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			out := filepath.Join(dir, string(tc.mode)+".mp4")
			res, err := Join(context.Background(), clips, out, Options{Mode: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames != tc.want {
				t.Errorf("Result.Frames = %d, want %d", res.Frames, tc.want)
			}
			if n := ffprobeFrames(t, out); n != tc.want {
				t.Errorf("ffprobe counts %d frames, want %d", n, tc.want)
			}
			if res.FrameRate < 15.9 || res.FrameRate > 16.1 {
				t.Errorf("frame rate %g", res.FrameRate)
			}
		})
	}
	t.Run("mismatch", func(t *testing.T) {
		other := filepath.Join(dir, "other.mp4")
		if err := comfytest.EncodeVideo(context.Background(), "", comfytest.VideoSpec{Width: 32, Height: 32,
			Frames: 5, FPS: 16, CRF: 20}, other); err != nil {
			t.Fatal(err)
		}
		_, err := Join(context.Background(), []string{clips[0], other}, filepath.Join(dir, "x.mp4"), Options{})
		if err == nil || !strings.Contains(err.Error(), "must match") {
			t.Errorf("err = %v", err)
		}
	})
}
