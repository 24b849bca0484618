package job

import "testing"

func TestChooseSize(t *testing.T) {
	tests := []struct {
		name         string
		w, h         int // given (0: not given)
		imgW, imgH   int
		maxPixels    int
		wantW, wantH int
	}{
		{"both given", 832, 480, 100, 100, 921600, 832, 480},
		{"square", 0, 0, 512, 512, 921600, 832, 832},
		{"landscape 16:9", 0, 0, 1920, 1080, 921600, 1104, 624},
		{"portrait 9:16", 0, 0, 1080, 1920, 921600, 624, 1104},
		{"4:3", 0, 0, 1024, 768, 921600, 960, 720},
		{"tiny image", 0, 0, 1, 1, 921600, 832, 832},
		{"small MAX_PIXELS", 0, 0, 512, 512, 256 * 256, 256, 256},
		{"MAX_PIXELS below the target", 0, 0, 1000, 1000, 500000, 704, 704},
		{"extreme panorama", 0, 0, 10000, 1, 921600, 16384, 16},
		{"extreme tower", 0, 0, 1, 10000, 921600, 16, 16384},
		{"width given", 832, 0, 1920, 1080, 921600, 832, 464},
		{"height given", 0, 480, 1920, 1080, 921600, 848, 480},
		{"width given, height clamped to MAX_PIXELS", 1280, 0, 1080, 1920, 921600, 1280, 720},
		{"height given, width clamped to MAX_PIXELS", 0, 1280, 1920, 1080, 921600, 720, 1280},
		{"width 16 of a tower", 16, 0, 1, 10000, 921600, 16, 16384},
		{"width given of a panorama", 1024, 0, 10000, 1, 921600, 1024, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h := chooseSize(tt.w, tt.h, tt.imgW, tt.imgH, tt.maxPixels)
			if w != tt.wantW || h != tt.wantH {
				t.Errorf("chooseSize = %dx%d, want %dx%d", w, h, tt.wantW, tt.wantH)
			}
		})
	}
}

// TestChooseSizeInvariants checks every derived size over a grid of images
// and limits: on the 16 grid, within [16, MaxSide], within MAX_PIXELS.
func TestChooseSizeInvariants(t *testing.T) {
	dims := []int{1, 2, 3, 7, 16, 100, 333, 640, 1080, 1920, 4000, 9999, 65535}
	limits := []int{256, 1000, 65536, 500000, 921600, 4 << 20}
	for _, maxPixels := range limits {
		for _, iw := range dims {
			for _, ih := range dims {
				for _, given := range [][2]int{{0, 0}, {16, 0}, {0, 16}, {832, 0}, {0, 480}} {
					gw, gh := given[0], given[1]
					if gw*SizeStep > maxPixels || gh*SizeStep > maxPixels {
						continue // refused by parseOptions
					}
					w, h := chooseSize(gw, gh, iw, ih, maxPixels)
					if w%SizeStep != 0 || h%SizeStep != 0 || w < SizeStep || h < SizeStep || w > MaxSide || h > MaxSide ||
						w*h > maxPixels || gw > 0 && w != gw || gh > 0 && h != gh {
						t.Fatalf("chooseSize(%d, %d, %dx%d, %d) = %dx%d breaks a rule", gw, gh, iw, ih, maxPixels, w, h)
					}
				}
			}
		}
	}
}

func TestFitArea(t *testing.T) {
	tests := []struct{ w, h, max, ww, wh int }{
		{1920, 1088, 921600, 1264, 720},
		{1280, 720, 921600, 1280, 720},
		{4096, 4096, 921600, 960, 960},
		{16384, 16, 1000, 48, 16},
	}
	for _, tt := range tests {
		w, h := fitArea(tt.w, tt.h, tt.max)
		if w != tt.ww || h != tt.wh || w*h > tt.max && (w > 16 || h > 16) {
			t.Errorf("fitArea(%d, %d, %d) = %dx%d, want %dx%d", tt.w, tt.h, tt.max, w, h, tt.ww, tt.wh)
		}
	}
}
