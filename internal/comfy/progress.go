package comfy

import (
	"math"

	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// tracker turns ComfyUI's execution events into progress updates: the stage
// of the running node, and a percent that never goes down. Stages only move
// forward: ComfyUI runs nodes in its own order (the text encoder's loader
// and the prompt before the video model's loader, say), so a node of an
// earlier stage that runs later is reported under the current stage.
type tracker struct {
	stages map[string]progress.Stage
	steps  int // sampler steps over both experts
	split  int // steps on the high-noise expert
	emit   progress.Func

	total   map[progress.Stage]int // nodes per stage
	done    map[string]bool
	current string
	last    progress.Progress
	sent    bool
}

func newTracker(stages map[string]progress.Stage, steps, split int, emit progress.Func) *tracker {
	if emit == nil {
		emit = progress.Nop
	}
	if split < 0 || split > steps {
		split = 0
	}
	t := &tracker{stages: stages, steps: steps, split: split, emit: emit,
		total: map[progress.Stage]int{}, done: map[string]bool{}}
	for _, s := range stages {
		t.total[s]++
	}
	return t
}

// stageRange is the share of the job's percent a stage covers. Sampling is
// the bulk; the two experts share it by their steps.
func stageRange(s progress.Stage) (from, to float64, ok bool) {
	switch s {
	case progress.LoadingModels:
		return 0, 10, true
	case progress.EncodingPrompt:
		return 10, 15, true
	case progress.SamplingHigh, progress.SamplingLow:
		return 15, 85, true
	case progress.Decoding:
		return 85, 93, true
	case progress.EncodingVideo:
		return 93, 99, true
	}
	return 0, 0, false
}

// stageRank orders the stages as a job goes through them.
func stageRank(s progress.Stage) int {
	from, _, ok := stageRange(s)
	if !ok {
		return -1
	}
	if s == progress.SamplingLow {
		from += 0.5 // shares its range with SamplingHigh, after it
	}
	return int(from * 2)
}

// started is execution_start.
func (t *tracker) started() {
	t.update(progress.LoadingModels, 0, 0)
}

// cached marks nodes served from the cache as done.
func (t *tracker) cached(nodes []string) {
	for _, n := range nodes {
		t.done[n] = true
	}
}

// executing is a node starting: the previous node is done.
func (t *tracker) executing(node string) {
	if t.current != "" && t.current != node {
		t.done[t.current] = true
	}
	t.current = node
	t.nodeProgress(node, 0, 0)
}

// finished is a node reported finished (progress_state).
func (t *tracker) finished(node string) {
	t.done[node] = true
}

// nodeProgress is a progress tick of a node: value of max (max 0: none yet).
func (t *tracker) nodeProgress(node string, value, max float64) {
	stage, ok := t.stages[node]
	if !ok {
		return
	}
	from, to, ok := stageRange(stage)
	if !ok {
		return
	}
	frac := 0.0
	if max > 0 {
		frac = math.Min(1, math.Max(0, value/max))
	}
	step := 0
	var pct float64
	switch {
	case (stage == progress.SamplingHigh || stage == progress.SamplingLow) && t.steps > 0:
		// Step n of the low-noise sampler is step split+n of the job.
		offset := 0
		if stage == progress.SamplingLow {
			offset = t.split
		}
		if max > 0 {
			step = offset + int(math.Round(value))
		} else {
			step = offset
		}
		if step > t.steps {
			step = t.steps
		}
		pct = from + (to-from)*float64(step)/float64(t.steps)
	case stage == progress.SamplingHigh:
		pct = from + (to-from)/2*frac
	case stage == progress.SamplingLow:
		pct = from + (to-from)/2*(1+frac)
	default:
		n := t.total[stage]
		k := 0
		for id, s := range t.stages {
			if s == stage && t.done[id] && id != node {
				k++
			}
		}
		if n < 1 {
			n = 1
		}
		pct = from + (to-from)*math.Min(1, (float64(k)+frac)/float64(n))
	}
	t.update(stage, pct, step)
}

// complete is the end of a successful run.
func (t *tracker) complete() {
	t.update(progress.EncodingVideo, 99, 0)
}

func (t *tracker) update(stage progress.Stage, pct float64, step int) {
	if t.sent && stageRank(stage) < stageRank(t.last.Stage) {
		stage, step = t.last.Stage, t.last.Step
	}
	p := progress.Progress{Stage: stage, Percent: int(math.Floor(pct)), Step: step}
	if step > 0 {
		p.Steps = t.steps
	}
	if p.Percent < t.last.Percent {
		p.Percent = t.last.Percent
	}
	if p.Percent > 99 {
		p.Percent = 99
	}
	if t.sent && p == t.last {
		return
	}
	t.last, t.sent = p, true
	t.emit(p)
}
