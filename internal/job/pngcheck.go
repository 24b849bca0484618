package job

import (
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// checkPNG tells whether png.Decode would read a PNG with plain pixels (a
// grey, RGB or paletted one, 8 bits or less, without transparency: pixels
// asFaithful accepts), without unfiltering its pixels: every chunk's length and CRC, the chunk order, and the zlib stream
// of the image data inflated and checked (Adler-32, exactly one filter byte
// and one row of bytes per line, valid filter types, nothing after it). That
// is all a decoder can stumble on in such a file — unfiltering cannot fail —
// and it costs about a quarter of decoding (inflating a few hundred KB versus
// also unfiltering and storing 2 MB of pixels at 832×832).
//
// It is strict: nil means png.Decode succeeds on data (FuzzCheckPNG holds it
// to that); an error means only that this quick reading cannot vouch for the
// file (an interlaced or unusual one, or a damaged one), and the caller then
// decodes it to find out.
func checkPNG(data []byte) error {
	if len(data) < 8+12+13 || string(data[:8]) != "\x89PNG\r\n\x1a\n" {
		return errors.New("not a PNG")
	}
	var (
		width, height int
		depth, colour byte
		idat          idatReader
		seenPLTE      bool
		idatDone      bool // a chunk other than IDAT followed the IDAT run
	)
	for off, first := 8, true; ; first = false {
		if len(data)-off < 12 {
			return errors.New("truncated chunk")
		}
		n := int64(binary.BigEndian.Uint32(data[off:]))
		if n > 0x7fffffff || n > int64(len(data)-off-12) {
			return errors.New("chunk length out of range")
		}
		typ := string(data[off+4 : off+8])
		body := data[off+8 : off+8+int(n)]
		if crc32.ChecksumIEEE(data[off+4:off+8+int(n)]) != binary.BigEndian.Uint32(data[off+8+int(n):]) {
			return fmt.Errorf("bad CRC in %q", typ)
		}
		off += 12 + int(n)
		if first != (typ == "IHDR") {
			return errors.New("IHDR is not the first chunk")
		}
		if typ != "IDAT" && len(idat.chunks) > 0 {
			idatDone = true
		}
		switch typ {
		case "IHDR":
			if n != 13 {
				return errors.New("bad IHDR length")
			}
			width, height = int(binary.BigEndian.Uint32(body)), int(binary.BigEndian.Uint32(body[4:]))
			depth, colour = body[8], body[9]
			if body[10] != 0 || body[11] != 0 || body[12] != 0 {
				return errors.New("unusual compression, filter or interlace method")
			}
			switch {
			case colour == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8):
			case colour == 2 && depth == 8:
			case colour == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8):
			default:
				return errors.New("not a plain colour type and depth")
			}
			if width <= 0 || height <= 0 || int64(width)*int64(height) > 1<<31 {
				return errors.New("bad dimensions")
			}
		case "PLTE":
			entries := int(n / 3)
			if colour == 0 || seenPLTE || len(idat.chunks) > 0 || n%3 != 0 || entries == 0 || entries > 256 ||
				(colour == 3 && entries > 1<<depth) {
				return errors.New("unexpected PLTE")
			}
			seenPLTE = true
		case "IDAT":
			if idatDone || (colour == 3 && !seenPLTE) {
				return errors.New("IDAT out of order")
			}
			idat.chunks = append(idat.chunks, body)
		case "IEND":
			if n != 0 || off != len(data) {
				return errors.New("IEND not empty, or data after it")
			}
			if len(idat.chunks) == 0 {
				return errors.New("no image data")
			}
			return checkPixelData(&idat, width, height, depth, colour)
		case "tRNS":
			return errors.New("transparency")
		default:
			if typ[0]&0x20 == 0 { // an unknown critical chunk
				return fmt.Errorf("unknown critical chunk %q", typ)
			}
		}
	}
}

// checkPixelData inflates the image data: exactly height rows of a filter
// type (0 to 4) and the row's bytes, then the end of the zlib stream (its
// checksum verified) at the end of the last IDAT chunk.
func checkPixelData(idat *idatReader, width, height int, depth, colour byte) error {
	channels := 1
	if colour == 2 {
		channels = 3
	}
	row := make([]byte, 1+(width*channels*int(depth)+7)/8)
	z, err := zlib.NewReader(idat)
	if err != nil {
		return err
	}
	for range height {
		if _, err := io.ReadFull(z, row); err != nil {
			return fmt.Errorf("image data: %w", err)
		}
		if row[0] > 4 {
			return errors.New("bad filter type")
		}
	}
	if n, err := z.Read(row[:1]); n != 0 || err != io.EOF {
		return errors.New("too much image data, or a bad checksum")
	}
	if !idat.done() {
		return errors.New("bytes after the zlib stream")
	}
	return nil
}

// idatReader reads the data of consecutive IDAT chunks as one stream, byte
// by byte as the inflater asks (it is an io.ByteReader, so the inflater
// reads no further than the stream's end, and done tells whether anything
// followed it).
type idatReader struct {
	chunks [][]byte
	i, off int
}

func (r *idatReader) Read(p []byte) (int, error) {
	for r.i < len(r.chunks) && r.off == len(r.chunks[r.i]) {
		r.i, r.off = r.i+1, 0
	}
	if r.i == len(r.chunks) {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[r.i][r.off:])
	r.off += n
	return n, nil
}

func (r *idatReader) ReadByte() (byte, error) {
	for r.i < len(r.chunks) && r.off == len(r.chunks[r.i]) {
		r.i, r.off = r.i+1, 0
	}
	if r.i == len(r.chunks) {
		return 0, io.EOF
	}
	b := r.chunks[r.i][r.off]
	r.off++
	return b, nil
}

// done reports whether every byte was read.
func (r *idatReader) done() bool {
	for r.i < len(r.chunks) && r.off == len(r.chunks[r.i]) {
		r.i, r.off = r.i+1, 0
	}
	return r.i == len(r.chunks)
}
