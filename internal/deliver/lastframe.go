package deliver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/mp4"
)

// Why the last frame comes from the MP4 and not from ComfyUI: asking ComfyUI
// would need extra nodes in every graph that wants it (ImageFromBatch to pick
// the last image, SaveImage to PNG-encode it), so the graph would differ with
// options.last_frame; a second output file in the history to tell apart from
// the video; an extra /view fetch; files left in ComfyUI's output folder; and
// a frame from before H.264 encoding, not the one the video ends on. Inside
// ComfyUI the PNG encode alone would cost about as much CPU as ffmpeg's.
// Taking it from the file is one short ffmpeg run on the CPU, only for jobs
// that ask: ffmpeg seeks to the keyframe before the last few frames, decodes
// from there, and PNG-encodes just the final two (-sseof with accurate
// seeking drops the frames before the seek point after decoding them).
// BenchmarkLastFrame measures it: a few hundred milliseconds for 832×480×81
// and 1280×720×121 on a small 2-core machine, process start included —
// noise next to minutes of sampling on the GPU.

// lastFrameTimeout bounds one ffmpeg run.
const lastFrameTimeout = 2 * time.Minute

// maxFrameOutput bounds what ffmpeg may write for the last frame(s).
const maxFrameOutput = 128 << 20

// LastFrame returns the final frame of the video at videoPath as a PNG,
// decoded with ffmpeg (ffmpegPath, or "ffmpeg" on PATH when empty). info,
// from mp4.Probe, narrows the decoding to the end of the video; a zero Info
// works, only slower.
func LastFrame(ctx context.Context, ffmpegPath, videoPath string, info mp4.Info) ([]byte, error) {
	if ffmpegPath == "" {
		ffmpegPath = "ffmpeg"
	}
	bin, err := exec.LookPath(ffmpegPath)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "options.last_frame needs ffmpeg, which was not found: "+err.Error(),
			"install ffmpeg in the worker's image, or run the job without options.last_frame")
	}
	// Seek to 2.5 frame durations before the end: the last two frames reach
	// the encoder; everything before is decoded only from the keyframe on.
	tail := 1.0
	if info.FrameRate > 0 {
		tail = 2.5 / info.FrameRate
	}
	seek := []string{"-sseof", "-" + strconv.FormatFloat(tail, 'f', 6, 64)}
	if info.Duration > 0 && tail >= info.Duration {
		seek = nil // short video: decode it all
	}
	png, err := runFFmpegFrames(ctx, bin, append(seek, "-i", videoPath, "-map", "0:v:0"))
	if err == nil && png == nil && info.Frames > 0 {
		// The container's duration misled the seek: select the last frame by
		// number instead, decoding the whole video.
		png, err = runFFmpegFrames(ctx, bin, []string{"-i", videoPath, "-map", "0:v:0",
			"-vf", fmt.Sprintf(`select=eq(n\,%d)`, info.Frames-1)})
	}
	if err != nil {
		if e := ctxError(ctx); e != nil {
			return nil, e
		}
		return nil, apperr.Wrap(apperr.Internal, err, "extracting the last frame failed: "+err.Error(),
			"the video may be damaged; run the job without options.last_frame to get the video alone")
	}
	if png == nil {
		return nil, apperr.New(apperr.Internal, "extracting the last frame failed: ffmpeg returned no frame",
			"the video may be damaged; run the job without options.last_frame to get the video alone")
	}
	return png, nil
}

// runFFmpegFrames runs ffmpeg with the input arguments, writing every
// selected frame as PNG to stdout, and returns the last PNG (nil if none).
func runFFmpegFrames(ctx context.Context, bin string, input []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, lastFrameTimeout)
	defer cancel()
	args := append([]string{"-hide_banner", "-nostdin", "-v", "error"}, input...)
	args = append(args, "-an", "-sn", "-dn", "-pix_fmt", "rgb24", "-c:v", "png", "-f", "image2pipe", "-")
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout := &capped{max: maxFrameOutput}
	var stderr capped
	stderr.max = 8 << 10
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.buf.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, errors.New("ffmpeg: " + lastLine(msg))
	}
	if stdout.over {
		return nil, errors.New("ffmpeg wrote more than expected for the last frames")
	}
	pngs := splitPNGs(stdout.buf.Bytes())
	if len(pngs) == 0 {
		return nil, nil
	}
	return bytes.Clone(pngs[len(pngs)-1]), nil
}

// splitPNGs cuts a stream of concatenated PNG files into complete files.
func splitPNGs(b []byte) [][]byte {
	const sig = "\x89PNG\r\n\x1a\n"
	var out [][]byte
	for off := 0; bytes.HasPrefix(b[off:], []byte(sig)); {
		p := off + len(sig)
		end := -1
		for p+12 <= len(b) {
			n := int(binary.BigEndian.Uint32(b[p:]))
			if n < 0 || n > len(b)-p-12 {
				return out
			}
			typ := string(b[p+4 : p+8])
			p += 12 + n
			if typ == "IEND" {
				end = p
				break
			}
		}
		if end < 0 {
			return out
		}
		out = append(out, b[off:end])
		off = end
	}
	return out
}

// capped is a buffer that stops growing at max bytes and remembers that it did.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.over = true
		return len(p), nil
	}
	return c.buf.Write(p)
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
