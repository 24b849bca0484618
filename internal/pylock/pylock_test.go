package pylock

import (
	"errors"
	"slices"
	"testing"
)

const h1 = "sha256:c3f9d0113123803ccadfdf3f0faa505bc78e6a72d1cc4806cbd719826e943558"
const h2 = "sha256:f349ba8f4b75cb25c99c5c2d84e997e485204d2902a9597802b0371f09331fb8"

func TestParse(t *testing.T) {
	lock := "# header\n" +
		"Aio_Happy.Eyeballs==2.6.1 \\\n    --hash=" + h1 + " \\\n    --hash=" + h2 + "\n    # via aiohttp\n" +
		"torch==2.8.0 --hash=" + h1 + " ; sys_platform == 'linux'\n" +
		"numpy>=1.25 \\\n    --hash=" + h1 + "\n" +
		"scipy==1.16.2\n" +
		"--index-url https://example.invalid/simple\n" +
		"pillow==11.3.0 --hash=md5:abc\n" +
		"yarl==1.* --hash=" + h1 + "\n"
	pins, errs := Parse([]byte(lock))
	want := []Pin{
		{Name: "aio-happy-eyeballs", Version: "2.6.1", Hashes: []string{h1, h2}, Line: 2},
		{Name: "torch", Version: "2.8.0", Hashes: []string{h1}, Line: 6},
	}
	if len(pins) != len(want) {
		t.Fatalf("pins %+v, want %+v", pins, want)
	}
	for i := range want {
		if pins[i].Name != want[i].Name || pins[i].Version != want[i].Version || !slices.Equal(pins[i].Hashes, want[i].Hashes) || pins[i].Line != want[i].Line {
			t.Errorf("pin %d = %+v, want %+v", i, pins[i], want[i])
		}
	}
	var lines []int
	for _, err := range errs {
		var le *LineError
		if !errors.As(err, &le) {
			t.Fatalf("error %v is not a LineError", err)
		}
		lines = append(lines, le.Line)
	}
	if wantLines := []int{7, 9, 10, 11, 12}; !slices.Equal(lines, wantLines) {
		t.Errorf("bad lines %v (%v), want %v", lines, errs, wantLines)
	}
}

func TestCompare(t *testing.T) {
	pins := []Pin{{Name: "torch", Version: "2.8.0"}, {Name: "numpy", Version: "2.2.6"}, {Name: "pyyaml", Version: "6.0.3"}, {Name: "av", Version: "15.1.0"}}
	installed := map[string]string{"torch": "2.8.0+cu128", "NumPy": "2.3.3", "PyYAML": "6.0.3", "pip": "25.2", "requests": "2.32.5"}
	got := Compare(pins, installed)
	want := []Difference{
		{Name: "av", Locked: "15.1.0"},
		{Name: "numpy", Locked: "2.2.6", Installed: "2.3.3"},
		{Name: "requests", Installed: "2.32.5"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Compare = %+v, want %+v", got, want)
	}
	if got := Compare(pins[:1], map[string]string{"torch": "2.8.0"}); len(got) != 0 {
		t.Errorf("equal sets: %+v", got)
	}
	wantText := []string{"av (locked 15.1.0, not installed)", "numpy 2.3.3 (locked 2.2.6)", "requests 2.32.5 (not in the lock)"}
	for i, d := range want {
		if d.String() != wantText[i] {
			t.Errorf("%+v.String() = %q, want %q", d, d.String(), wantText[i])
		}
	}
}
