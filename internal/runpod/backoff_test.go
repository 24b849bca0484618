package runpod

import (
	"testing"
	"time"
)

func TestBackoffGrowsJitteredAndCapped(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	for i := 0; i < 20; i++ {
		base := min(100*time.Millisecond<<i, 2*time.Second)
		d := b.next()
		if d < base/2 || d > 2*time.Second {
			t.Errorf("attempt %d: wait %v outside [%v, %v]", i, d, base/2, 2*time.Second)
		}
	}
	b.reset()
	if d := b.next(); d > 150*time.Millisecond {
		t.Errorf("after reset: %v", d)
	}
}

func TestIsTransient(t *testing.T) {
	tests := map[int]bool{500: true, 502: true, 503: true, 429: true, 408: true, 400: false, 404: false, 413: false, 401: false}
	for status, want := range tests {
		if got := isTransient(status, nil); got != want {
			t.Errorf("isTransient(%d) = %v", status, got)
		}
	}
}
