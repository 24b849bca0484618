package job

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// buildPNG is a PNG with the given IHDR fields, palette (PLTE when not
// nil), raw (filtered, uncompressed) image data split into IDAT chunks of
// at most idatSize bytes, and extra chunks before IEND; every CRC is right.
func buildPNG(w, h uint32, depth, colour, interlace byte, palette []byte, raw []byte, idatSize int, extra ...[]byte) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colour, 0, 0, interlace)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	if palette != nil {
		out = append(out, pngChunk("PLTE", palette)...)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	data := z.Bytes()
	for len(data) > idatSize {
		out = append(out, pngChunk("IDAT", data[:idatSize])...)
		data = data[idatSize:]
	}
	out = append(out, pngChunk("IDAT", data)...)
	for _, c := range extra {
		out = append(out, c...)
	}
	return append(out, pngChunk("IEND", nil)...)
}

// rows is raw image data: h rows of filter type f and n bytes each.
func rows(h, n int, f byte) []byte {
	var b []byte
	for y := range h {
		b = append(b, f)
		for x := range n {
			b = append(b, byte(x*7+y*3))
		}
	}
	return b
}

// TestCheckPNG: the quick check vouches for plain PNGs however their data is
// split, and refuses damaged or unusual ones; whatever it vouches for,
// png.Decode reads.
func TestCheckPNG(t *testing.T) {
	pal := []byte{0, 0, 0, 255, 255, 255, 200, 10, 10}
	rgb := buildPNG(16, 8, 8, 2, 0, nil, rows(8, 48, 1), 1<<20)
	withCRC := append([]byte{}, rgb...)
	withCRC[len("\x89PNG\r\n\x1a\n")+8+5] ^= 1 // a byte of IHDR's data
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"RGB", rgb, true},
		{"RGB in 7-byte IDAT chunks, and an empty one", buildPNG(16, 8, 8, 2, 0, nil, rows(8, 48, 4), 7, pngChunk("IDAT", nil)), true},
		{"grey", buildPNG(5, 3, 8, 0, 0, nil, rows(3, 5, 2), 1<<20), true},
		{"1-bit grey", buildPNG(9, 4, 1, 0, 0, nil, rows(4, 2, 0), 1<<20), true},
		{"4-bit paletted", buildPNG(3, 3, 4, 3, 0, pal, rows(3, 2, 3), 1<<20), true},
		{"RGB with an ignorable palette and a text chunk", buildPNG(16, 8, 8, 2, 0, pal, rows(8, 48, 1), 1<<20,
			pngChunk("tEXt", []byte("Comment\x00hi"))), true},
		{"Go's encoder", encodePNG(t, gradient(832, 64)), true},
		{"a bad CRC", withCRC, false},
		{"truncated", rgb[:len(rgb)-20], false},
		{"a bad filter type", buildPNG(16, 8, 8, 2, 0, nil, rows(8, 48, 5), 1<<20), false},
		{"a row short", buildPNG(16, 8, 8, 2, 0, nil, rows(7, 48, 0), 1<<20), false},
		{"a row too many", buildPNG(16, 8, 8, 2, 0, nil, rows(9, 48, 0), 1<<20), false},
		{"interlaced", buildPNG(16, 8, 8, 2, 1, nil, rows(8, 48, 0), 1<<20), false},
		{"paletted without PLTE", buildPNG(3, 3, 4, 3, 0, nil, rows(3, 2, 0), 1<<20), false},
		{"grey with a PLTE", buildPNG(5, 3, 8, 0, 0, pal, rows(3, 5, 0), 1<<20), false},
		{"tRNS", buildPNG(16, 8, 8, 2, 0, nil, rows(8, 48, 0), 1<<20, pngChunk("tRNS", []byte{0, 1, 0, 2, 0, 3})), false},
		{"RGBA", buildPNG(4, 4, 8, 6, 0, nil, rows(4, 16, 0), 1<<20), false},
		{"16-bit", buildPNG(4, 4, 16, 2, 0, nil, rows(4, 24, 0), 1<<20), false},
		{"an unknown critical chunk", buildPNG(16, 8, 8, 2, 0, nil, rows(8, 48, 0), 1<<20, pngChunk("ABCD", nil)), false},
		{"data after IEND", append(append([]byte{}, rgb...), 0), false},
		{"IDAT after another chunk", buildPNG(16, 8, 8, 2, 0, nil, rows(8, 48, 0), 1<<20,
			pngChunk("tEXt", []byte("a\x00b")), pngChunk("IDAT", []byte{1, 2})), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPNG(tt.data)
			if (err == nil) != tt.ok {
				t.Fatalf("checkPNG: %v, want ok %v", err, tt.ok)
			}
			if err == nil {
				if _, derr := png.Decode(bytes.NewReader(tt.data)); derr != nil {
					t.Fatalf("vouched for a file that png.Decode refuses: %v", derr)
				}
			}
		})
	}
}

// FuzzCheckPNG holds checkPNG to its promise: whatever it vouches for,
// png.Decode reads, and as pixels asFaithful accepts. The seeds are plain
// PNGs; the fuzzer damages them (mostly caught by the CRCs).
func FuzzCheckPNG(f *testing.F) {
	pal := image.NewPaletted(image.Rect(0, 0, 7, 5), color.Palette{color.Black, color.White})
	for _, seed := range [][]byte{
		buildPNG(16, 8, 8, 2, 0, nil, rows(8, 48, 1), 1<<20),
		buildPNG(9, 4, 1, 0, 0, nil, rows(4, 2, 0), 5),
		buildPNG(3, 3, 4, 3, 0, []byte{0, 0, 0, 9, 9, 9}, rows(3, 2, 3), 1<<20),
		encodePNG(f, gradient(40, 30)),
		encodePNG(f, pal),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkPNG(data) != nil {
			return
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("vouched for a file that png.Decode refuses: %v", err)
		}
		b := img.Bounds()
		d := &decoded{img: img, hdr: header{format: FormatPNG, width: b.Dx(), height: b.Dy(), orientation: 1}, data: data}
		if !asFaithful(d, b.Dx(), b.Dy()) {
			t.Fatalf("vouched for %T pixels, which asFaithful does not accept", img)
		}
	})
}

// FuzzCheckPNGData builds well-formed PNGs around fuzzed image data and
// header fields (so that the CRCs are right and the inflater is reached):
// checkPNG vouches for exactly the files png.Decode reads, when the data
// is one zlib stream in one IDAT chunk as here.
func FuzzCheckPNGData(f *testing.F) {
	f.Add(uint8(16), uint8(8), uint8(8), uint8(2), rows(8, 48, 1))
	f.Add(uint8(9), uint8(4), uint8(1), uint8(0), rows(4, 2, 4))
	f.Add(uint8(3), uint8(3), uint8(2), uint8(3), rows(3, 1, 0))
	f.Fuzz(func(t *testing.T, w, h, depth, colour uint8, raw []byte) {
		var pal []byte
		if colour == 3 {
			pal = []byte{0, 0, 0, 255, 255, 255}
		}
		data := buildPNG(uint32(w), uint32(h), depth, colour, 0, pal, raw, 1<<20)
		plain := (colour == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
			(colour == 2 && depth == 8) || (colour == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8))
		err := checkPNG(data)
		_, derr := png.Decode(bytes.NewReader(data))
		if err == nil && derr != nil {
			t.Fatalf("vouched for a file that png.Decode refuses: %v", derr)
		}
		if plain && w > 0 && h > 0 && derr == nil && err != nil {
			t.Fatalf("refused a plain file that png.Decode reads: %v", err)
		}
	})
}
