package deliver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/mp4"
)

// Interpolation asks Deliver to raise the video's frame rate before
// delivering it: Factor−1 new frames between each pair of the model's
// frames, so that n frames become (n−1)×Factor+1 at FrameRate, spanning the
// same time as the n frames at FrameRate/Factor.
//
// The ffmpeg method runs ffmpeg's minterpolate filter (motion-compensated:
// bidirectional motion estimation, overlapped-block motion compensation) on
// the spooled MP4 and re-encodes it with libx264 at CRF, yuv420p, faststart.
// ffmpeg streams: it decodes, interpolates and encodes a few frames at a
// time from the spool file into a second file next to it, so memory does not
// grow with the video's length. The interpolated file replaces the spool
// file; size, SHA-256 and metadata are those of the delivered file.
type Interpolation struct {
	Factor    int
	FrameRate float64 // the delivered video's rate
	CRF       int
	Method    job.InterpolationMethod
	// OnProgress, when set, is told how many output frames are done, out of
	// total (0 when the input's frame count is unknown).
	OnProgress func(done, total int)
}

// InterpolatedFrames is the frame count of n frames interpolated by factor.
func InterpolatedFrames(n, factor int) int {
	if n < 1 || factor < 2 {
		return n
	}
	return (n-1)*factor + 1
}

// minterpolateFilter is the filter graph for the ffmpeg method. minterpolate
// makes no frames after the last input frame's start, so n frames would give
// (n−2)×factor+1; tpad repeats the last frame once, so that the output runs
// to the last source frame: (n−1)×factor+1 frames.
func minterpolateFilter(rate float64) string {
	return "tpad=stop_mode=clone:stop=1,minterpolate=fps=" + strconv.FormatFloat(rate, 'f', -1, 64) +
		":mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"
}

// interpolate writes the interpolated video next to the spool file and
// returns it as the new spool; the caller cleans up the old one.
func (d *Deliverer) interpolate(ctx context.Context, sp *spooled, info mp4.Info, in *Interpolation) (*spooled, error) {
	if in.Method != "" && in.Method != job.InterpolateFFmpeg {
		return nil, apperr.Field(apperr.InvalidInput, "options.interpolate.method",
			fmt.Sprintf("interpolation method %q is not supported", in.Method), "use \"ffmpeg\"")
	}
	ffmpeg := d.opts.FFmpeg
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	bin, err := exec.LookPath(ffmpeg)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "options.interpolate needs ffmpeg, which was not found: "+err.Error(),
			"install ffmpeg in the worker's image, or run the job without options.interpolate")
	}
	f, err := os.CreateTemp(filepath.Dir(sp.path), "."+filepath.Base(sp.path)+".interp-*.mp4")
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "cannot create a file for the interpolated video: "+err.Error(),
			"check that the temp folder (TMPDIR) or OUTPUT_DIR is writable and has free space")
	}
	out := &spooled{file: f, path: f.Name()}
	ok := false
	defer func() {
		if !ok {
			out.cleanup()
		}
	}()

	total := 0
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
		"-i", sp.path, "-map", "0:v:0", "-vf", minterpolateFilter(in.FrameRate)}
	if info.Frames > 0 {
		total = InterpolatedFrames(info.Frames, in.Factor)
		// Cut at the last source frame, whatever the padding gave.
		args = append(args, "-frames:v", strconv.Itoa(total))
	}
	args = append(args, "-c:v", "libx264", "-crf", strconv.Itoa(in.CRF), "-pix_fmt", "yuv420p",
		"-movflags", "+faststart", "-an", "-f", "mp4", "-y", out.path)

	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 8 << 10}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "starting ffmpeg failed: "+err.Error(), "")
	}
	if err := cmd.Start(); err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "starting ffmpeg failed: "+err.Error(),
			"check that the ffmpeg binary runs in the worker's image")
	}
	readProgress(stdout, total, in.OnProgress)
	if err := cmd.Wait(); err != nil {
		if e := ctxError(ctx); e != nil {
			return nil, e
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[len(msg)-500:]
		}
		return nil, apperr.Wrap(apperr.Internal, fmt.Errorf("%w: %s", err, msg),
			"interpolating the video with ffmpeg failed: "+strings.TrimSpace(err.Error()+" "+msg),
			"run the job without options.interpolate to get the model's frames, and check the worker's ffmpeg (it needs libx264)")
	}

	// ffmpeg wrote to the path; read the result through the open handle.
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 256<<10))
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "reading the interpolated video failed: "+err.Error(), "")
	}
	if n == 0 {
		return nil, apperr.New(apperr.Internal, "interpolating the video produced an empty file",
			"run the job without options.interpolate, and check the worker's ffmpeg")
	}
	out.size, out.sha256 = n, hex.EncodeToString(h.Sum(nil))
	ok = true
	return out, nil
}

// readProgress reads ffmpeg's -progress output ("frame=N" lines) until EOF
// and reports each new frame count.
func readProgress(r io.Reader, total int, report func(done, total int)) {
	sc := bufio.NewScanner(r)
	last := -1
	for sc.Scan() {
		v, found := strings.CutPrefix(sc.Text(), "frame=")
		if !found || report == nil {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n != last {
			last = n
			report(n, total)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
