package job

import (
	"context"
	"testing"
)

// BenchmarkParse832 is the worker's validation and image preparation for
// the common case: an 832×832 PNG in, an 832×832 video (DESIGN.md §10 keeps
// the whole per-job overhead under 25 ms).
func BenchmarkParse832(b *testing.B) {
	benchParse(b, encodePNG(b, gradient(832, 832)), `"seed": 1`)
}

// BenchmarkParsePhoto is a 12-megapixel JPEG photo brought to 832×624.
func BenchmarkParsePhoto(b *testing.B) {
	benchParse(b, encodeJPEG(b, gradient(4000, 3000)), `"seed": 1`)
}

func benchParse(b *testing.B, img []byte, options string) {
	input := []byte(`{"prompt": "a cat", "image": "` + b64(img) + `", "options": {` + options + `}}`)
	lim := testLimits()
	b.SetBytes(int64(len(input)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Parse(context.Background(), "bench", input, lim, nil); err != nil {
			b.Fatal(err)
		}
	}
}
