// Package deliver hands a finished video to the caller in one of three ways —
// inline as base64 in the result, uploaded to an S3-compatible bucket (a
// presigned or public URL), or written to the network volume — and reads its
// metadata (size, frames, frame rate, duration) from the file itself.
//
// # How a delivery runs
//
// The video stream (ComfyUI's /view response) is read once while its
// SHA-256 is computed. An inline video of known size (Content-Length) is
// hashed and base64-encoded chunk by chunk while the rest is read, and only
// its text is kept; any other goes to a spool file, in the volume's job
// folder for output=volume (so that the final file is a rename away) or in a
// temp folder. The video is probed with mp4.Probe (from the text, decoding
// only what it reads, or from the file); with Request.Interpolate ffmpeg interpolates it into
// a second file next to it, which replaces it (Interpolation); the last frame
// is extracted from it with ffmpeg when asked, and then it is delivered:
// base64 encoded into the result, uploaded from the file, or renamed into
// place. Spool and temp files are always removed.
//
// Base64 comes from github.com/segmentio/asm/base64: the same output as
// encoding/base64 (a test compares them), encoded with AVX2 where the CPU
// has it — about 13 times as fast on a 5 MB video, where encoding was the
// largest CPU cost of an inline job.
//
// # Memory profile
//
// Copying to a file uses one 256 KiB buffer; probing reads only box headers
// and sample tables (64 KiB buffer).
//   - inline: the base64 text, one buffer of exactly base64(size) bytes (4/3
//     of the video) written in place, and four 192 KiB chunk buffers while
//     it is read (a video of unknown size goes through a temp file instead).
//     The result's JSON splices the text in without copying it
//     (worker.Result.JSONParts).
//   - S3: the uploader reads parts straight from the spool file (section
//     readers, no part buffers); memory is constant in the video's size.
//   - volume: constant.
//
// The last frame, when asked, is one PNG in memory (about 1–2 MB at 1280×720).
package deliver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/asm/base64"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/mp4"
)

// Options configure a Deliverer.
type Options struct {
	// InlineMaxBytes is the largest base64 text returned inline: the video's
	// base64 plus the last frame's, when asked. 0 disables inline delivery.
	InlineMaxBytes int64
	// OutputDir is where output=volume writes <job id>/<file>.
	OutputDir string
	// TempDir holds spool files; "" means the system's temp folder.
	TempDir string
	// FFmpeg is the ffmpeg binary used for last_frame; "" means "ffmpeg" on PATH.
	FFmpeg string
	// S3 is the S3-compatible bucket; an empty Endpoint means none.
	S3 S3Options
}

// S3Options configure S3-compatible uploads.
type S3Options struct {
	Endpoint  string // BUCKET_ENDPOINT_URL; may name the bucket (path segment or virtual host)
	AccessKey string
	SecretKey string
	Bucket    string // BUCKET_NAME; overrides the bucket named by Endpoint
	Prefix    string // key prefix: <prefix>/<job id>/<file>
	Region    string
	PathStyle bool
	URLExpiry time.Duration // presigned URL lifetime; capped at 7 days
	PublicURL string        // when set, URLs are <PublicURL>/<key> instead of presigned

	// Tuning; zero values take the defaults noted.
	PartSize    int64         // multipart part size (default 8 MiB, at least 5 MiB)
	Concurrency int           // parts uploaded at once (default 2)
	MaxAttempts int           // attempts per request, retries included (default 3)
	MaxBackoff  time.Duration // longest wait between attempts (default 1s)
	Timeout     time.Duration // whole upload of one file (default 10m)
	DialTimeout time.Duration // TCP connect (default 5s)
}

// Defaults for the S3 tuning knobs.
const (
	DefaultPartSize    = 8 << 20
	MinPartSize        = 5 << 20
	DefaultConcurrency = 2
	DefaultMaxAttempts = 3
	DefaultMaxBackoff  = time.Second
	DefaultTimeout     = 10 * time.Minute
	DefaultDialTimeout = 5 * time.Second
	// MaxURLExpiry is SigV4's limit for a presigned URL.
	MaxURLExpiry = 7 * 24 * time.Hour
)

// OptionsFrom takes the delivery settings from the configuration.
func OptionsFrom(c *config.Config) Options {
	return Options{
		InlineMaxBytes: c.InlineMaxBytes,
		OutputDir:      c.OutputDir,
		S3: S3Options{
			Endpoint:  c.BucketEndpoint,
			AccessKey: c.BucketAccessKey,
			SecretKey: c.BucketSecretKey,
			Bucket:    c.BucketName,
			Prefix:    c.BucketPrefix,
			Region:    c.BucketRegion,
			PathStyle: c.BucketPathStyle,
			URLExpiry: c.BucketURLExpiry,
			PublicURL: c.BucketPublicURL,
		},
	}
}

// Request is one video to deliver.
type Request struct {
	JobID    string     // names the S3 key and the volume folder (sanitized)
	Filename string     // file name as ComfyUI saved it (base name used, sanitized)
	Mode     job.Output // auto, base64, s3 or volume; "" means auto
	Video    io.Reader  // the video bytes; the caller closes it
	// Size is the video's length when known (Content-Length), else -1. A
	// known size lets an inline delivery that cannot fit fail before reading.
	Size int64
	// LastFrame asks for the final frame as a PNG, delivered like the video.
	LastFrame bool
	// Interpolate, when set, raises the frame rate before delivery (the
	// last frame, size and SHA-256 are then those of the interpolated video).
	Interpolate *Interpolation
}

// Delivered is the outcome of a delivery: exactly one of Video, URL and Path
// is set for the video, and likewise for the last frame when it was asked.
type Delivered struct {
	Mode      job.Output // the mode used: base64, s3 or volume
	Filename  string     // the sanitized file name
	Video     []byte     // base64 text, when inline
	URL       string     // presigned or public URL, when uploaded
	Key       string     // object key, when uploaded
	Path      string     // file path, when written to the volume
	SizeBytes int64
	SHA256    string   // hex digest of the video bytes
	Info      mp4.Info // metadata read from the file
	// ProbeErr is set when the file's metadata could not be read; the video
	// is delivered anyway and Info holds only the MIME type.
	ProbeErr error

	LastFrame     string // base64 PNG, when inline
	LastFrameURL  string
	LastFramePath string
}

// Deliverer delivers videos. It is safe for concurrent use.
type Deliverer struct {
	opts Options
	log  *slog.Logger
	s3   *s3Target // nil when no bucket is configured
}

// New returns a Deliverer. A bucket that is configured but unusable (no
// credentials, no bucket name, a bad URL) is not an error here: it is logged,
// and every delivery that needs it fails UPLOAD_FAILED with the reason.
func New(opts Options, log *slog.Logger) (*Deliverer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.InlineMaxBytes < 0 {
		return nil, errors.New("deliver: InlineMaxBytes must not be negative")
	}
	d := &Deliverer{opts: opts, log: log}
	if strings.TrimSpace(opts.S3.Endpoint) != "" {
		d.s3 = newS3Target(opts.S3)
		if d.s3.err != nil {
			log.Warn("S3 delivery is configured but unusable", "error", d.s3.err.Message, "hint", d.s3.err.Hint)
		} else {
			log.Debug("S3 delivery configured", "endpoint", d.s3.endpoint, "bucket", d.s3.bucket, "region", d.s3.region, "path_style", opts.S3.PathStyle)
		}
	}
	return d, nil
}

// S3Configured reports whether a bucket endpoint is set (output=auto then uploads).
func (d *Deliverer) S3Configured() bool { return d.s3 != nil }

// S3Problem returns why the configured bucket cannot be used, or nil.
func (d *Deliverer) S3Problem() error {
	if d.s3 == nil || d.s3.err == nil {
		return nil
	}
	return d.s3.err
}

// Mode resolves auto to the mode a delivery will use.
func (d *Deliverer) Mode(m job.Output) job.Output {
	if m == "" || m == job.OutputAuto {
		if d.s3 != nil {
			return job.OutputS3
		}
		return job.OutputBase64
	}
	return m
}

// Base64Len is the length of the standard, padded base64 encoding of n bytes.
func Base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

// maxInlineRaw is the largest video whose base64 fits in limit bytes.
func maxInlineRaw(limit int64) int64 { return limit / 4 * 3 }

// Deliver delivers one video. Every error is an *apperr.Error:
// OUTPUT_TOO_LARGE, UPLOAD_FAILED, CANCELLED, TIMEOUT, COMFY_UNAVAILABLE (the
// stream broke) or INTERNAL.
func (d *Deliverer) Deliver(ctx context.Context, req Request) (*Delivered, error) {
	requested := req.Mode
	if requested == "" {
		requested = job.OutputAuto
	}
	mode := d.Mode(requested)
	filename := safeFilename(req.Filename)
	out := &Delivered{Mode: mode, Filename: filename}

	switch mode {
	case job.OutputBase64:
		if req.Size >= 0 && Base64Len(req.Size) > d.opts.InlineMaxBytes {
			return nil, d.tooLarge(requested, req.Size, 0)
		}
	case job.OutputS3:
		if d.s3 == nil {
			return nil, apperr.New(apperr.UploadFailed, "options.output is s3 but no bucket is configured",
				"set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY (and BUCKET_NAME unless the URL names the bucket), or use options.output=base64 or volume")
		}
		if d.s3.err != nil {
			return nil, d.s3.err
		}
	case job.OutputVolume:
		if d.opts.OutputDir == "" {
			return nil, apperr.New(apperr.UploadFailed, "options.output is volume but OUTPUT_DIR is empty",
				"set OUTPUT_DIR to a folder on the network volume, e.g. /runpod-volume/outputs")
		}
	default:
		return nil, apperr.Field(apperr.InvalidInput, "options.output", fmt.Sprintf("unknown output mode %q", req.Mode),
			"use one of auto, base64, s3, volume")
	}

	sp, err := d.spool(ctx, mode, req, filename)
	if err != nil {
		return nil, err
	}
	defer sp.cleanup()
	out.SizeBytes, out.SHA256 = sp.size, sp.sha256

	info, err := mp4.Probe(sp.readerAt(), sp.size)
	if in := req.Interpolate; in != nil {
		isp, ierr := d.interpolate(ctx, sp, info, in)
		if ierr != nil {
			return nil, ierr
		}
		sp.cleanup()
		sp = isp
		defer sp.cleanup()
		out.SizeBytes, out.SHA256 = sp.size, sp.sha256
		info, err = mp4.Probe(sp.file, sp.size)
	}
	if err != nil {
		d.log.Warn("could not read the video's metadata; delivering it anyway", "file", filename, "error", err)
		out.ProbeErr = err
		info = mp4.Info{MimeType: "video/mp4"}
	}
	out.Info = info

	var frame []byte
	if req.LastFrame {
		if frame, err = LastFrame(ctx, d.opts.FFmpeg, sp.path, info); err != nil {
			return nil, err
		}
	}

	switch mode {
	case job.OutputBase64:
		if err := d.inline(requested, sp, frame, out); err != nil {
			return nil, err
		}
	case job.OutputS3:
		if err := d.upload(ctx, req.JobID, filename, sp, frame, out); err != nil {
			return nil, err
		}
	case job.OutputVolume:
		if err := d.toVolume(sp, filename, frame, out); err != nil {
			return nil, err
		}
	}
	d.log.Debug("video delivered", "mode", mode, "file", filename, "bytes", out.SizeBytes,
		"width", info.Width, "height", info.Height, "frames", info.Frames)
	return out, nil
}

// tooLarge is the OUTPUT_TOO_LARGE error for a video (and frame) that does
// not fit inline.
func (d *Deliverer) tooLarge(requested job.Output, video, frame int64) *apperr.Error {
	enc := Base64Len(video)
	if frame > 0 {
		enc += Base64Len(frame)
	}
	what := fmt.Sprintf("the video is %s (%s as base64", mb(video), mb(enc))
	if frame > 0 {
		what = fmt.Sprintf("the video and its last frame are %s (%s as base64", mb(video+frame), mb(enc))
	}
	msg := fmt.Sprintf("%s), over the inline limit of %s (INLINE_MAX_BYTES)", what, mb(d.opts.InlineMaxBytes))
	hint := "configure an S3-compatible bucket (BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY) so that output=auto uploads it, " +
		"or use options.output=volume, or make the video smaller: raise options.crf, lower the resolution or options.length"
	if requested == job.OutputBase64 {
		hint = "use options.output=s3 (with a bucket configured) or options.output=volume, " +
			"or make the video smaller: raise options.crf, lower the resolution or options.length"
	}
	return apperr.New(apperr.OutputTooLarge, msg, hint)
}

// tooLargeUnknown is OUTPUT_TOO_LARGE for a stream that was cut off after n
// bytes, more than fits.
func (d *Deliverer) tooLargeUnknown(requested job.Output, n int64) *apperr.Error {
	e := d.tooLarge(requested, n, 0)
	e.Message = fmt.Sprintf("the video is larger than %s (more than %s as base64), over the inline limit of %s (INLINE_MAX_BYTES)",
		mb(n-1), mb(d.opts.InlineMaxBytes), mb(d.opts.InlineMaxBytes))
	return e
}

// mb renders a byte count for a message: MB with two decimals, or kB or
// bytes when smaller (a tiny limit must not read "0.00 MB").
func mb(n int64) string {
	switch {
	case n >= 10_000:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// spooled is the video copied to a local file or, for an inline video of
// known size, only its base64 text (file nil; readerAt decodes from it).
type spooled struct {
	text    []byte
	file    *os.File
	path    string
	size    int64
	sha256  string
	removed bool
}

// readerAt reads the spooled video.
func (s *spooled) readerAt() io.ReaderAt {
	if s.file == nil {
		return &textReaderAt{text: s.text, size: s.size}
	}
	return s.file
}

// textReaderAt reads the bytes that a base64 text encodes, decoding only
// the groups of 4 characters that cover each read (probing the video reads
// box headers and sample tables, a small part of it).
type textReaderAt struct {
	text []byte
	size int64
}

func (r *textReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.size)
	g0, g1 := off/3, (end+2)/3 // the groups of 3 bytes that hold [off, end)
	raw := make([]byte, (g1-g0)*3)
	n, err := base64.StdEncoding.Decode(raw, r.text[g0*4:g1*4])
	if err != nil {
		return 0, err
	}
	m := copy(p, raw[off-g0*3:min(int64(n), end-g0*3)])
	if m < len(p) {
		return m, io.EOF
	}
	return m, nil
}

func (s *spooled) cleanup() {
	if s.removed || s.file == nil {
		return
	}
	s.file.Close()
	os.Remove(s.path)
	s.removed = true
}

// spool copies the stream to a local file while hashing it.
func (d *Deliverer) spool(ctx context.Context, mode job.Output, req Request, filename string) (*spooled, error) {
	if req.Video == nil {
		return nil, apperr.New(apperr.OutputMissing, "no video stream to deliver", "this is a bug in the worker; report it with the worker's log")
	}
	// ffmpeg reads a file: the last frame and interpolation need one.
	if mode == job.OutputBase64 && !req.LastFrame && req.Interpolate == nil && req.Size > 0 &&
		Base64Len(req.Size) <= d.opts.InlineMaxBytes {
		return d.spoolText(ctx, mode, req)
	}
	var (
		f   *os.File
		err error
	)
	if mode == job.OutputVolume {
		dir := filepath.Join(d.opts.OutputDir, safeJobID(req.JobID))
		if err = os.MkdirAll(dir, 0o755); err == nil {
			f, err = os.CreateTemp(dir, "."+filename+".tmp-*")
		}
		if err != nil {
			return nil, apperr.Wrap(apperr.UploadFailed, err, "cannot write to OUTPUT_DIR: "+err.Error(),
				"check that OUTPUT_DIR ("+d.opts.OutputDir+") is on a mounted, writable volume with free space")
		}
	} else {
		f, err = os.CreateTemp(d.opts.TempDir, "wan22-video-*.mp4")
		if err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "cannot create a temp file: "+err.Error(),
				"check that the temp folder (TMPDIR) is writable and has free space")
		}
	}
	sp := &spooled{file: f, path: f.Name()}
	ok := false
	defer func() {
		if !ok {
			sp.cleanup()
		}
	}()

	limit := int64(-1)
	if mode == job.OutputBase64 {
		limit = maxInlineRaw(d.opts.InlineMaxBytes)
	}
	h := sha256.New()
	src := io.Reader(&ctxReader{ctx: ctx, r: req.Video})
	if limit >= 0 {
		src = io.LimitReader(src, limit+1)
	}
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), src, buf)
	if err != nil {
		return nil, streamError(ctx, err, mode)
	}
	if limit >= 0 && n > limit {
		// Reading stopped one byte past what fits: the video is larger still.
		return nil, d.tooLargeUnknown(req.Mode, n)
	}
	if req.Size >= 0 && n != req.Size {
		return nil, apperr.New(apperr.ComfyUnavailable,
			fmt.Sprintf("the video stream ended after %d of %d bytes", n, req.Size),
			"ComfyUI stopped sending the video; retry the job")
	}
	if n == 0 {
		return nil, apperr.New(apperr.OutputMissing, "the video is empty (0 bytes)",
			"ComfyUI wrote an empty file; check ComfyUI's log for errors from the video encoder")
	}
	sp.size, sp.sha256 = n, hex.EncodeToString(h.Sum(nil))
	ok = true
	return sp, nil
}

// inlineChunk is how much of the stream is read, hashed and encoded at a
// time: a multiple of 3, so that each chunk's base64 stands alone (no
// padding inside the text).
const inlineChunk = 3 << 16 // 192 KiB

// inlineBuffers is how many chunks may be in flight between the reader and
// the helper that hashes and encodes them.
const inlineBuffers = 4

// spoolText reads a video of known size (req.Size, which fits inline) and
// keeps only its base64 text, written in place into one buffer of its final
// size: each chunk, once read, goes to a helper that hashes and encodes it
// (on another core) while the next chunk is read, so that when the stream
// ends only its last chunk is left to process. The raw video is never held
// whole: a few chunk buffers are reused.
func (d *Deliverer) spoolText(ctx context.Context, mode job.Output, req Request) (*spooled, error) {
	type chunk struct {
		buf []byte
		off int64
	}
	text := make([]byte, Base64Len(req.Size))
	free, filled := make(chan []byte, inlineBuffers), make(chan chunk, inlineBuffers)
	for range inlineBuffers {
		free <- make([]byte, inlineChunk)
	}
	h := sha256.New()
	var helper sync.WaitGroup
	helper.Go(func() {
		for c := range filled {
			h.Write(c.buf)
			base64.StdEncoding.Encode(text[c.off/3*4:], c.buf)
			free <- c.buf[:cap(c.buf)]
		}
	})
	stopped := false
	stop := func() { // every chunk handed out is hashed and encoded
		if !stopped {
			stopped = true
			close(filled)
			helper.Wait()
		}
	}
	defer stop()

	src := &ctxReader{ctx: ctx, r: req.Video}
	for off := int64(0); off < req.Size; {
		buf := (<-free)[:min(inlineChunk, req.Size-off)]
		n, err := io.ReadFull(src, buf)
		switch {
		case err == nil:
		case (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && off+int64(n) == 0:
			return nil, apperr.New(apperr.OutputMissing, "the video is empty (0 bytes)",
				"ComfyUI wrote an empty file; check ComfyUI's log for errors from the video encoder")
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, apperr.New(apperr.ComfyUnavailable,
				fmt.Sprintf("the video stream ended after %d of %d bytes", off+int64(n), req.Size),
				"ComfyUI stopped sending the video; retry the job")
		default:
			return nil, streamError(ctx, err, mode)
		}
		filled <- chunk{buf: buf, off: off}
		off += int64(n)
	}
	var one [1]byte
	switch _, err := io.ReadFull(src, one[:]); {
	case err == nil:
		return nil, apperr.New(apperr.ComfyUnavailable,
			fmt.Sprintf("the video stream sent more than its announced %d bytes", req.Size),
			"ComfyUI sent a damaged response; retry the job")
	case !errors.Is(err, io.EOF):
		return nil, streamError(ctx, err, mode)
	}
	stop()
	return &spooled{text: text, size: req.Size, sha256: hex.EncodeToString(h.Sum(nil))}, nil
}

// streamError maps a failure while copying the stream.
func streamError(ctx context.Context, err error, mode job.Output) *apperr.Error {
	if e := ctxError(ctx); e != nil {
		return e
	}
	if e := apperr.As(err); e != nil {
		return e
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		if mode == job.OutputVolume {
			return apperr.Wrap(apperr.UploadFailed, err, "writing to OUTPUT_DIR failed: "+err.Error(),
				"check that the volume is mounted, writable and has free space")
		}
		return apperr.Wrap(apperr.Internal, err, "writing the temp file failed: "+err.Error(),
			"check that the temp folder (TMPDIR) has free space")
	}
	return apperr.Wrap(apperr.ComfyUnavailable, err, "reading the video from ComfyUI failed: "+err.Error(),
		"ComfyUI stopped sending the video; retry the job")
}

// ctxError maps a done context to CANCELLED or TIMEOUT.
func ctxError(ctx context.Context) *apperr.Error {
	switch err := ctx.Err(); {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return apperr.Wrap(apperr.Timeout, err, "the job ran out of time while delivering the video",
			"raise the job's execution timeout (policy.executionTimeout or JOB_TIMEOUT)")
	default:
		if c := apperr.As(context.Cause(ctx)); c != nil {
			return c // whoever cancelled said why (the worker shutting down: submit again)
		}
		return apperr.Wrap(apperr.Cancelled, err, "the job was cancelled while delivering the video", "")
	}
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// inline encodes the spooled video (and frame) as base64, within the limit.
func (d *Deliverer) inline(requested job.Output, sp *spooled, frame []byte, out *Delivered) error {
	total := Base64Len(sp.size)
	if frame != nil {
		total += Base64Len(int64(len(frame)))
	}
	if total > d.opts.InlineMaxBytes {
		return d.tooLarge(requested, sp.size, int64(len(frame)))
	}
	if sp.file == nil {
		out.Video = sp.text
		if frame != nil {
			out.LastFrame = base64.StdEncoding.EncodeToString(frame)
		}
		return nil
	}
	if _, err := sp.file.Seek(0, io.SeekStart); err != nil {
		return apperr.Wrap(apperr.Internal, err, "rereading the video failed: "+err.Error(), "check the temp folder (TMPDIR)")
	}
	// Encoded chunk by chunk (a multiple of 3 bytes) straight into the text.
	text := make([]byte, Base64Len(sp.size))
	buf := make([]byte, inlineChunk)
	for off := int64(0); off < sp.size; off += inlineChunk {
		n := min(inlineChunk, sp.size-off)
		if _, err := io.ReadFull(sp.file, buf[:n]); err != nil {
			return apperr.Wrap(apperr.Internal, err, "rereading the video failed: "+err.Error(), "check the temp folder (TMPDIR)")
		}
		base64.StdEncoding.Encode(text[off/3*4:], buf[:n])
	}
	out.Video = text
	if frame != nil {
		out.LastFrame = base64.StdEncoding.EncodeToString(frame)
	}
	return nil
}

// lastFrameName is the file name of the last frame next to the video.
func lastFrameName(video string) string {
	return strings.TrimSuffix(video, filepath.Ext(video)) + "_last.png"
}
