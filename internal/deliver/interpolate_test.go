package deliver

import (
	"bytes"
	"encoding/base64"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/mp4/mp4test"
)

// TestInterpolate interpolates real MP4s and checks the delivered file with
// ffprobe: (n−1)×factor+1 frames at the asked rate, the same span from the
// first to the last frame, and size, SHA-256 and metadata of the new file.
func TestInterpolate(t *testing.T) {
	mp4test.Need(t)
	tests := []struct {
		name   string
		spec   mp4test.Spec
		factor int
		rate   float64
		mode   job.Output
		frames int
	}{
		{"81 frames at 16 fps ×2 → 161 at 32", mp4test.Spec{Width: 96, Height: 64, Frames: 81, FPS: "16"}, 2, 32, job.OutputBase64, 161},
		{"17 frames ×3 → 49 at 48, to the volume", mp4test.Spec{Width: 64, Height: 64, Frames: 17, FPS: "16", FastStart: true}, 3, 48, job.OutputVolume, 49},
		{"21 frames at 15 fps ×4 → 81 at 60", mp4test.Spec{Width: 64, Height: 96, Frames: 21, FPS: "15"}, 4, 60, job.OutputBase64, 81},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := makeVideo(t, tt.spec)
			out := t.TempDir()
			d := newDeliverer(t, Options{InlineMaxBytes: 10 << 20, OutputDir: out})
			var mu sync.Mutex
			var seen []int
			got, err := d.Deliver(t.Context(), Request{JobID: "j1", Filename: "wan2_2_00001.mp4", Mode: tt.mode,
				Video: bytes.NewReader(v.data), Size: int64(len(v.data)),
				Interpolate: &Interpolation{Factor: tt.factor, FrameRate: tt.rate, CRF: 23, Method: job.InterpolateFFmpeg,
					OnProgress: func(done, total int) {
						mu.Lock()
						defer mu.Unlock()
						if total != tt.frames {
							t.Errorf("progress total %d, want %d", total, tt.frames)
						}
						seen = append(seen, done)
					}}})
			if err != nil {
				t.Fatal(err)
			}
			var data []byte
			if tt.mode == job.OutputVolume {
				data = mp4test.ReadFile(t, got.Path)
				entries, _ := os.ReadDir(filepath.Dir(got.Path))
				if len(entries) != 1 {
					t.Errorf("job folder holds %d entries, want only the video", len(entries))
				}
			} else {
				if data, err = base64.StdEncoding.DecodeString(string(got.Video)); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(t.TempDir(), "got.mp4")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			p := mp4test.FFprobe(t, path)
			if p.Frames != tt.frames || math.Abs(p.FrameRate-tt.rate) > 1e-6 || p.Width != tt.spec.Width || p.Height != tt.spec.Height {
				t.Errorf("ffprobe: %d frames at %g fps, %d×%d; want %d at %g, %d×%d",
					p.Frames, p.FrameRate, p.Width, p.Height, tt.frames, tt.rate, tt.spec.Width, tt.spec.Height)
			}
			// The first-to-last-frame span is unchanged.
			srcSpan := float64(tt.spec.Frames-1) / v.probe.FrameRate
			if span := float64(p.Frames-1) / p.FrameRate; math.Abs(span-srcSpan) > 1e-6 {
				t.Errorf("span %gs, source %gs", span, srcSpan)
			}
			if got.Info.Frames != tt.frames || got.SizeBytes != int64(len(data)) || got.SHA256 != sha(data) {
				t.Errorf("delivered info %+v, size %d (file %d), sha %s", got.Info, got.SizeBytes, len(data), got.SHA256)
			}
			if bytes.Equal(data, v.data) {
				t.Error("the delivered video is the input")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 || seen[len(seen)-1] != tt.frames {
				t.Errorf("progress %v, want it to end at %d", seen, tt.frames)
			}
			assertEmptyDir(t, d.opts.TempDir)
		})
	}
}

func TestInterpolateErrors(t *testing.T) {
	mp4test.Need(t)
	v := makeVideo(t, mp4test.Spec{Width: 64, Height: 64, Frames: 9, FPS: "16"})
	tests := []struct {
		name string
		opts Options
		in   Interpolation
		data []byte
		code apperr.Code
		text string
	}{
		{"no ffmpeg", Options{FFmpeg: "/nonexistent/ffmpeg"}, Interpolation{Factor: 2, FrameRate: 32, CRF: 19}, v.data, apperr.Internal, "needs ffmpeg"},
		{"unknown method", Options{}, Interpolation{Factor: 2, FrameRate: 32, Method: "rife"}, v.data, apperr.InvalidInput, "not supported"},
		{"not a video", Options{}, Interpolation{Factor: 2, FrameRate: 32, CRF: 19}, []byte("this is not an mp4 file at all"), apperr.Internal, "interpolating the video with ffmpeg failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.InlineMaxBytes = 10 << 20
			d := newDeliverer(t, tt.opts)
			in := tt.in
			_, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "a.mp4", Mode: job.OutputBase64,
				Video: bytes.NewReader(tt.data), Size: int64(len(tt.data)), Interpolate: &in})
			e := wantCode(t, err, tt.code)
			if !bytes.Contains([]byte(e.Message), []byte(tt.text)) || e.Hint == "" {
				t.Errorf("error %q hint %q, want %q in the message", e.Message, e.Hint, tt.text)
			}
			assertEmptyDir(t, d.opts.TempDir)
		})
	}
}

func TestInterpolatedFrames(t *testing.T) {
	for _, c := range []struct{ n, f, want int }{{81, 2, 161}, {81, 3, 241}, {81, 4, 321}, {121, 2, 241}, {5, 2, 9}, {0, 2, 0}, {81, 1, 81}} {
		if got := InterpolatedFrames(c.n, c.f); got != c.want {
			t.Errorf("InterpolatedFrames(%d, %d) = %d, want %d", c.n, c.f, got, c.want)
		}
	}
}
