// Package concat joins the clips of a chain into one MP4 with ffmpeg's
// concat demuxer.
//
// Clip k+1 of a chain starts from clip k's last frame, so the two frames at
// each boundary are the same picture. Dropping one of them cannot be done by
// copying the H.264 stream: a WAN clip (81 frames) is a single group of
// pictures whose first frame is the only keyframe, and every later frame of
// the clip refers to it, while the last frame of a clip is a reference of the
// B-frames before it. So the default join (Drop) decodes the concatenation,
// drops each later clip's first frame and encodes once with x264 at a high
// quality; Copy joins without re-encoding and keeps the duplicated frames.
package concat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/mp4"
)

// Mode is how clips are joined.
type Mode string

const (
	// Drop drops the first frame of every clip after the first and encodes
	// the result once (x264, CRF Options.CRF).
	Drop Mode = "drop"
	// Copy joins the streams as they are: no re-encoding, every frame kept.
	Copy Mode = "copy"
)

// ParseMode parses a --join value.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case Drop, Copy:
		return Mode(s), nil
	}
	return "", fmt.Errorf("join mode %q: want drop or copy", s)
}

// Options configures Join.
type Options struct {
	Mode   Mode
	FFmpeg string // ffmpeg's path; "" looks it up in PATH
	CRF    int    // x264 quality for Drop (0: 17)
}

// Result describes the joined video.
type Result struct {
	Frames    int
	FrameRate float64
	Duration  float64
}

// Join writes the clips, in order, into out.
func Join(ctx context.Context, clips []string, out string, o Options) (*Result, error) {
	if len(clips) == 0 {
		return nil, errors.New("no clips to join")
	}
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.CRF == 0 {
		o.CRF = 17
	}
	if o.Mode == "" {
		o.Mode = Drop
	}
	infos := make([]mp4.Info, len(clips))
	for i, c := range clips {
		info, err := probe(c)
		if err != nil {
			return nil, fmt.Errorf("clip %d (%s): %w", i+1, c, err)
		}
		if i > 0 && (info.Width != infos[0].Width || info.Height != infos[0].Height || info.Codec != infos[0].Codec) {
			return nil, fmt.Errorf("clip %d is %dx%d %s, clip 1 is %dx%d %s: clips of a chain must match",
				i+1, info.Width, info.Height, info.Codec, infos[0].Width, infos[0].Height, infos[0].Codec)
		}
		infos[i] = info
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), ".wan22-join-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	list := filepath.Join(dir, "clips.txt")
	if err := os.WriteFile(list, []byte(listFile(clips)), 0o644); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "joined.mp4")
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0", "-i", list}
	frames := 0
	for _, in := range infos {
		frames += in.Frames
	}
	fps := infos[0].FrameRate
	switch o.Mode {
	case Copy:
		args = append(args, "-c", "copy", "-movflags", "+faststart", tmp)
	case Drop:
		var drop []string
		at := 0
		for _, in := range infos[:len(infos)-1] {
			at += in.Frames
			drop = append(drop, "eq(n\\,"+strconv.Itoa(at)+")")
		}
		frames -= len(drop)
		vf := "setpts=N/(" + strconv.FormatFloat(fps, 'f', -1, 64) + "*TB)"
		if len(drop) > 0 {
			vf = "select='not(" + strings.Join(drop, "+") + ")'," + vf
		}
		args = append(args, "-vf", vf, "-fps_mode", "passthrough", "-r", strconv.FormatFloat(fps, 'f', -1, 64),
			"-c:v", "libx264", "-crf", strconv.Itoa(o.CRF), "-pix_fmt", "yuv420p",
			"-color_range", "tv", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
			"-an", "-movflags", "+faststart", tmp)
	default:
		return nil, fmt.Errorf("join mode %q: want drop or copy", o.Mode)
	}
	cmd := exec.CommandContext(ctx, o.FFmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	got, err := probe(tmp)
	if err != nil {
		return nil, fmt.Errorf("the joined video: %w", err)
	}
	if got.Frames != frames {
		return nil, fmt.Errorf("the joined video has %d frames, want %d", got.Frames, frames)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return &Result{Frames: got.Frames, FrameRate: got.FrameRate, Duration: got.Duration}, nil
}

// listFile is the concat demuxer's list: one quoted absolute path a line.
func listFile(clips []string) string {
	var b strings.Builder
	b.WriteString("ffconcat version 1.0\n")
	for _, c := range clips {
		abs, err := filepath.Abs(c)
		if err != nil {
			abs = c
		}
		b.WriteString("file '" + strings.ReplaceAll(abs, "'", `'\''`) + "'\n")
	}
	return b.String()
}

func probe(path string) (mp4.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return mp4.Info{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return mp4.Info{}, err
	}
	return mp4.Probe(f, fi.Size())
}
