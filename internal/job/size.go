package job

import "math"

// chooseSize returns the video size. Given sides (non-zero) are kept; a
// missing side follows the image's aspect ratio (imgW×imgH, oriented); with
// neither given the size aims at TargetArea pixels. Every derived side is a
// multiple of SizeStep, at least SizeStep and at most MaxSide, and the area
// stays within maxPixels. The given sides were checked by parseOptions.
func chooseSize(w, h, imgW, imgH, maxPixels int) (int, int) {
	if w > 0 && h > 0 {
		return w, h
	}
	r := float64(imgW) / float64(imgH)
	switch {
	case w > 0:
		return w, clampSide(snap(float64(w)/r), maxPixels/w)
	case h > 0:
		return clampSide(snap(float64(h)*r), maxPixels/h), h
	}
	area := float64(min(TargetArea, maxPixels))
	w = clampSide(snap(math.Sqrt(area*r)), MaxSide)
	h = clampSide(snap(math.Sqrt(area/r)), MaxSide)
	for w*h > maxPixels && (w > SizeStep || h > SizeStep) {
		// Give up 16 pixels on the side that keeps the aspect ratio closest.
		if h == SizeStep || w > SizeStep && float64(w)/float64(h) > r {
			w -= SizeStep
		} else {
			h -= SizeStep
		}
	}
	return w, h
}

// snap rounds to the nearest multiple of SizeStep, at least SizeStep.
func snap(x float64) int {
	if math.IsNaN(x) || x < SizeStep {
		return SizeStep
	}
	if x > MaxSide {
		return MaxSide
	}
	return int(math.Round(x/SizeStep)) * SizeStep
}

// clampSide keeps a side within [SizeStep, min(limit, MaxSide)], on the grid.
func clampSide(v, limit int) int {
	limit = min(limit, MaxSide) / SizeStep * SizeStep
	return max(SizeStep, min(v, limit))
}
