package job

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
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

// TestCheckPNGVouchesForFaithful: checkPNG, which lets Parse pass an image
// through without decoding it, vouches for the PNGs whose pixels asFaithful
// accepts (no alpha channel, no tRNS, 8-bit or less, grey, RGB or paletted)
// and for no other file (JPEGs are decoded, then passed through).
func TestCheckPNGVouchesForFaithful(t *testing.T) {
	grad := gradient(64, 48)
	translucent := gradient(64, 48)
	translucent.SetRGBA(3, 3, color.RGBA{10, 20, 30, 0x80})
	gray, gray16 := image.NewGray(grad.Bounds()), image.NewGray16(grad.Bounds())
	opaquePal := image.NewPaletted(grad.Bounds(), color.Palette{color.Black, color.White, color.RGBA{200, 10, 10, 255}})
	clearPal := image.NewPaletted(grad.Bounds(), color.Palette{color.Black, color.Transparent})
	twoColours := image.NewPaletted(grad.Bounds(), color.Palette{color.Black, color.White}) // 1-bit
	for i := range opaquePal.Pix {
		opaquePal.Pix[i], clearPal.Pix[i], twoColours.Pix[i] = uint8(i%3), uint8(i%2), uint8(i%2)
		gray.Pix[i] = uint8(i)
	}
	rgb := encodePNG(t, grad)
	const ihdrEnd = 8 + 8 + 13 + 4
	withTRNS := append(append(append([]byte{}, rgb[:ihdrEnd]...), pngChunk("tRNS", []byte{0, 1, 0, 2, 0, 3})...), rgb[ihdrEnd:]...)
	tests := []struct {
		name  string
		data  []byte
		plain bool
	}{
		{"RGB PNG", rgb, true},
		{"grey PNG", encodePNG(t, gray), true},
		{"paletted PNG", encodePNG(t, opaquePal), true},
		{"1-bit paletted PNG", encodePNG(t, twoColours), true},
		{"YCbCr JPEG", encodeJPEG(t, grad), false},
		{"RGBA PNG", encodePNG(t, translucent), false},
		{"RGB PNG with tRNS", withTRNS, false},
		{"paletted PNG with a clear colour", encodePNG(t, clearPal), false},
		{"16-bit grey PNG", encodePNG(t, gray16), false},
		{"WebP", fixture(t, "lossless.webp"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vouched := checkPNG(tt.data) == nil
			if vouched != tt.plain {
				t.Errorf("checkPNG vouches: %v, want %v", vouched, tt.plain)
			}
			d, err := decodeImage(tt.data, testLimits())
			if err != nil {
				t.Fatal(err)
			}
			if vouched && !asFaithful(d, d.hdr.width, d.hdr.height) {
				t.Errorf("vouched for, but its pixels (%T) are not what asFaithful accepts", d.img)
			}
		})
	}
}

// TestPassThroughChecked: a PNG that is the prepared image already is
// uploaded as it came after the quick check (checkPNG) vouches for it; a
// damaged one is decoded instead and fails IMAGE_INVALID, as it does when it
// needs rendering.
func TestPassThroughChecked(t *testing.T) {
	good := encodePNG(t, gradient(64, 48))
	damaged := append([]byte{}, good...)
	idat := bytes.Index(damaged, []byte("IDAT"))
	for i := idat + 4; i < idat+40; i++ {
		damaged[i] ^= 0x5a
	}
	tests := []struct {
		name          string
		img           []byte
		w, h          int
		passedThrough bool
		invalid       bool
	}{
		{"at size", good, 64, 48, true, false},
		{"damaged, at size", damaged, 64, 48, false, true},
		{"resized", good, 128, 96, false, false},
		{"damaged, resized", damaged, 128, 96, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := mustJSON(t, map[string]any{"prompt": "a cat", "image": b64(tt.img), "options": map[string]any{"width": tt.w, "height": tt.h}})
			j, err := Parse(t.Context(), "j", input, testLimits(), nil)
			if tt.invalid {
				if e := apperr.As(err); e == nil || e.Code != apperr.ImageInvalid || e.Field != "image" || e.Hint == "" {
					t.Fatalf("error %v, want IMAGE_INVALID on image with a hint", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Equal(j.Prepared, tt.img); got != tt.passedThrough {
				t.Errorf("passed through: %v, want %v", got, tt.passedThrough)
			}
		})
	}
}
