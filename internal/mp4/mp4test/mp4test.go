// Package mp4test makes real MP4 files with ffmpeg for tests, and reads what
// ffprobe says about them, so that tests compare against an independent tool.
// Tests that use it skip when ffmpeg or ffprobe is not installed.
package mp4test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Spec describes a video to encode.
type Spec struct {
	Width, Height int
	Frames        int
	FPS           string // ffmpeg rate: "16", "24", "30000/1001"
	Codec         string // ffmpeg encoder; default libx264
	FastStart     bool   // -movflags +faststart (moov before mdat)
	Fragmented    bool   // -movflags frag_keyframe+empty_moov+default_base_moof
	Noise         bool   // a noisy source that compresses badly, for large files
	CRF           int    // 0 means the encoder's default
	GOP           int    // keyframe interval; 0 means the encoder's default
}

// Name is a short description for subtest names.
func (s Spec) Name() string {
	n := fmt.Sprintf("%dx%dx%d@%s", s.Width, s.Height, s.Frames, strings.ReplaceAll(s.FPS, "/", "_"))
	if s.Codec != "" {
		n += "_" + s.Codec
	}
	if s.FastStart {
		n += "_faststart"
	}
	if s.Fragmented {
		n += "_fragmented"
	}
	return n
}

// Need skips the test when ffmpeg or ffprobe is missing.
func Need(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (CI installs it with scripts/setup-test-deps.sh)", tool)
		}
	}
}

// HasEncoder reports whether ffmpeg has the named encoder.
func HasEncoder(name string) bool {
	out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == name {
			return true
		}
	}
	return false
}

// Make encodes the video into dir and returns its path.
func Make(t testing.TB, dir string, s Spec) string {
	t.Helper()
	Need(t)
	codec := s.Codec
	if codec == "" {
		codec = "libx264"
	}
	src := fmt.Sprintf("testsrc2=size=%dx%d:rate=%s", s.Width, s.Height, s.FPS)
	if s.Noise {
		src = fmt.Sprintf("nullsrc=size=%dx%d:rate=%s,geq=random(1)*255:128:128", s.Width, s.Height, s.FPS)
	}
	out := filepath.Join(dir, s.Name()+".mp4")
	args := []string{"-hide_banner", "-v", "error", "-nostdin", "-f", "lavfi", "-i", src,
		"-frames:v", strconv.Itoa(s.Frames), "-c:v", codec, "-pix_fmt", "yuv420p"}
	switch codec {
	case "libx264", "libx265":
		args = append(args, "-preset", "ultrafast")
		if s.CRF > 0 {
			args = append(args, "-crf", strconv.Itoa(s.CRF))
		}
	}
	if codec == "libx265" {
		args = append(args, "-tag:v", "hvc1", "-x265-params", "log-level=error")
	}
	if s.GOP > 0 {
		args = append(args, "-g", strconv.Itoa(s.GOP))
	}
	switch {
	case s.Fragmented:
		args = append(args, "-movflags", "frag_keyframe+empty_moov+default_base_moof")
	case s.FastStart:
		args = append(args, "-movflags", "+faststart")
	}
	args = append(args, "-y", out)
	cmd := exec.Command("ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// Probe is what ffprobe says about the first video stream.
type Probe struct {
	Codec     string
	Width     int
	Height    int
	Frames    int     // counted packets
	FrameRate float64 // r_frame_rate
	Duration  float64 // stream duration in seconds
}

// FFprobe runs ffprobe on path.
func FFprobe(t testing.TB, path string) Probe {
	t.Helper()
	Need(t)
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
		"-show_entries", "stream=codec_name,width,height,nb_read_packets,r_frame_rate,duration:format=duration",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var doc struct {
		Streams []struct {
			Codec    string `json:"codec_name"`
			Width    int    `json:"width"`
			Height   int    `json:"height"`
			Packets  string `json:"nb_read_packets"`
			Rate     string `json:"r_frame_rate"`
			Duration string `json:"duration"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Streams) == 0 {
		t.Fatalf("ffprobe %s: unexpected output %s (%v)", path, out, err)
	}
	s := doc.Streams[0]
	p := Probe{Codec: s.Codec, Width: s.Width, Height: s.Height}
	p.Frames, _ = strconv.Atoi(s.Packets)
	if num, den, ok := strings.Cut(s.Rate, "/"); ok {
		n, _ := strconv.ParseFloat(num, 64)
		d, _ := strconv.ParseFloat(den, 64)
		if d != 0 {
			p.FrameRate = n / d
		}
	}
	dur := s.Duration
	if dur == "" || dur == "N/A" {
		dur = doc.Format.Duration
	}
	p.Duration, _ = strconv.ParseFloat(dur, 64)
	return p
}

// ReadFile reads a file or fails the test.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
