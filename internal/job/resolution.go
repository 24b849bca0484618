package job

import "math"

// Resolution names the video's short side.
type Resolution string

// The resolutions.
const (
	Res480p Resolution = "480p"
	Res580p Resolution = "580p"
	Res720p Resolution = "720p"
)

// Resolutions returns the resolution names in documentation order.
func Resolutions() []string { return []string{string(Res480p), string(Res580p), string(Res720p)} }

// ShortSide is the short side of a resolution, on the 16-pixel grid: 480,
// 576 (580 is not a multiple of 16) or 720; 0 for an unknown name.
func (r Resolution) ShortSide() int {
	switch r {
	case Res480p:
		return 480
	case Res580p:
		return 576
	case Res720p:
		return 720
	}
	return 0
}

// AspectRatio is the shape of the video: "auto" (the image's) or fixed.
type AspectRatio string

// The aspect ratios.
const (
	AspectAuto AspectRatio = "auto"
	Aspect16x9 AspectRatio = "16:9"
	Aspect9x16 AspectRatio = "9:16"
	Aspect1x1  AspectRatio = "1:1"
	Aspect4x3  AspectRatio = "4:3"
	Aspect3x4  AspectRatio = "3:4"
)

// AspectRatios returns the aspect ratio names in documentation order.
func AspectRatios() []string {
	return []string{string(AspectAuto), string(Aspect16x9), string(Aspect9x16), string(Aspect1x1),
		string(Aspect4x3), string(Aspect3x4)}
}

// Ratio returns width and height of a fixed aspect ratio, or 0, 0 for auto.
func (a AspectRatio) Ratio() (w, h int) {
	switch a {
	case Aspect16x9:
		return 16, 9
	case Aspect9x16:
		return 9, 16
	case Aspect1x1:
		return 1, 1
	case Aspect4x3:
		return 4, 3
	case Aspect3x4:
		return 3, 4
	}
	return 0, 0
}

// resolutionSize returns the size for a short side and an aspect ratio
// rw:rh: the short side as given, the long side from the ratio snapped to
// the 16-pixel grid, and cut so that the area stays within maxPixels. The
// caller has checked that short×short fits.
func resolutionSize(short, rw, rh, maxPixels int) (int, int) {
	r := float64(rw) / float64(rh)
	if r < 1 {
		r = 1 / r
	}
	long := int(math.Round(float64(short)*r/SizeStep)) * SizeStep
	long = max(short, min(long, maxPixels/short/SizeStep*SizeStep, MaxSide))
	if rw >= rh {
		return long, short
	}
	return short, long
}
