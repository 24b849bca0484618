package comfytest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// VideoSpec describes a video the fake encodes.
type VideoSpec struct {
	Width, Height int
	Frames        int
	FPS           float64
	CRF           int    // H.264/VP9 quality
	PixFmt        string // default yuv420p
	Codec         string // h264 (default), vp9 or gif
	// Source is the image every frame shows (scaled to cover, center
	// cropped); "" uses a moving test pattern.
	Source string
}

// Ext is the file extension of the spec's container.
func (v VideoSpec) Ext() string {
	switch v.Codec {
	case "vp9":
		return "webm"
	case "gif":
		return "gif"
	}
	return "mp4"
}

// EncodeVideo writes the video to out with ffmpeg.
func EncodeVideo(ctx context.Context, ffmpeg string, v VideoSpec, out string) error {
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	if v.Width <= 0 || v.Height <= 0 || v.Frames <= 0 || v.FPS <= 0 {
		return fmt.Errorf("bad video spec %dx%d, %d frames at %g fps", v.Width, v.Height, v.Frames, v.FPS)
	}
	if v.PixFmt == "" {
		v.PixFmt = "yuv420p"
	}
	fps := strconv.FormatFloat(v.FPS, 'f', -1, 64)
	size := fmt.Sprintf("%dx%d", v.Width, v.Height)
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}
	if v.Source != "" {
		args = append(args, "-loop", "1", "-framerate", fps, "-i", v.Source)
	} else {
		args = append(args, "-f", "lavfi", "-i", "testsrc2=size="+size+":rate="+fps)
	}
	vf := fmt.Sprintf("scale=%d:%d:force_original_aspect_ratio=increase,crop=%d:%d,setsar=1", v.Width, v.Height, v.Width, v.Height)
	args = append(args, "-frames:v", strconv.Itoa(v.Frames), "-r", fps)
	switch v.Codec {
	case "", "h264":
		// As VideoHelperSuite's video/h264-mp4 format: libx264, bt709 tags.
		args = append(args, "-vf", vf+",scale=out_color_matrix=bt709", "-c:v", "libx264", "-preset", "veryfast",
			"-crf", strconv.Itoa(v.CRF), "-pix_fmt", v.PixFmt, "-color_range", "tv", "-colorspace", "bt709",
			"-color_primaries", "bt709", "-color_trc", "bt709", "-movflags", "+faststart")
	case "vp9":
		args = append(args, "-vf", vf, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-crf", strconv.Itoa(v.CRF), "-b:v", "0", "-pix_fmt", v.PixFmt)
	case "gif":
		args = append(args, "-vf", vf)
	default:
		return fmt.Errorf("codec %q not supported", v.Codec)
	}
	args = append(args, out)
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if stderr.Len() == 0 {
			return fmt.Errorf("%s: %w", ffmpeg, err)
		}
		return fmt.Errorf("%s: %w: %s", ffmpeg, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// MakeMP4 encodes a test-pattern H.264 MP4 and returns its bytes (for
// Options.Video in benchmarks).
func MakeMP4(ctx context.Context, ffmpeg string, v VideoSpec) ([]byte, error) {
	dir, err := os.MkdirTemp("", "fakecomfy-mp4-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	v.Codec = "h264"
	out := filepath.Join(dir, "v.mp4")
	if err := EncodeVideo(ctx, ffmpeg, v, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// PadMP4 returns mp4 grown to size bytes by a trailing top-level `free` box,
// which players and ffprobe skip: a valid MP4 of any size from one small
// encode. It returns mp4 unchanged when size leaves no room for a box.
func PadMP4(mp4 []byte, size int) []byte {
	pad := size - len(mp4)
	if pad < 8 || pad > 1<<32-1 {
		return mp4
	}
	out := make([]byte, size)
	copy(out, mp4)
	binary.BigEndian.PutUint32(out[len(mp4):], uint32(pad))
	copy(out[len(mp4)+4:], "free")
	return out
}
