package job

import (
	"bytes"
	"image"
	"image/color"
	"testing"
)

// TestPreparedKeepsFaithfulInput: an input that already is the prepared
// image (PNG or JPEG of exactly the video size, upright, opaque) is uploaded
// as it came; anything rendering would change is re-rendered as a PNG.
func TestPreparedKeepsFaithfulInput(t *testing.T) {
	grad := gradient(64, 48)
	translucent := gradient(64, 48)
	translucent.SetRGBA(3, 3, color.RGBA{10, 20, 30, 0x80})
	rgb := encodePNG(t, grad)
	jpg := encodeJPEG(t, grad)
	tests := []struct {
		name       string
		data       []byte
		w, h       int
		keep       bool
		wantFormat string
	}{
		{name: "png at size", data: rgb, w: 64, h: 48, keep: true, wantFormat: FormatPNG},
		{name: "jpeg at size", data: jpg, w: 64, h: 48, keep: true, wantFormat: FormatJPEG},
		{name: "png resized", data: rgb, w: 96, h: 64, wantFormat: FormatPNG},
		{name: "png with alpha", data: encodePNG(t, translucent), w: 64, h: 48, wantFormat: FormatPNG},
		{name: "jpeg rotated", data: jpegWithEXIF(jpg, tiffWithOrientation(3, false)), w: 64, h: 48, wantFormat: FormatPNG},
		{name: "jpeg orientation 1", data: jpegWithEXIF(jpg, tiffWithOrientation(1, false)), w: 64, h: 48, keep: true, wantFormat: FormatJPEG},
		{name: "webp at size", data: fixture(t, "lossless.webp"), w: 16, h: 8, wantFormat: FormatPNG},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decodeImage(tt.data, testLimits())
			if err != nil {
				t.Fatal(err)
			}
			out, format, err := prepare(d, FitCrop, tt.w, tt.h)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Equal(out, tt.data); got != tt.keep || format != tt.wantFormat {
				t.Fatalf("kept the input: %v (format %s), want %v (format %s)", got, format, tt.keep, tt.wantFormat)
			}
			cfg, _, err := image.DecodeConfig(bytes.NewReader(out))
			if err != nil || cfg.Width != tt.w || cfg.Height != tt.h {
				t.Fatalf("prepared image %dx%d (%v), want %dx%d", cfg.Width, cfg.Height, err, tt.w, tt.h)
			}
		})
	}
}

// TestUploadNameFollowsFormat: a JPEG kept as it came is uploaded as .jpg.
func TestUploadNameFollowsFormat(t *testing.T) {
	for format, want := range map[string]string{FormatPNG: "wan22_j1.png", FormatJPEG: "wan22_j1.jpg", "": "wan22_j1.png"} {
		if got := (&Job{ID: "j1", PreparedFormat: format}).UploadName(); got != want {
			t.Errorf("format %q: UploadName() = %q, want %q", format, got, want)
		}
	}
}
