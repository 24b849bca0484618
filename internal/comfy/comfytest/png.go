package comfytest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// GradientPNG returns a w×h opaque PNG with a colour gradient: an input
// image for uploads in tests and benchmarks.
func GradientPNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic("comfytest: encoding a PNG in memory: " + err.Error()) // cannot fail with a bytes.Buffer
	}
	return b.Bytes()
}
