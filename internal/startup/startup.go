// Package startup records a worker's start-up timeline: process start → ComfyUI spawned → ComfyUI answering →
// each model file loaded by the warm-up → warm-up done → first job taken, each step at its time since the
// process started, the model files with their bytes and read rate. The worker logs it as one JSON line when
// the first job is taken (or the warm-up ends) and serves it in the local API's /health and in
// `doctor -o json`.
package startup

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// DefaultFile is where a worker keeps its timeline for `doctor` (in the system's temporary folder).
func DefaultFile() string { return filepath.Join(os.TempDir(), "wan22-worker-startup.json") }

// The steps, in their usual order.
const (
	ProcessStart  = "process_start"
	ComfySpawned  = "comfyui_spawned"
	ComfyReady    = "comfyui_ready"
	WarmupStarted = "warmup_started"
	ModelLoaded   = "model_loaded"
	WarmupDone    = "warmup_done"
	FirstJobTaken = "first_job_taken"
	PrefetchDone  = "prefetch_done"
)

// Step is one point of the timeline.
type Step struct {
	Name string `json:"name"`
	// AtMS is the time since the process started, in milliseconds.
	AtMS int64 `json:"at_ms"`
	// TookMS is the step's own duration when it has one (a model load: its loader node's wall time).
	TookMS int64 `json:"took_ms,omitempty"`
	// A model file: folder/name, where it was read from (path, volume/cache/local), its size and read rate.
	File   string  `json:"file,omitempty"`
	Path   string  `json:"path,omitempty"`
	Source string  `json:"source,omitempty"`
	Bytes  int64   `json:"bytes,omitempty"`
	MBPerS float64 `json:"mb_per_s,omitempty"`
	Node   string  `json:"node,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// Report is the timeline as served and logged.
type Report struct {
	ProcessStart time.Time `json:"process_start"`
	Steps        []Step    `json:"steps"`
	// Complete is true once the first job was taken.
	Complete bool `json:"complete"`
}

// Timeline collects the steps; safe for concurrent use.
type Timeline struct {
	mu    sync.Mutex
	start time.Time
	steps []Step
	once  map[string]bool
	file  string // rewritten after each step when set

	saveMu sync.Mutex // one write of file at a time
}

// New starts a timeline at the process's start time, recording ProcessStart.
func New(start time.Time) *Timeline {
	return &Timeline{start: start, steps: []Step{{Name: ProcessStart}}, once: map[string]bool{}}
}

// WriteTo keeps the timeline in file (rewritten atomically after each step) for `doctor` to read; errors
// are ignored, the file is a convenience.
func (t *Timeline) WriteTo(file string) {
	t.mu.Lock()
	t.file = file
	t.mu.Unlock()
	t.save()
}

func (t *Timeline) save() {
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	t.mu.Lock()
	file := t.file
	t.mu.Unlock()
	if file == "" {
		return
	}
	b, err := json.Marshal(t.Report())
	if err != nil {
		return
	}
	tmp := fmt.Sprintf("%s.%d.tmp", file, os.Getpid())
	if os.WriteFile(tmp, b, 0o644) != nil || os.Rename(tmp, file) != nil {
		_ = os.Remove(tmp)
	}
}

// Read reads a timeline written by WriteTo.
func Read(file string) (Report, error) {
	var r Report
	b, err := os.ReadFile(file)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// Find returns the first step named name.
func (r Report) Find(name string) (Step, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// At records the step s at time at (AtMS is computed here). A step named once (Once) is recorded only the
// first time; At reports whether it recorded.
func (t *Timeline) At(at time.Time, s Step) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	if t.once[s.Name] {
		t.mu.Unlock()
		return false
	}
	if s.Name == FirstJobTaken {
		t.once[s.Name] = true
	}
	s.AtMS = at.Sub(t.start).Milliseconds()
	t.steps = append(t.steps, s)
	sort.SliceStable(t.steps, func(i, j int) bool { return t.steps[i].AtMS < t.steps[j].AtMS })
	t.mu.Unlock()
	t.save()
	return true
}

// Mark records a step now.
func (t *Timeline) Mark(name string) bool { return t.At(time.Now(), Step{Name: name}) }

// Model records a model file's load: it ended at end and took took; its rate is bytes over took.
func (t *Timeline) Model(end time.Time, took time.Duration, s Step) {
	s.Name = ModelLoaded
	s.TookMS = took.Milliseconds()
	if took > 0 && s.Bytes > 0 {
		s.MBPerS = math.Round(float64(s.Bytes)/1e6/took.Seconds()*10) / 10
	}
	t.At(end, s)
}

// Report returns a copy of the timeline.
func (t *Timeline) Report() Report {
	if t == nil {
		return Report{Steps: []Step{}}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return Report{ProcessStart: t.start, Steps: append([]Step(nil), t.steps...), Complete: t.once[FirstJobTaken]}
}
