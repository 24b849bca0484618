package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wan22-worker/wan22-worker/internal/progress"
)

// TestJobBarHeartbeat: in plain output the job's line is printed on each
// stage or step, and again every 15 s while nothing changes, with the
// elapsed time.
func TestJobBarHeartbeat(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	bar := newJobBarAt(clock)
	var out bytes.Buffer
	r := progress.NewRenderer(&out, progress.RenderOptions{Plain: true, Interval: time.Hour})
	defer r.Stop()
	r.Add(bar)
	lines := func() []string { return strings.Split(strings.TrimSpace(out.String()), "\n") }

	bar.set(progress.Progress{Stage: progress.EncodingPrompt, Percent: 10})
	r.Render()
	now = now.Add(14 * time.Second)
	r.Render() // nothing new yet
	if n := len(lines()); n != 1 {
		t.Fatalf("%d lines before the heartbeat:\n%s", n, out.String())
	}
	now = now.Add(time.Second)
	r.Render() // 15 s without a change: a heartbeat line
	now = now.Add(15 * time.Second)
	r.Render() // and another
	got := lines()
	if len(got) != 3 || !strings.Contains(got[1], "encoding_prompt") || !strings.HasSuffix(got[1], "15s") || !strings.HasSuffix(got[2], "30s") {
		t.Fatalf("heartbeat lines:\n%s", out.String())
	}
	bar.set(progress.Progress{Stage: progress.SamplingHigh, Percent: 20, Step: 1, Steps: 6})
	r.Render()
	now = now.Add(10 * time.Second)
	r.Render() // a change restarts the 15 s
	if got := lines(); len(got) != 4 || !strings.Contains(got[3], "sampling_high") {
		t.Fatalf("after a change:\n%s", out.String())
	}
}
