package job

import "encoding/binary"

// exifOrientation returns the EXIF Orientation (1 to 8) stored in a JPEG
// (APP1 "Exif"), PNG (eXIf chunk) or WebP (EXIF chunk) file, or 1 when there
// is none or it cannot be read. A damaged EXIF block is not an error: the
// image is then used as stored.
func exifOrientation(format string, data []byte) int {
	var tiff []byte
	switch format {
	case FormatJPEG:
		tiff = jpegEXIF(data)
	case FormatPNG:
		tiff = pngEXIF(data)
	case FormatWebP:
		tiff = webpEXIF(data)
	}
	if len(tiff) >= 6 && string(tiff[:6]) == "Exif\x00\x00" {
		tiff = tiff[6:]
	}
	return tiffOrientation(tiff)
}

// jpegEXIF returns the TIFF block of the first APP1 Exif segment.
func jpegEXIF(b []byte) []byte {
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xff {
			return nil
		}
		marker := b[i+1]
		switch {
		case marker == 0xff: // fill byte
			i++
			continue
		case marker == 0x01 || marker >= 0xd0 && marker <= 0xd8: // no length
			i += 2
			continue
		case marker == 0xda || marker == 0xd9: // start of scan, end of image
			return nil
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return nil
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return seg[6:]
		}
		i += 2 + n
	}
	return nil
}

// pngEXIF returns the data of the eXIf chunk.
func pngEXIF(b []byte) []byte {
	i := 8 // after the signature
	for i+8 <= len(b) {
		n := binary.BigEndian.Uint32(b[i:])
		typ := string(b[i+4 : i+8])
		if uint64(n) > uint64(len(b)-i-8) {
			return nil
		}
		if typ == "eXIf" {
			return b[i+8 : i+8+int(n)]
		}
		if typ == "IEND" {
			return nil
		}
		i += 12 + int(n) // length, type, data, CRC
	}
	return nil
}

// riffChunks calls fn for each chunk of a RIFF/WEBP file until fn returns
// false.
func riffChunks(b []byte, fn func(id string, data []byte) bool) {
	i := 12 // "RIFF", size, "WEBP"
	for i+8 <= len(b) {
		id := string(b[i : i+4])
		n := binary.LittleEndian.Uint32(b[i+4:])
		if uint64(n) > uint64(len(b)-i-8) {
			return
		}
		if !fn(id, b[i+8:i+8+int(n)]) {
			return
		}
		i += 8 + int(n) + int(n&1) // chunks are padded to even sizes
	}
}

// webpEXIF returns the data of the EXIF chunk.
func webpEXIF(b []byte) []byte {
	var out []byte
	riffChunks(b, func(id string, data []byte) bool {
		if id == "EXIF" {
			out = data
			return false
		}
		return true
	})
	return out
}

// webpAnimated reports whether a WebP file is animated: the VP8X animation
// flag, or ANIM/ANMF chunks. golang.org/x/image/webp decodes still images
// only.
func webpAnimated(b []byte) bool {
	anim := false
	riffChunks(b, func(id string, data []byte) bool {
		switch id {
		case "VP8X":
			if len(data) > 0 && data[0]&0x02 != 0 {
				anim = true
			}
		case "ANIM", "ANMF":
			anim = true
		}
		return !anim
	})
	return anim
}

// tiffOrientation reads tag 0x0112 (Orientation) from IFD0 of a TIFF block.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 1
	}
	n := int(bo.Uint16(t[off:]))
	for k := 0; k < n; k++ {
		e := off + 2 + uint64(k)*12
		if e+12 > uint64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		var v uint32
		switch bo.Uint16(t[e+2:]) { // type
		case 3: // SHORT
			v = uint32(bo.Uint16(t[e+8:]))
		case 4: // LONG
			v = bo.Uint32(t[e+8:])
		case 1, 7: // BYTE, UNDEFINED
			v = uint32(t[e+8])
		default:
			return 1
		}
		if v >= 1 && v <= 8 {
			return int(v)
		}
		return 1
	}
	return 1
}
