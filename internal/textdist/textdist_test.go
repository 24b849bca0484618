package textdist

import "testing"

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		max  int
		want int
	}{
		{"", "", 0, 0},
		{"length", "length", 0, 0},
		{"lenght", "length", 0, 1}, // transposition
		{"lenth", "length", 0, 1},  // deletion
		{"lengthh", "length", 0, 1},
		{"seed", "steps", 0, 3},
		{"kitten", "sitting", 0, 3},
		{"abc", "", 0, 3},
		{"wan2.2_i2v_low_noise.safetensors", "wan2.2_i2v_high_noise.safetensors", 0, 4},
		{"aaaaaaaaaaX", "aaaaaaaaaaY", 10, 0}, // cut before the difference
	}
	for _, tc := range tests {
		if got := Distance(tc.a, tc.b, tc.max); got != tc.want {
			t.Errorf("Distance(%q, %q, %d) = %d, want %d", tc.a, tc.b, tc.max, got, tc.want)
		}
		if got := Distance(tc.b, tc.a, tc.max); got != tc.want {
			t.Errorf("Distance is not symmetric for %q, %q", tc.a, tc.b)
		}
	}
}
