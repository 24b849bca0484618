package deliver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/mp4"
	"github.com/wan22-worker/wan22-worker/internal/mp4/mp4test"
)

// testVideo is a real MP4 made with ffmpeg, shared by the tests of this file.
type testVideo struct {
	path  string
	data  []byte
	spec  mp4test.Spec
	probe mp4test.Probe
}

func makeVideo(t testing.TB, s mp4test.Spec) testVideo {
	t.Helper()
	p := mp4test.Make(t, t.TempDir(), s)
	return testVideo{path: p, data: mp4test.ReadFile(t, p), spec: s, probe: mp4test.FFprobe(t, p)}
}

func newDeliverer(t testing.TB, o Options) *Deliverer {
	t.Helper()
	if o.TempDir == "" {
		o.TempDir = t.TempDir()
	}
	d, err := New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func wantCode(t *testing.T, err error, code apperr.Code) *apperr.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	e := apperr.As(err)
	if e == nil || e.Code != code {
		t.Fatalf("error %v (%T), want code %s", err, err, code)
	}
	if e.Hint == "" && code != apperr.Cancelled {
		t.Errorf("%s error without a hint: %v", code, err)
	}
	return e
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestOptionsFrom(t *testing.T) {
	c, err := config.Load(nil, func(k string) string {
		return map[string]string{
			"INLINE_MAX_BYTES":    "1234",
			"OUTPUT_DIR":          "/data/out",
			"BUCKET_ENDPOINT_URL": "https://b.s3.eu-west-1.amazonaws.com",
			"BUCKET_PREFIX":       "videos",
			"BUCKET_URL_EXPIRY":   "1h",
			"BUCKET_PATH_STYLE":   "false",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	o := OptionsFrom(c)
	if o.InlineMaxBytes != 1234 || o.OutputDir != "/data/out" || o.S3.Endpoint != "https://b.s3.eu-west-1.amazonaws.com" ||
		o.S3.Prefix != "videos" || o.S3.URLExpiry.String() != "1h0m0s" || o.S3.PathStyle {
		t.Errorf("OptionsFrom: %+v", o)
	}
}

func TestMode(t *testing.T) {
	plain := newDeliverer(t, Options{InlineMaxBytes: 100})
	withS3 := newDeliverer(t, Options{InlineMaxBytes: 100, S3: S3Options{Endpoint: "http://127.0.0.1:1/b", AccessKey: "a", SecretKey: "s"}})
	tests := []struct {
		d    *Deliverer
		in   job.Output
		want job.Output
	}{
		{plain, "", job.OutputBase64},
		{plain, job.OutputAuto, job.OutputBase64},
		{withS3, job.OutputAuto, job.OutputS3},
		{withS3, job.OutputBase64, job.OutputBase64},
		{withS3, job.OutputVolume, job.OutputVolume},
		{plain, job.OutputS3, job.OutputS3},
	}
	for _, tt := range tests {
		if got := tt.d.Mode(tt.in); got != tt.want {
			t.Errorf("Mode(%q) with S3=%v: %q, want %q", tt.in, tt.d.S3Configured(), got, tt.want)
		}
	}
}

func TestSafeNames(t *testing.T) {
	ids := map[string]string{
		"":                       "job",
		"sync-1a2b-e1":           "sync-1a2b-e1",
		"../../etc/passwd":       "_._.._etc_passwd",
		".":                      "_",
		"..":                     "_.",
		"a b/c\\d\x00":           "a_b_c_d_",
		strings.Repeat("x", 300): strings.Repeat("x", 128),
	}
	for in, want := range ids {
		if got := safeJobID(in); got != want {
			t.Errorf("safeJobID(%q) = %q, want %q", in, got, want)
		}
	}
	files := map[string]string{
		"":                                "video.mp4",
		"wan2_2_00001.mp4":                "wan2_2_00001.mp4",
		"sub/dir/clip.mp4":                "clip.mp4",
		"..\\..\\evil.mp4":                "evil.mp4",
		"../":                             "video.mp4",
		".hidden.mp4":                     "_hidden.mp4",
		"with space:and?.mp4":             "with_space_and_.mp4",
		strings.Repeat("y", 200) + ".mp4": strings.Repeat("y", 156) + ".mp4",
	}
	for in, want := range files {
		if got := safeFilename(in); got != want {
			t.Errorf("safeFilename(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBase64Len(t *testing.T) {
	for n := int64(0); n < 50; n++ {
		if got, want := Base64Len(n), int64(base64.StdEncoding.EncodedLen(int(n))); got != want {
			t.Fatalf("Base64Len(%d) = %d, want %d", n, got, want)
		}
		limit := Base64Len(n)
		if Base64Len(maxInlineRaw(limit)) > limit || Base64Len(maxInlineRaw(limit)+1) <= limit {
			t.Fatalf("maxInlineRaw(%d) = %d is not the largest fitting size", limit, maxInlineRaw(limit))
		}
	}
}

// TestInlineBoundary delivers a real MP4 inline with the limit exactly at its
// base64 size (delivered) and one byte under it (OUTPUT_TOO_LARGE), with the
// size known in advance and unknown.
func TestInlineBoundary(t *testing.T) {
	v := makeVideo(t, mp4test.Spec{Width: 64, Height: 64, Frames: 5, FPS: "16"})
	enc := Base64Len(int64(len(v.data)))
	for _, mode := range []job.Output{job.OutputAuto, job.OutputBase64} {
		for _, size := range []int64{int64(len(v.data)), -1} {
			for _, limit := range []int64{enc, enc - 1} {
				name := string(mode) + "/size" + map[bool]string{true: "Known", false: "Unknown"}[size >= 0] +
					map[bool]string{true: "/atLimit", false: "/oneOver"}[limit == enc]
				t.Run(name, func(t *testing.T) {
					tmp := t.TempDir()
					d := newDeliverer(t, Options{InlineMaxBytes: limit, TempDir: tmp})
					got, err := d.Deliver(t.Context(), Request{JobID: "j1", Filename: "wan2_2_00001.mp4", Mode: mode,
						Video: bytes.NewReader(v.data), Size: size})
					assertEmptyDir(t, tmp)
					if limit < enc {
						e := wantCode(t, err, apperr.OutputTooLarge)
						want := "BUCKET_ENDPOINT_URL"
						if mode == job.OutputBase64 {
							want = "options.output=s3"
						}
						if !strings.Contains(e.Hint, want) || !strings.Contains(e.Message, "INLINE_MAX_BYTES") {
							t.Errorf("error %q, hint %q", e.Message, e.Hint)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					raw, err := base64.StdEncoding.DecodeString(string(got.Video))
					if err != nil || !bytes.Equal(raw, v.data) {
						t.Fatalf("inline video does not decode to the file (%v)", err)
					}
					if int64(len(got.Video)) != enc || got.Mode != job.OutputBase64 || got.URL != "" || got.Path != "" {
						t.Errorf("delivered %d base64 bytes, mode %q, url %q, path %q", len(got.Video), got.Mode, got.URL, got.Path)
					}
					if got.SizeBytes != int64(len(v.data)) || got.SHA256 != sha(v.data) {
						t.Errorf("size %d sha %s, want %d %s", got.SizeBytes, got.SHA256, len(v.data), sha(v.data))
					}
					want := mp4.Info{Width: 64, Height: 64, Frames: 5, FrameRate: 16, Duration: 5.0 / 16, Codec: "h264", MimeType: "video/mp4"}
					if got.Info != want || got.ProbeErr != nil {
						t.Errorf("info %+v (%v), want %+v", got.Info, got.ProbeErr, want)
					}
				})
			}
		}
	}
}

// TestInlineLastFrameBoundary: the video and its last frame share the limit.
func TestInlineLastFrameBoundary(t *testing.T) {
	v := makeVideo(t, mp4test.Spec{Width: 64, Height: 48, Frames: 9, FPS: "16"})
	d := newDeliverer(t, Options{InlineMaxBytes: 1 << 30})
	got, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "a.mp4", Video: bytes.NewReader(v.data), Size: -1, LastFrame: true})
	if err != nil {
		t.Fatal(err)
	}
	frame, err := base64.StdEncoding.DecodeString(got.LastFrame)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(frame))
	if err != nil || img.Bounds() != image.Rect(0, 0, 64, 48) {
		t.Fatalf("last frame: %v, bounds %v", err, img)
	}
	total := Base64Len(int64(len(v.data))) + Base64Len(int64(len(frame)))
	for _, limit := range []int64{total, total - 1} {
		d := newDeliverer(t, Options{InlineMaxBytes: limit})
		_, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "a.mp4", Video: bytes.NewReader(v.data), Size: -1, LastFrame: true})
		if limit == total && err != nil {
			t.Errorf("limit %d (exact): %v", limit, err)
		}
		if limit < total {
			e := wantCode(t, err, apperr.OutputTooLarge)
			if !strings.Contains(e.Message, "last frame") {
				t.Errorf("message %q does not mention the last frame", e.Message)
			}
		}
	}
}

// failingReader yields n bytes of data, then fails; check runs once, at the
// point of failure, to look at the file system while the delivery is half done.
type failingReader struct {
	data  []byte
	n     int
	check func()
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		if f.check != nil {
			f.check()
			f.check = nil
		}
		return 0, errors.New("connection reset by peer")
	}
	k := copy(p, f.data[:min(len(f.data), f.n)])
	f.data, f.n = f.data[k:], f.n-k
	return k, nil
}

func TestVolume(t *testing.T) {
	v := makeVideo(t, mp4test.Spec{Width: 128, Height: 64, Frames: 17, FPS: "16", FastStart: true})
	out := t.TempDir()
	d := newDeliverer(t, Options{InlineMaxBytes: 10, OutputDir: out})
	got, err := d.Deliver(t.Context(), Request{JobID: "../job/1", Filename: "clips/wan2_2_00001.mp4", Mode: job.OutputVolume,
		Video: bytes.NewReader(v.data), Size: int64(len(v.data)), LastFrame: true})
	if err != nil {
		t.Fatal(err)
	}
	wantPath := filepath.Join(out, "_._job_1", "wan2_2_00001.mp4")
	if got.Path != wantPath || got.Mode != job.OutputVolume || len(got.Video) != 0 {
		t.Fatalf("path %q mode %q, want %q", got.Path, got.Mode, wantPath)
	}
	if b := mp4test.ReadFile(t, got.Path); !bytes.Equal(b, v.data) {
		t.Error("file on the volume differs from the video")
	}
	if got.LastFramePath != filepath.Join(out, "_._job_1", "wan2_2_00001_last.png") {
		t.Errorf("last frame path %q", got.LastFramePath)
	}
	if _, err := png.Decode(bytes.NewReader(mp4test.ReadFile(t, got.LastFramePath))); err != nil {
		t.Errorf("last frame on the volume: %v", err)
	}
	if got.Info.Frames != 17 || got.Info.Width != 128 {
		t.Errorf("info %+v", got.Info)
	}
	for _, p := range []string{got.Path, got.LastFramePath} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v (%v), want 0644", p, fi.Mode().Perm(), err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(got.Path))
	if len(entries) != 2 {
		t.Errorf("job folder holds %d entries, want the video and the frame", len(entries))
	}

	// Re-delivering the same job overwrites the same file.
	other := makeVideo(t, mp4test.Spec{Width: 64, Height: 64, Frames: 5, FPS: "16"})
	again, err := d.Deliver(t.Context(), Request{JobID: "../job/1", Filename: "wan2_2_00001.mp4", Mode: job.OutputVolume,
		Video: bytes.NewReader(other.data), Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if again.Path != got.Path || !bytes.Equal(mp4test.ReadFile(t, again.Path), other.data) {
		t.Errorf("re-delivery: path %q, content replaced: %v", again.Path, bytes.Equal(mp4test.ReadFile(t, again.Path), other.data))
	}
}

// TestVolumeAtomic: a stream that breaks halfway leaves no file at the final
// path, at any moment, and no temp file afterwards.
func TestVolumeAtomic(t *testing.T) {
	v := makeVideo(t, mp4test.Spec{Width: 64, Height: 64, Frames: 5, FPS: "16"})
	out := t.TempDir()
	jobDir := filepath.Join(out, "job-2")
	final := filepath.Join(jobDir, "v.mp4")
	checked := false
	r := &failingReader{data: v.data, n: len(v.data) / 2, check: func() {
		checked = true
		if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("final path visible mid-write: %v", err)
		}
		entries, _ := os.ReadDir(jobDir)
		if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), ".v.mp4.tmp-") {
			t.Errorf("mid-write the job folder holds %v, want one hidden temp file", entries)
		}
	}}
	d := newDeliverer(t, Options{OutputDir: out})
	_, err := d.Deliver(t.Context(), Request{JobID: "job-2", Filename: "v.mp4", Mode: job.OutputVolume, Video: r, Size: -1})
	e := wantCode(t, err, apperr.ComfyUnavailable)
	if !strings.Contains(e.Message, "connection reset") {
		t.Errorf("message %q", e.Message)
	}
	if !checked {
		t.Fatal("the reader never reached its failure point")
	}
	if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("final path exists after a failed delivery: %v", err)
	}
	assertEmptyDir(t, jobDir)
}

func TestVolumeNotWritable(t *testing.T) {
	// A path under a regular file cannot be created, even by root.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDeliverer(t, Options{OutputDir: file})
	_, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "v.mp4", Mode: job.OutputVolume, Video: strings.NewReader("x"), Size: 1})
	e := wantCode(t, err, apperr.UploadFailed)
	if !strings.Contains(e.Hint, "OUTPUT_DIR") {
		t.Errorf("hint %q", e.Hint)
	}
	d = newDeliverer(t, Options{})
	_, err = d.Deliver(t.Context(), Request{JobID: "j", Mode: job.OutputVolume, Video: strings.NewReader("x"), Size: 1})
	wantCode(t, err, apperr.UploadFailed)
}

func TestS3NotUsable(t *testing.T) {
	tests := []struct {
		name string
		s3   S3Options
		mode job.Output
		hint string
	}{
		{"s3 requested, none configured", S3Options{}, job.OutputS3, "BUCKET_ENDPOINT_URL"},
		{"auto, no credentials", S3Options{Endpoint: "http://127.0.0.1:9/bucket"}, job.OutputAuto, "BUCKET_ACCESS_KEY_ID"},
		{"s3, no secret", S3Options{Endpoint: "http://127.0.0.1:9/bucket", AccessKey: "a"}, job.OutputS3, "BUCKET_SECRET_ACCESS_KEY"},
		{"s3, no bucket", S3Options{Endpoint: "http://127.0.0.1:9", AccessKey: "a", SecretKey: "b"}, job.OutputS3, "BUCKET_NAME"},
		{"s3, bad URL", S3Options{Endpoint: "ftp://host/bucket", AccessKey: "a", SecretKey: "b"}, job.OutputS3, "BUCKET_ENDPOINT_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			d := newDeliverer(t, Options{InlineMaxBytes: 1 << 20, TempDir: tmp, S3: tt.s3})
			got, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "v.mp4", Mode: tt.mode, Video: strings.NewReader("data"), Size: 4})
			e := wantCode(t, err, apperr.UploadFailed)
			if got != nil {
				t.Errorf("delivered %+v", got)
			}
			if !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("hint %q does not mention %s", e.Hint, tt.hint)
			}
			if tt.s3.Endpoint != "" && d.S3Problem() == nil {
				t.Error("S3Problem() is nil for an unusable bucket")
			}
			assertEmptyDir(t, tmp)
		})
	}
}

func TestStreamErrors(t *testing.T) {
	v := makeVideo(t, mp4test.Spec{Width: 64, Height: 64, Frames: 5, FPS: "16"})
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		req  Request
		code apperr.Code
	}{
		{"stream breaks", t.Context(), Request{Video: &failingReader{data: v.data, n: 100}, Size: -1}, apperr.ComfyUnavailable},
		{"stream shorter than its size", t.Context(), Request{Video: bytes.NewReader(v.data[:100]), Size: int64(len(v.data))}, apperr.ComfyUnavailable},
		{"empty stream", t.Context(), Request{Video: strings.NewReader(""), Size: -1}, apperr.OutputMissing},
		{"no stream", t.Context(), Request{Size: -1}, apperr.OutputMissing},
		{"reader's own typed error", t.Context(), Request{Video: io.MultiReader(strings.NewReader("ab"), errReader{apperr.New(apperr.ComfyCrashed, "gone", "restart")}), Size: -1}, apperr.ComfyCrashed},
		{"cancelled", cancelled, Request{Video: bytes.NewReader(v.data), Size: -1}, apperr.Cancelled},
		{"known size: stream breaks", t.Context(), Request{Video: &failingReader{data: v.data, n: 100}, Size: int64(len(v.data))}, apperr.ComfyUnavailable},
		{"known size: stream longer than its size", t.Context(), Request{Video: bytes.NewReader(v.data), Size: 100}, apperr.ComfyUnavailable},
		{"known size: empty stream", t.Context(), Request{Video: strings.NewReader(""), Size: 100}, apperr.OutputMissing},
		{"known size: cancelled", cancelled, Request{Video: bytes.NewReader(v.data), Size: int64(len(v.data))}, apperr.Cancelled},
		{"unknown mode", t.Context(), Request{Mode: "ftp", Video: bytes.NewReader(v.data), Size: -1}, apperr.InvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			d := newDeliverer(t, Options{InlineMaxBytes: 1 << 20, TempDir: tmp})
			tt.req.JobID, tt.req.Filename = "j", "v.mp4"
			_, err := d.Deliver(tt.ctx, tt.req)
			wantCode(t, err, tt.code)
			assertEmptyDir(t, tmp)
		})
	}
}

// TestInlineWithoutTempFile: a small inline video of known size is delivered
// from memory (the temp folder is never touched, so an unusable one does not
// matter); one of unknown size, or with its last frame, still takes the
// temp-file path.
func TestInlineWithoutTempFile(t *testing.T) {
	v := makeVideo(t, mp4test.Spec{Width: 64, Height: 64, Frames: 5, FPS: "16"})
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	d := newDeliverer(t, Options{InlineMaxBytes: 1 << 20, TempDir: missing})
	for _, mode := range []job.Output{job.OutputAuto, job.OutputBase64} {
		got, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "v.mp4", Mode: mode, Video: bytes.NewReader(v.data), Size: int64(len(v.data))})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if raw, _ := base64.StdEncoding.DecodeString(string(got.Video)); !bytes.Equal(raw, v.data) || got.SHA256 != sha(v.data) || got.Info.Frames != 5 {
			t.Fatalf("%s: delivered %d bytes, sha %s, info %+v", mode, len(raw), got.SHA256, got.Info)
		}
	}
	for name, req := range map[string]Request{
		"unknown size": {Video: bytes.NewReader(v.data), Size: -1},
		"last frame":   {Video: bytes.NewReader(v.data), Size: int64(len(v.data)), LastFrame: true},
	} {
		req.JobID, req.Filename = "j", "v.mp4"
		if _, err := d.Deliver(t.Context(), req); err == nil || !strings.Contains(err.Error(), "temp file") {
			t.Errorf("%s: error %v, want the temp file's", name, err)
		}
	}
}

// TestCancelCauseKept: a typed cancel cause comes back as it is.
func TestCancelCauseKept(t *testing.T) {
	v := makeVideo(t, mp4test.Spec{Width: 64, Height: 64, Frames: 5, FPS: "16"})
	cause := apperr.New(apperr.Cancelled, "the worker is shutting down", "submit the job again")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	d := newDeliverer(t, Options{InlineMaxBytes: 1 << 20})
	for _, size := range []int64{-1, int64(len(v.data))} {
		_, err := d.Deliver(ctx, Request{JobID: "j", Filename: "v.mp4", Video: bytes.NewReader(v.data), Size: size})
		if e := apperr.As(err); e == nil || e.Message != cause.Message || e.Hint != cause.Hint {
			t.Errorf("size %d: error %v, want the cause %v", size, err, cause)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestNotAnMP4 delivers bytes that are no MP4: the video still goes out, the
// probe error is reported beside it.
func TestNotAnMP4(t *testing.T) {
	d := newDeliverer(t, Options{InlineMaxBytes: 1 << 20})
	got, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "v.mp4", Video: strings.NewReader("not a video at all"), Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got.ProbeErr == nil || got.Info.MimeType != "video/mp4" || len(got.Video) == 0 {
		t.Errorf("delivered %+v", got)
	}
}

// TestInlineChunks: an inline video of known size is hashed and
// encoded chunk by chunk while it is read; whatever the sizes of the reads
// and wherever the video ends relative to a chunk, the text is the base64 of
// the whole video and the digest its SHA-256, through the memory path and
// through the temp-file path alike.
func TestInlineChunks(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 4, inlineChunk - 1, inlineChunk, inlineChunk + 1, inlineChunk + 2, 3*inlineChunk + 5} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		for _, size := range []int64{int64(n), -1} { // known: memory; unknown: temp file
			t.Run(fmt.Sprintf("%d/size%d", n, size), func(t *testing.T) {
				d := newDeliverer(t, Options{InlineMaxBytes: 1 << 22, TempDir: t.TempDir()})
				got, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "v.mp4",
					Video: &jaggedReader{data: data, rnd: rand.New(rand.NewPCG(uint64(n), 3))}, Size: size})
				if err != nil {
					t.Fatal(err)
				}
				if string(got.Video) != base64.StdEncoding.EncodeToString(data) {
					t.Errorf("the text is not the video's base64 (%d bytes for %d)", len(got.Video), n)
				}
				if got.SHA256 != sha(data) || got.SizeBytes != int64(n) {
					t.Errorf("sha %s size %d, want %s %d", got.SHA256, got.SizeBytes, sha(data), n)
				}
			})
		}
	}
}

// TestTextReaderAt: reading the video back from its base64 text gives the
// bytes and the io.EOF that a reader over the bytes themselves gives, at
// every offset and length around the groups of 3.
func TestTextReaderAt(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 100} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*37 + 11)
		}
		text := []byte(base64.StdEncoding.EncodeToString(data))
		r := &textReaderAt{text: text, size: int64(n)}
		want := bytes.NewReader(data)
		for off := int64(0); off <= int64(n)+1; off++ {
			for l := 0; l <= 8; l++ {
				got, exp := make([]byte, l), make([]byte, l)
				gn, gerr := r.ReadAt(got, off)
				wn, werr := want.ReadAt(exp, off)
				if gn != wn || !bytes.Equal(got[:gn], exp[:wn]) || (gerr == nil) != (werr == nil) {
					t.Fatalf("size %d, ReadAt(%d bytes, %d) = %d %q %v, want %d %q %v", n, l, off, gn, got[:gn], gerr, wn, exp[:wn], werr)
				}
			}
		}
	}
}

// jaggedReader returns its data in reads of random sizes, from 1 byte to
// 100 KiB, sometimes together with io.EOF.
type jaggedReader struct {
	data []byte
	rnd  *rand.Rand
}

func (r *jaggedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:min(len(r.data), 1+r.rnd.IntN(100<<10))])
	r.data = r.data[n:]
	if len(r.data) == 0 && r.rnd.IntN(2) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// TestLastFrame checks that LastFrame returns exactly the final frame: the
// same pixels as ffmpeg's own frame selection by number, and not the frame
// before it.
func TestLastFrame(t *testing.T) {
	specs := []mp4test.Spec{
		{Width: 64, Height: 64, Frames: 5, FPS: "16"},             // shorter than the seek window
		{Width: 160, Height: 96, Frames: 41, FPS: "16", GOP: 250}, // one keyframe
		{Width: 160, Height: 96, Frames: 49, FPS: "24", GOP: 12},  // several keyframes
		{Width: 176, Height: 144, Frames: 31, FPS: "30000/1001"},  // NTSC rate
		{Width: 96, Height: 64, Frames: 21, FPS: "16", Fragmented: true, GOP: 5},
	}
	for _, s := range specs {
		t.Run(s.Name(), func(t *testing.T) {
			v := makeVideo(t, s)
			info, err := mp4.Probe(bytes.NewReader(v.data), int64(len(v.data)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := LastFrame(t.Context(), "", v.path, info)
			if err != nil {
				t.Fatal(err)
			}
			last := frameN(t, v.path, s.Frames-1)
			prev := frameN(t, v.path, s.Frames-2)
			img := decodePNG(t, got)
			if !samePixels(img, last) {
				t.Error("LastFrame differs from the video's last frame")
			}
			if samePixels(img, prev) {
				t.Error("LastFrame equals the frame before the last")
			}
			// Without metadata it still finds the last frame.
			got2, err := LastFrame(t.Context(), "", v.path, mp4.Info{})
			if err != nil {
				t.Fatal(err)
			}
			if !samePixels(decodePNG(t, got2), last) {
				t.Error("LastFrame without metadata differs from the last frame")
			}
		})
	}
}

func TestLastFrameErrors(t *testing.T) {
	mp4test.Need(t)
	_, err := LastFrame(t.Context(), "/nonexistent/ffmpeg", "x.mp4", mp4.Info{})
	wantCode(t, err, apperr.Internal)
	bad := filepath.Join(t.TempDir(), "bad.mp4")
	if err := os.WriteFile(bad, []byte("not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LastFrame(t.Context(), "", bad, mp4.Info{})
	wantCode(t, err, apperr.Internal)
}

// frameN extracts frame n with ffmpeg's select filter (decoding everything).
func frameN(t *testing.T, path string, n int) image.Image {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-vf", "select=eq(n\\,"+strconv.Itoa(n)+")",
		"-frames:v", "1", "-pix_fmt", "rgb24", "-c:v", "png", "-f", "image2pipe", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg select frame %d: %v", n, err)
	}
	return decodePNG(t, out)
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode PNG: %v", err)
	}
	return img
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				return false
			}
		}
	}
	return true
}

func TestSplitPNGs(t *testing.T) {
	var one bytes.Buffer
	if err := png.Encode(&one, image.NewGray(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	p := one.Bytes()
	tests := []struct {
		name string
		in   []byte
		want int
	}{
		{"none", nil, 0},
		{"one", p, 1},
		{"three", bytes.Repeat(p, 3), 3},
		{"two and a truncated one", append(bytes.Repeat(p, 2), p[:len(p)-5]...), 2},
		{"garbage after", append(append([]byte{}, p...), "junk"...), 1},
		{"garbage", []byte("\x89PNG\r\n\x1a\n\xff\xff\xff\xffIHDR"), 0},
	}
	for _, tt := range tests {
		got := splitPNGs(tt.in)
		if len(got) != tt.want {
			t.Errorf("%s: %d PNGs, want %d", tt.name, len(got), tt.want)
		}
		for _, g := range got {
			if !bytes.Equal(g, p) {
				t.Errorf("%s: a split PNG differs from the original", tt.name)
			}
		}
	}
}
