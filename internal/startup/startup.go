// Package startup records a worker's start-up timeline: process start → ComfyUI spawned → ComfyUI answering →
// each model file loaded by the warm-up → warm-up done → first job taken, each step at its time since the
// process started, the model files with their bytes and read rate. The worker logs it as one JSON line when
// the first job is taken (or the warm-up ends) and serves it in the local API's /health and in
// `doctor -o json`.
package startup

import (
	"math"
	"sync"
	"time"
)

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
}

// New starts a timeline at the process's start time, recording ProcessStart.
func New(start time.Time) *Timeline {
	return &Timeline{start: start, steps: []Step{{Name: ProcessStart}}, once: map[string]bool{}}
}

// At records the step s at time at (AtMS is computed here). A step named once (Once) is recorded only the
// first time; At reports whether it recorded.
func (t *Timeline) At(at time.Time, s Step) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.once[s.Name] {
		return false
	}
	if s.Name == FirstJobTaken {
		t.once[s.Name] = true
	}
	s.AtMS = at.Sub(t.start).Milliseconds()
	t.steps = append(t.steps, s)
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
