package job

import "github.com/wan22-worker/wan22-worker/internal/config"

// Limits are the server's bounds on a job (the job limits of
// docs/configuration.md).
type Limits struct {
	MaxPixels      int   // width×height of the video (MAX_PIXELS)
	MaxFrames      int   // options.length (MAX_FRAMES)
	MaxSteps       int   // options.steps (MAX_STEPS)
	MaxImageBytes  int64 // encoded input image, after base64 decoding or download (MAX_IMAGE_BYTES)
	MaxImagePixels int64 // input image pixels, read from its header (MAX_IMAGE_PIXELS)
}

// LimitsFrom takes the limits from the configuration.
func LimitsFrom(c *config.Config) Limits {
	return Limits{
		MaxPixels:      c.MaxPixels,
		MaxFrames:      c.MaxFrames,
		MaxSteps:       c.MaxSteps,
		MaxImageBytes:  c.MaxImageBytes,
		MaxImagePixels: c.MaxImagePixels,
	}
}
