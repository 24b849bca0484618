package job

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// The quadrant pattern every test image uses: top-left red, top-right green,
// bottom-left blue, bottom-right white.
var (
	red   = color.RGBA{0xff, 0, 0, 0xff}
	green = color.RGBA{0, 0xff, 0, 0xff}
	blue  = color.RGBA{0, 0, 0xff, 0xff}
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
	black = color.RGBA{0, 0, 0, 0xff}
)

// quadrants returns a w×h image in the quadrant pattern.
func quadrants(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var c color.RGBA
			switch {
			case x < w/2 && y < h/2:
				c = red
			case y < h/2:
				c = green
			case x < w/2:
				c = blue
			default:
				c = white
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// gradient returns a smooth w×h image.
func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / max(1, w-1)), uint8(y * 255 / max(1, h-1)), 128, 0xff})
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tiffWithOrientation is a minimal TIFF block whose IFD0 holds one entry,
// Orientation (SHORT), in the given byte order.
func tiffWithOrientation(orientation uint16, bigEndian bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	head := []byte("II*\x00")
	if bigEndian {
		bo, head = binary.BigEndian, []byte("MM\x00*")
	}
	t := append([]byte{}, head...)
	t = bo.AppendUint32(t, 8)      // IFD0 offset
	t = bo.AppendUint16(t, 2)      // two entries
	t = bo.AppendUint16(t, 0x010f) // Make (ASCII), skipped
	t = bo.AppendUint16(t, 2)
	t = bo.AppendUint32(t, 4)
	t = append(t, 'a', 'c', 'm', 0)
	t = bo.AppendUint16(t, 0x0112) // Orientation
	t = bo.AppendUint16(t, 3)      // SHORT
	t = bo.AppendUint32(t, 1)
	t = bo.AppendUint16(t, orientation)
	t = bo.AppendUint16(t, 0)
	t = bo.AppendUint32(t, 0) // no next IFD
	return t
}

// jpegWithEXIF inserts an APP1 Exif segment after SOI.
func jpegWithEXIF(jpg, tiff []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xff, 0xe1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// pngChunk encodes one PNG chunk.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	return binary.BigEndian.AppendUint32(c, crc.Sum32())
}

// pngWithEXIF inserts an eXIf chunk after IHDR.
func pngWithEXIF(p, tiff []byte) []byte {
	const ihdrEnd = 8 + 8 + 13 + 4
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, pngChunk("eXIf", tiff)...)
	return append(out, p[ihdrEnd:]...)
}

// pngHeaderOnly is a PNG whose IHDR claims w×h and which has no pixel data:
// enough for DecodeConfig, a bomb for a decoder that trusts it.
func pngHeaderOnly(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", nil)...)
	return append(out, pngChunk("IEND", nil)...)
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// testLimits are the defaults of the configuration.
func testLimits() Limits {
	return Limits{MaxPixels: 921600, MaxFrames: 121, MaxSteps: 40, MaxImageBytes: 24 << 20, MaxImagePixels: 50_000_000}
}

// mustJSON marshals v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// near reports whether two colours are within tol per channel.
func near(a, b color.Color, tol int) bool {
	ar, ag, ab, aa := a.RGBA()
	br, bg, bb, ba := b.RGBA()
	d := func(x, y uint32) bool {
		v := int(x>>8) - int(y>>8)
		return v <= tol && v >= -tol
	}
	return d(ar, br) && d(ag, bg) && d(ab, bb) && d(aa, ba)
}

// decodePNG decodes the prepared image.
func decodePNG(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// seededRand is a deterministic source for seeds in tests.
type seededRand struct{ b byte }

func (r *seededRand) Read(p []byte) (int, error) {
	for i := range p {
		r.b++
		p[i] = r.b
	}
	return len(p), nil
}
