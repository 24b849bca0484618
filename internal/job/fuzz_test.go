package job

import (
	"bytes"
	"context"
	"image"
	_ "image/jpeg"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// fuzzLimits keep each run's work small: tiny videos, tiny images.
func fuzzLimits() Limits {
	return Limits{MaxPixels: 64 * 64, MaxFrames: 121, MaxSteps: 40, MaxImageBytes: 1 << 20, MaxImagePixels: 1 << 16}
}

// checkErr checks what every error must carry.
func checkErr(t *testing.T, err error) {
	t.Helper()
	errs := errorsOf(err)
	if len(errs) == 0 {
		t.Fatalf("error without a code: %v", err)
	}
	for _, e := range errs {
		if e == nil || e.Code == "" || e.Message == "" || e.Hint == "" {
			t.Fatalf("incomplete error: %#v", e)
		}
	}
}

// FuzzParse feeds job documents (or bare inputs) to DecodeRequest and
// Parse: they must never panic, every error must have a code, message and
// hint, and every accepted job must satisfy the contract.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		input := data
		if req, err := DecodeRequest(data); err == nil {
			input = req.Input
		} else {
			checkErr(t, err)
		}
		lim := fuzzLimits()
		j, err := parse(context.Background(), "fuzz", input, lim, nil, &seededRand{})
		if err != nil {
			checkErr(t, err)
			return
		}
		o := j.Options
		if o.Width%16 != 0 || o.Height%16 != 0 || o.Width < 16 || o.Height < 16 || o.Width*o.Height > lim.MaxPixels ||
			o.Length < 5 || o.Length > lim.MaxFrames || (o.Length-1)%4 != 0 || o.Steps < 2 || o.Steps > lim.MaxSteps ||
			o.SplitStep < 1 || o.SplitStep >= o.Steps || o.CFG < 1 || o.CFG > 20 || o.Shift < 0.5 || o.Shift > 20 ||
			o.FrameRate < 1 || o.FrameRate > 60 || o.CRF < 0 || o.CRF > 51 || len(o.LoRAs) > MaxLoRAs || j.Prompt == "" {
			t.Fatalf("accepted a job that breaks the contract: %+v", o)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(j.Prepared))
		if err != nil || cfg.Width != o.Width || cfg.Height != o.Height {
			t.Fatalf("prepared image %+v (%v), want %dx%d", cfg, err, o.Width, o.Height)
		}
	})
}

// FuzzDecodeImage feeds image bytes to the header check, the EXIF reader,
// the decoder and the preparation: no panic, no unbounded work (the limits
// are checked before decoding), typed errors only.
func FuzzDecodeImage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := fuzzLimits()
		for _, format := range []string{FormatJPEG, FormatPNG, FormatWebP} {
			if o := exifOrientation(format, data); o < 1 || o > 8 {
				t.Fatalf("orientation %d", o)
			}
		}
		d, err := decodeImage(data, lim)
		if err != nil {
			if e := apperr.As(err); e == nil || e.Hint == "" || e.Field != "image" {
				t.Fatalf("untyped or incomplete error: %v", err)
			}
			return
		}
		w, h := d.orientedSize()
		if int64(w)*int64(h) > lim.MaxImagePixels {
			t.Fatalf("decoded %dx%d beyond the pixel limit", w, h)
		}
		vw, vh := chooseSize(0, 0, w, h, lim.MaxPixels)
		out, _, err := prepare(d, FitCrop, vw, vh)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || cfg.Width != vw || cfg.Height != vh {
			t.Fatalf("prepared %+v (%v), want %dx%d", cfg, err, vw, vh)
		}
	})
}
