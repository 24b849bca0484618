package startup

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tl := New(t0)
	file := filepath.Join(t.TempDir(), "startup.json")
	tl.WriteTo(file)
	tl.At(t0.Add(900*time.Millisecond), Step{Name: ComfyReady})
	tl.At(t0.Add(100*time.Millisecond), Step{Name: ComfySpawned}) // recorded late, sorted in place
	tl.Model(t0.Add(3*time.Second), 2*time.Second, Step{File: "vae/v.safetensors", Bytes: 250_000_000})
	if !tl.At(t0.Add(4*time.Second), Step{Name: FirstJobTaken}) || tl.At(t0.Add(5*time.Second), Step{Name: FirstJobTaken}) {
		t.Error("first_job_taken must record once")
	}
	r := tl.Report()
	var names []string
	var at []int64
	for _, s := range r.Steps {
		names = append(names, s.Name)
		at = append(at, s.AtMS)
	}
	if want := []string{ProcessStart, ComfySpawned, ComfyReady, ModelLoaded, FirstJobTaken}; !slices.Equal(names, want) {
		t.Errorf("steps %v, want %v", names, want)
	}
	if want := []int64{0, 100, 900, 3000, 4000}; !slices.Equal(at, want) {
		t.Errorf("at %v, want %v", at, want)
	}
	if m, _ := r.Find(ModelLoaded); m.MBPerS != 125 || m.TookMS != 2000 {
		t.Errorf("model step %+v, want 125 MB/s over 2000 ms", m)
	}
	if !r.Complete || !r.ProcessStart.Equal(t0) {
		t.Errorf("report %+v", r)
	}
	back, err := Read(file)
	if err != nil || len(back.Steps) != len(r.Steps) || !back.Complete {
		t.Errorf("file: %+v, %v", back, err)
	}
	var nilTL *Timeline
	if nilTL.Mark(ComfyReady) || len(nilTL.Report().Steps) != 0 {
		t.Error("a nil timeline records")
	}
}
