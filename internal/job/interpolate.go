package job

import (
	"encoding/json"
	"fmt"
)

// Interpolate asks for more frames than the model makes: Factor−1 new frames
// between each pair, made by Method, so that n frames become (n−1)×Factor+1
// at Factor times the frame rate, over the same time span.
type Interpolate struct {
	Factor int                 `json:"factor"`
	Method InterpolationMethod `json:"method"`
}

// InterpolationMethod names how the new frames are made.
type InterpolationMethod string

// The interpolation methods.
const (
	// InterpolateFFmpeg is ffmpeg's motion-compensated minterpolate filter,
	// run by the worker on the delivered MP4.
	InterpolateFFmpeg InterpolationMethod = "ffmpeg"
)

// InterpolationMethods returns the methods in documentation order.
func InterpolationMethods() []string { return []string{string(InterpolateFFmpeg)} }

// The bounds of options.interpolate.
const (
	DefaultInterpolateFactor = 2
	MaxInterpolateFactor     = 4
	// MaxInterpolatedFrameRate bounds options.frame_rate with interpolation.
	MaxInterpolatedFrameRate = 120
)

// interpolateKeys are the keys of options.interpolate.
func interpolateKeys() []string { return []string{"factor", "method"} }

// parseInterpolate reads options.interpolate; nil means off (or invalid).
func parseInterpolate(c *checker, raw json.RawMessage) *Interpolate {
	const field = "options.interpolate"
	m, ok := c.object(field, raw, interpolateKeys(), `"interpolate": {"factor": 2, "method": "ffmpeg"}`)
	if !ok {
		return nil
	}
	in := &Interpolate{Factor: DefaultInterpolateFactor, Method: InterpolateFFmpeg}
	good := true
	if raw := given(m, "factor"); raw != nil {
		n, ok := c.integer(field+".factor", raw, `"factor": 2`)
		switch {
		case !ok:
			good = false
		case n < 2 || n > MaxInterpolateFactor:
			c.fail(field+".factor", fmt.Sprintf("use 2, 3 or %d: 2 turns 16 fps into 32 fps", MaxInterpolateFactor),
				"%s.factor must be between 2 and %d, got %d", field, MaxInterpolateFactor, n)
			good = false
		default:
			in.Factor = int(n)
		}
	}
	if raw := given(m, "method"); raw != nil {
		if v, ok := enum(c, field+".method", raw, InterpolationMethods()); ok {
			in.Method = InterpolationMethod(v)
		} else {
			good = false
		}
	}
	if !good {
		return nil
	}
	return in
}
