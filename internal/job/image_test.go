package job

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"runtime"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// quad is the expected colour of each quadrant: TL, TR, BL, BR.
type quad [4]color.RGBA

var (
	plain   = quad{red, green, blue, white}
	alphaed = quad{red, white, blue, white} // right half transparent, flattened onto white
)

// checkQuadrants samples the centre of each quadrant of img.
func checkQuadrants(t *testing.T, img image.Image, want quad, tol int) {
	t.Helper()
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	pts := []image.Point{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}}
	names := []string{"top-left", "top-right", "bottom-left", "bottom-right"}
	for i, p := range pts {
		if got := img.At(b.Min.X+p.X, b.Min.Y+p.Y); !near(got, want[i], tol) {
			t.Errorf("%s pixel %v = %v, want %v", names[i], p, got, want[i])
		}
	}
}

func TestDecodeFormats(t *testing.T) {
	nrgba := image.NewNRGBA(image.Rect(0, 0, 16, 8))
	q := quadrants(16, 8)
	for y := 0; y < 8; y++ {
		for x := 0; x < 16; x++ {
			c := q.RGBAAt(x, y)
			if x >= 8 {
				c.A = 0
			}
			nrgba.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, c.A})
		}
	}
	rgba64 := image.NewRGBA64(image.Rect(0, 0, 16, 8))
	gray := image.NewGray(image.Rect(0, 0, 16, 8))
	gray16 := image.NewGray16(image.Rect(0, 0, 16, 8))
	pal := image.NewPaletted(image.Rect(0, 0, 16, 8), color.Palette{red, green, blue, white})
	for y := 0; y < 8; y++ {
		for x := 0; x < 16; x++ {
			c := q.At(x, y)
			rgba64.Set(x, y, c)
			gray.Set(x, y, c)
			gray16.Set(x, y, c)
			pal.Set(x, y, c)
		}
	}
	tiny := image.NewRGBA(image.Rect(0, 0, 1, 1))
	tiny.SetRGBA(0, 0, red)

	tests := []struct {
		name   string
		data   []byte
		format string
		w, h   int
		want   *quad // nil: check only that the result is grey (gray) or skip
		tol    int
		gray   bool
	}{
		{name: "png rgba", data: encodePNG(t, q), format: FormatPNG, w: 16, h: 8, want: &plain},
		{name: "png alpha", data: encodePNG(t, nrgba), format: FormatPNG, w: 16, h: 8, want: &alphaed},
		{name: "png 16-bit", data: encodePNG(t, rgba64), format: FormatPNG, w: 16, h: 8, want: &plain},
		{name: "png paletted", data: encodePNG(t, pal), format: FormatPNG, w: 16, h: 8, want: &plain},
		{name: "png gray", data: encodePNG(t, gray), format: FormatPNG, w: 16, h: 8, gray: true},
		{name: "png gray 16-bit", data: encodePNG(t, gray16), format: FormatPNG, w: 16, h: 8, gray: true},
		{name: "png 1x1", data: encodePNG(t, tiny), format: FormatPNG, w: 1, h: 1},
		{name: "jpeg", data: encodeJPEG(t, quadrants(32, 16)), format: FormatJPEG, w: 32, h: 16, want: &plain, tol: 24},
		{name: "jpeg gray", data: encodeJPEG(t, gray), format: FormatJPEG, w: 16, h: 8, gray: true},
		{name: "jpeg cmyk", data: fixture(t, "cmyk.jpg"), format: FormatJPEG, w: 16, h: 8, want: &plain, tol: 40},
		{name: "webp lossy", data: fixture(t, "lossy.webp"), format: FormatWebP, w: 16, h: 8, want: &plain, tol: 48},
		{name: "webp lossless", data: fixture(t, "lossless.webp"), format: FormatWebP, w: 16, h: 8, want: &plain},
		{name: "webp lossy alpha", data: fixture(t, "alpha_lossy.webp"), format: FormatWebP, w: 16, h: 8, want: &alphaed, tol: 48},
		{name: "webp lossless alpha", data: fixture(t, "alpha_lossless.webp"), format: FormatWebP, w: 16, h: 8, want: &alphaed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decodeImage(tt.data, testLimits())
			if err != nil {
				t.Fatal(err)
			}
			if d.hdr.format != tt.format || d.hdr.width != tt.w || d.hdr.height != tt.h || d.hdr.orientation != 1 {
				t.Fatalf("header = %+v, want %s %dx%d orientation 1", d.hdr, tt.format, tt.w, tt.h)
			}
			out, err := encodeRendered(d, FitStretch, tt.w, tt.h)
			if err != nil {
				t.Fatal(err)
			}
			img := decodePNG(t, out)
			if _, ok := img.(*image.RGBA); !ok {
				t.Errorf("prepared PNG decodes to %T, want 8-bit RGB (*image.RGBA)", img)
			}
			if out[25] != 2 { // IHDR colour type: truecolour without alpha
				t.Errorf("prepared PNG colour type = %d, want 2 (RGB)", out[25])
			}
			if tt.want != nil {
				checkQuadrants(t, img, *tt.want, tt.tol)
			}
			if tt.gray {
				b := img.Bounds()
				for y := b.Min.Y; y < b.Max.Y; y++ {
					for x := b.Min.X; x < b.Max.X; x++ {
						r, g, bb, _ := img.At(x, y).RGBA()
						if r != g || g != bb {
							t.Fatalf("pixel (%d,%d) of a grey image is not grey: %v", x, y, img.At(x, y))
						}
					}
				}
			}
		})
	}
}

func TestOrientation(t *testing.T) {
	// What a viewer shows for each EXIF orientation of the quadrant pattern.
	shown := map[int]quad{
		1: {red, green, blue, white},
		2: {green, red, white, blue},
		3: {white, blue, green, red},
		4: {blue, white, red, green},
		5: {red, blue, green, white},
		6: {blue, red, white, green},
		7: {white, green, blue, red},
		8: {green, white, red, blue},
	}
	for o := 1; o <= 8; o++ {
		for _, be := range []bool{false, true} {
			name := map[bool]string{false: "II", true: "MM"}[be]
			t.Run(string(rune('0'+o))+"/jpeg/"+name, func(t *testing.T) {
				data := jpegWithEXIF(encodeJPEG(t, quadrants(32, 16)), tiffWithOrientation(uint16(o), be))
				checkOriented(t, data, o, shown[o], 24)
			})
		}
		t.Run(string(rune('0'+o))+"/png", func(t *testing.T) {
			data := pngWithEXIF(encodePNG(t, quadrants(32, 16)), tiffWithOrientation(uint16(o), false))
			checkOriented(t, data, o, shown[o], 0)
		})
	}
	t.Run("webp", func(t *testing.T) {
		checkOriented(t, fixture(t, "exif6.webp"), 6, shown[6], 0)
	})
}

func checkOriented(t *testing.T, data []byte, o int, want quad, tol int) {
	t.Helper()
	d, err := decodeImage(data, testLimits())
	if err != nil {
		t.Fatal(err)
	}
	if d.hdr.orientation != o {
		t.Fatalf("orientation = %d, want %d", d.hdr.orientation, o)
	}
	w, h := d.orientedSize()
	sw, sh := d.hdr.width, d.hdr.height
	if o >= 5 {
		sw, sh = sh, sw
	}
	if w != sw || h != sh {
		t.Fatalf("oriented size %dx%d, want %dx%d", w, h, sw, sh)
	}
	out, err := encodeRendered(d, FitStretch, w, h)
	if err != nil {
		t.Fatal(err)
	}
	checkQuadrants(t, decodePNG(t, out), want, tol)
}

func TestEXIFRobustness(t *testing.T) {
	jpg := encodeJPEG(t, quadrants(16, 16))
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"no exif", jpg, 1},
		{"orientation 0", jpegWithEXIF(jpg, tiffWithOrientation(0, false)), 1},
		{"orientation 9", jpegWithEXIF(jpg, tiffWithOrientation(9, false)), 1},
		{"truncated tiff", jpegWithEXIF(jpg, tiffWithOrientation(6, false)[:20]), 1},
		{"bad byte order", jpegWithEXIF(jpg, append([]byte("XX"), tiffWithOrientation(6, false)[2:]...)), 1},
		{"ifd offset out of range", jpegWithEXIF(jpg, append([]byte("II*\x00\xff\xff\xff\x7f"), make([]byte, 8)...)), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exifOrientation(FormatJPEG, tt.data); got != tt.want {
				t.Errorf("orientation = %d, want %d", got, tt.want)
			}
			if _, err := decodeImage(tt.data, testLimits()); err != nil {
				t.Errorf("a bad EXIF block must not fail the image: %v", err)
			}
		})
	}
}

func TestImageErrors(t *testing.T) {
	good := encodePNG(t, quadrants(16, 8))
	jpg := encodeJPEG(t, gradient(128, 128))
	lim := testLimits()
	small := lim
	small.MaxImageBytes = 64
	tests := []struct {
		name string
		data []byte
		lim  Limits
		code apperr.Code
		in   string // part of the message
	}{
		{"empty", nil, lim, apperr.ImageInvalid, "empty"},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), lim, apperr.ImageInvalid, "GIF"},
		{"bmp", []byte("BM\x00\x00\x00\x00\x00\x00\x00\x00"), lim, apperr.ImageInvalid, "BMP"},
		{"heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00"), lim, apperr.ImageInvalid, "HEIC"},
		{"html", []byte("<!DOCTYPE html><html><body>cat</body></html>"), lim, apperr.ImageInvalid, "HTML"},
		{"unknown bytes", []byte("hello, this is text"), lim, apperr.ImageInvalid, "not JPEG, PNG or WebP"},
		{"animated webp", fixture(t, "animated.webp"), lim, apperr.ImageInvalid, "animated WebP"},
		{"truncated png header", good[:20], lim, apperr.ImageInvalid, "header"},
		{"truncated png data", good[:len(good)-20], lim, apperr.ImageInvalid, "cannot be decoded"},
		{"truncated jpeg", jpg[:len(jpg)*3/4], lim, apperr.ImageInvalid, "cannot be decoded"},
		{"webp bad riff", []byte("RIFF\x04\x00\x00\x00WEBPVP8 "), lim, apperr.ImageInvalid, "header"},
		{"zero width png", pngHeaderOnly(0, 10), lim, apperr.ImageInvalid, ""},
		{"huge by header", pngHeaderOnly(100000, 100000), lim, apperr.ImageTooLarge, "MAX_IMAGE_PIXELS"},
		{"too many bytes", good, small, apperr.ImageTooLarge, "MAX_IMAGE_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeImage(tt.data, tt.lim)
			e := apperr.As(err)
			if e == nil {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if e.Code != tt.code || e.Field != "image" || e.Hint == "" || !strings.Contains(e.Message, tt.in) {
				t.Errorf("err = %+v, want code %s, field image, a hint and %q in the message", e, tt.code, tt.in)
			}
		})
	}
}

// TestHugeHeaderAllocatesNothing checks the pixel limit is applied from the
// header, before a decoder allocates the claimed 30 GB.
func TestHugeHeaderAllocatesNothing(t *testing.T) {
	data := pngHeaderOnly(100000, 100000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := decodeImage(data, testLimits())
	runtime.ReadMemStats(&after)
	if apperr.CodeOf(err) != apperr.ImageTooLarge {
		t.Fatalf("err = %v, want IMAGE_TOO_LARGE", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("rejecting a huge header allocated %d bytes", d)
	}
}

func TestFit(t *testing.T) {
	// A 400×100 horizontal gradient (red 0 → 255 left to right).
	src := image.NewRGBA(image.Rect(0, 0, 400, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 400; x++ {
			src.SetRGBA(x, y, color.RGBA{uint8(x * 255 / 399), 0, 0, 0xff})
		}
	}
	redAt := func(img *image.RGBA, x, y int) int { return int(img.RGBAAt(x, y).R) }
	t.Run("crop", func(t *testing.T) {
		out := render(src, 1, FitCrop, 100, 100)
		// The centred 100×100 of the source: x 150…250.
		if r := redAt(out, 0, 50); r < 90 || r > 102 {
			t.Errorf("left edge red = %d, want about %d (source x=150)", r, 150*255/399)
		}
		if r := redAt(out, 99, 50); r < 152 || r > 164 {
			t.Errorf("right edge red = %d, want about %d (source x=249)", r, 249*255/399)
		}
	})
	t.Run("stretch", func(t *testing.T) {
		out := render(src, 1, FitStretch, 100, 100)
		if r := redAt(out, 0, 50); r > 6 {
			t.Errorf("left edge red = %d, want about 0", r)
		}
		if r := redAt(out, 99, 50); r < 249 {
			t.Errorf("right edge red = %d, want about 255", r)
		}
	})
	t.Run("pad", func(t *testing.T) {
		out := render(src, 1, FitPad, 100, 100)
		// 400×100 fits 100×25, centred at y 37…62; black above and below.
		for _, y := range []int{0, 36, 63, 99} {
			if c := out.RGBAAt(50, y); c != black {
				t.Errorf("pixel (50,%d) = %v, want opaque black", y, c)
			}
		}
		if r := redAt(out, 99, 50); r < 249 {
			t.Errorf("right edge red inside the picture = %d, want about 255", r)
		}
	})
	t.Run("same size copies", func(t *testing.T) {
		out := render(src, 1, FitCrop, 400, 100)
		for _, x := range []int{0, 123, 399} {
			if out.RGBAAt(x, 7) != src.RGBAAt(x, 7) {
				t.Errorf("pixel %d changed: %v vs %v", x, out.RGBAAt(x, 7), src.RGBAAt(x, 7))
			}
		}
	})
}

func TestRectangles(t *testing.T) {
	tests := []struct {
		sw, sh, w, h int
		crop, pad    image.Rectangle
	}{
		{400, 100, 100, 100, image.Rect(150, 0, 250, 100), image.Rect(0, 37, 100, 62)},
		{100, 400, 100, 100, image.Rect(0, 150, 100, 250), image.Rect(37, 0, 62, 100)},
		{1920, 1080, 832, 480, image.Rect(24, 0, 1896, 1080), image.Rect(0, 6, 832, 474)},
		{832, 832, 832, 832, image.Rect(0, 0, 832, 832), image.Rect(0, 0, 832, 832)},
		{1, 1, 16, 32, image.Rect(0, 0, 1, 1), image.Rect(0, 8, 16, 24)},
		{10000, 1, 16, 16, image.Rect(4999, 0, 5000, 1), image.Rect(0, 7, 16, 8)},
	}
	for _, tt := range tests {
		if got := cropRect(image.Rect(0, 0, tt.sw, tt.sh), tt.w, tt.h); got != tt.crop {
			t.Errorf("cropRect(%dx%d → %dx%d) = %v, want %v", tt.sw, tt.sh, tt.w, tt.h, got, tt.crop)
		}
		if got := padRect(tt.sw, tt.sh, tt.w, tt.h); got != tt.pad {
			t.Errorf("padRect(%dx%d → %dx%d) = %v, want %v", tt.sw, tt.sh, tt.w, tt.h, got, tt.pad)
		}
	}
}

func TestPreparedPNGIsStored(t *testing.T) {
	d, err := decodeImage(encodePNG(t, gradient(64, 64)), testLimits())
	if err != nil {
		t.Fatal(err)
	}
	out, err := encodeRendered(d, FitCrop, 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(out))
	if err != nil || cfg.Width != 32 || cfg.Height != 32 {
		t.Fatalf("prepared image: %+v, %v", cfg, err)
	}
	// Stored RGB rows (a filter byte each) plus zlib's and PNG's framing.
	if raw := 32*32*3 + 32; len(out) < raw {
		t.Errorf("prepared PNG is %d bytes, less than the %d raw bytes: it was compressed", len(out), raw)
	}
}

func TestBoxShrink(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 5, 4))
	for i := range src.Pix {
		src.Pix[i] = uint8(i)
	}
	got := boxShrink(src, image.Rect(1, 0, 5, 4), 2) // a 4×4 part → 2×2
	if got.Bounds() != image.Rect(0, 0, 2, 2) {
		t.Fatalf("bounds %v", got.Bounds())
	}
	// Top-left block: pixels (1,0), (2,0), (1,1), (2,1); red offsets 4, 8, 24, 28.
	if r := got.Pix[0]; r != (4+8+24+28+2)/4 {
		t.Errorf("top-left red = %d, want %d", r, (4+8+24+28+2)/4)
	}
	// The same through a non-RGBA source.
	ycc := image.NewYCbCr(image.Rect(0, 0, 8, 8), image.YCbCrSubsampleRatio444)
	for i := range ycc.Y {
		ycc.Y[i], ycc.Cb[i], ycc.Cr[i] = 200, 128, 128
	}
	if c := boxShrink(ycc, ycc.Bounds(), 4).RGBAAt(1, 1); c != (color.RGBA{200, 200, 200, 255}) {
		t.Errorf("shrunk YCbCr pixel %v, want grey 200", c)
	}
}

// TestLargeDownscale checks the box pre-reduction keeps the geometry: a
// 3000×600 horizontal ramp stretched to 96×48 is still a ramp end to end.
func TestLargeDownscale(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 3000, 600))
	for y := 0; y < 600; y++ {
		for x := 0; x < 3000; x++ {
			src.SetRGBA(x, y, color.RGBA{uint8(x * 255 / 2999), 0, 0, 0xff})
		}
	}
	out := render(src, 1, FitStretch, 96, 48)
	for _, c := range []struct{ x, lo, hi int }{{0, 0, 6}, {48, 122, 134}, {95, 249, 255}} {
		if r := int(out.RGBAAt(c.x, 24).R); r < c.lo || r > c.hi {
			t.Errorf("red at x=%d is %d, want %d…%d", c.x, r, c.lo, c.hi)
		}
	}
}
