package job

import (
	"bytes"
	"image"
	"image/color"
	"image/png"

	"golang.org/x/image/draw"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// prepare renders the decoded image at exactly w×h: oriented by its EXIF
// orientation, transparent pixels flattened onto white, fitted by fit with
// Catmull-Rom resampling, and encoded as an opaque RGB PNG (stored). It
// returns the file to upload and its format.
//
// An input that already is what rendering would produce (asFaithful) is
// returned as it came: the original bytes, usually far smaller than the
// stored PNG, and nothing to encode.
func prepare(d *decoded, fit Fit, w, h int) ([]byte, string, error) {
	if asFaithful(d, w, h) {
		return d.data, d.hdr.format, nil
	}
	out, err := encodeRendered(d, fit, w, h)
	return out, FormatPNG, err
}

// encodeRendered is prepare's rendering path: render, then PNG-encode.
func encodeRendered(d *decoded, fit Fit, w, h int) ([]byte, error) {
	dst := render(d.img, d.hdr.orientation, fit, w, h)
	var buf bytes.Buffer
	buf.Grow(w*h*3 + h + 1024)
	// Stored, not compressed: the PNG only travels over loopback to ComfyUI.
	// Measured for an 832×832 frame (Go encode + Pillow open, exif_transpose,
	// convert("RGB") as ComfyUI's LoadImage does, on a 2-core EPYC): stored
	// 2.6-3.2 ms + 4.0 ms; BestSpeed 13.5-39 ms + 11.6-13.1 ms; default
	// 36-73 ms + 13.7-15.3 ms. Inflating costs ComfyUI more than the ~2 MB
	// saves on loopback.
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&buf, dst); err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "encoding the prepared image failed",
			"this is a bug in the worker; report it with the worker's log")
	}
	return buf.Bytes(), nil
}

// asFaithful reports whether the input file itself is the prepared image: a
// PNG or JPEG of exactly w×h, EXIF orientation 1, fully opaque, with 8-bit
// samples that ComfyUI reads as the worker does (RGB, grey or paletted PNG;
// YCbCr or grey JPEG). Rendering it would copy its pixels unchanged.
func asFaithful(d *decoded, w, h int) bool {
	if d.hdr.orientation > 1 || d.hdr.width != w || d.hdr.height != h || !opaque(d.img) {
		return false
	}
	switch d.hdr.format {
	case FormatPNG:
		switch d.img.(type) {
		case *image.RGBA, *image.NRGBA, *image.Gray, *image.Paletted:
			return true
		}
	case FormatJPEG:
		switch d.img.(type) {
		case *image.YCbCr, *image.Gray:
			return true
		}
	}
	return false
}

// render is prepare without the encoding.
func render(src image.Image, orientation int, fit Fit, w, h int) *image.RGBA {
	img := src
	if orientation > 1 || !opaque(src) {
		img = orient(flatten(src), orientation)
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	sb := img.Bounds()
	switch fit {
	case FitPad:
		draw.Draw(dst, dst.Bounds(), image.NewUniform(color.RGBA{A: 0xff}), image.Point{}, draw.Src)
		scale(dst, padRect(sb.Dx(), sb.Dy(), w, h), img, sb)
	case FitStretch:
		scale(dst, dst.Bounds(), img, sb)
	default: // FitCrop
		scale(dst, dst.Bounds(), img, cropRect(sb, w, h))
	}
	// Resampling can leave alpha a hair below opaque; the PNG must be RGB.
	for i := 3; i < len(dst.Pix); i += 4 {
		dst.Pix[i] = 0xff
	}
	return dst
}

// scale draws the sr part of src into the dr part of dst: a plain copy when
// the sizes match, Catmull-Rom otherwise. A source at least twice the
// destination's size is first reduced by an integer box filter (area
// averaging, the right filter for shrinking) to between one and two times
// the destination, so that Catmull-Rom, whose kernel and temporary buffer
// grow with the source, works on at most twice the destination: the same
// quality for a fraction of the time and memory on a large photo (a
// 4000×3000 photo to 832×624 allocates about 25 MB instead of 54 MB).
func scale(dst *image.RGBA, dr image.Rectangle, src image.Image, sr image.Rectangle) {
	if dr.Size() == sr.Size() {
		draw.Draw(dst, dr, src, sr.Min, draw.Src)
		return
	}
	if k := min(sr.Dx()/dr.Dx(), sr.Dy()/dr.Dy()); k >= 2 {
		src = boxShrink(src, sr, k)
		sr = src.Bounds()
	}
	draw.CatmullRom.Scale(dst, dr, src, sr, draw.Src, nil)
}

// boxShrink returns the sr part of src reduced k times in each direction,
// each pixel the average of a k×k block (a remainder of fewer than k pixels
// at the right and bottom is dropped).
func boxShrink(src image.Image, sr image.Rectangle, k int) *image.RGBA {
	in, ok := src.(*image.RGBA)
	if !ok {
		in = image.NewRGBA(image.Rect(0, 0, sr.Dx(), sr.Dy()))
		draw.Draw(in, in.Bounds(), src, sr.Min, draw.Src)
		sr = in.Bounds()
	}
	w, h := sr.Dx()/k, sr.Dy()/k
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	sums := make([]uint32, w*4)
	n := uint32(k * k)
	for oy := 0; oy < h; oy++ {
		clear(sums)
		for y := sr.Min.Y + oy*k; y < sr.Min.Y+oy*k+k; y++ {
			off := in.PixOffset(sr.Min.X, y)
			row := in.Pix[off : off+w*k*4]
			for ox := 0; ox < w; ox++ {
				blk := row[ox*k*4 : (ox+1)*k*4]
				var r, g, b, a uint32
				for i := 0; i+3 < len(blk); i += 4 {
					r += uint32(blk[i])
					g += uint32(blk[i+1])
					b += uint32(blk[i+2])
					a += uint32(blk[i+3])
				}
				s := sums[ox*4 : ox*4+4]
				s[0], s[1], s[2], s[3] = s[0]+r, s[1]+g, s[2]+b, s[3]+a
			}
		}
		o := out.Pix[oy*out.Stride : oy*out.Stride+w*4]
		for i, v := range sums {
			o[i] = uint8((v + n/2) / n)
		}
	}
	return out
}

// cropRect is the centred part of b with the aspect ratio of w×h (cover).
func cropRect(b image.Rectangle, w, h int) image.Rectangle {
	sw, sh := b.Dx(), b.Dy()
	// Compare sw/sh with w/h without rounding: sw*h vs w*sh.
	if int64(sw)*int64(h) > int64(w)*int64(sh) { // source is wider: crop its width
		cw := max(1, int((int64(sh)*int64(w)+int64(h)/2)/int64(h)))
		x := b.Min.X + (sw-cw)/2
		return image.Rect(x, b.Min.Y, x+cw, b.Max.Y)
	}
	ch := max(1, int((int64(sw)*int64(h)+int64(w)/2)/int64(w)))
	y := b.Min.Y + (sh-ch)/2
	return image.Rect(b.Min.X, y, b.Max.X, y+ch)
}

// padRect is the centred rectangle inside w×h with the aspect ratio of
// sw×sh (contain).
func padRect(sw, sh, w, h int) image.Rectangle {
	if int64(sw)*int64(h) > int64(w)*int64(sh) { // source is wider: full width
		ih := max(1, int((int64(w)*int64(sh)+int64(sw)/2)/int64(sw)))
		y := (h - ih) / 2
		return image.Rect(0, y, w, y+ih)
	}
	iw := max(1, int((int64(h)*int64(sw)+int64(sh)/2)/int64(sh)))
	x := (w - iw) / 2
	return image.Rect(x, 0, x+iw, h)
}

// opaque reports whether every pixel of img is fully opaque, asking the
// image when it can tell.
func opaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// flatten converts img to RGBA at the origin, compositing it onto white.
func flatten(img image.Image) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if opaque(img) {
		draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
		return dst
	}
	draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Over)
	return dst
}

// orient applies an EXIF orientation (2 to 8; 1 returns src): the result is
// the image as it is meant to be displayed.
func orient(src *image.RGBA, orientation int) *image.RGBA {
	if orientation < 2 || orientation > 8 {
		return src
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := w, h
	if orientation >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for dy := 0; dy < dh; dy++ {
		row := dst.Pix[dy*dst.Stride : dy*dst.Stride+dw*4]
		for dx := 0; dx < dw; dx++ {
			var sx, sy int
			switch orientation {
			case 2: // mirrored horizontally
				sx, sy = w-1-dx, dy
			case 3: // rotated 180°
				sx, sy = w-1-dx, h-1-dy
			case 4: // mirrored vertically
				sx, sy = dx, h-1-dy
			case 5: // transposed
				sx, sy = dy, dx
			case 6: // stored rotated 90° counter-clockwise: turn it clockwise
				sx, sy = dy, h-1-dx
			case 7: // transversed
				sx, sy = w-1-dy, h-1-dx
			case 8: // stored rotated 90° clockwise: turn it counter-clockwise
				sx, sy = w-1-dy, dx
			}
			o := sy*src.Stride + sx*4
			copy(row[dx*4:dx*4+4], src.Pix[o:o+4])
		}
	}
	return dst
}
