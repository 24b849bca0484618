package progress

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{999, "999 B"},
		{1000, "1.00 kB"},
		{1500, "1.50 kB"},
		{999_949, "999.9 kB"},
		{999_999, "1.00 MB"},
		{253_815_318, "253.8 MB"},
		{6_735_906_897, "6.74 GB"},
		{14_294_742_832, "14.3 GB"},
		{-2500, "-2.50 kB"},
	}
	for _, tc := range tests {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestBarString(t *testing.T) {
	c := newClock()
	b := newBar("wan_2.1_vae.safetensors", 1000, 0, c.Now)
	tests := []struct {
		name string
		step func()
		want string
	}{
		{"start", func() {}, "wan_2.1_vae.safetensors            0% ▕                    ▏ 0 B/1.00 kB"},
		{"quarter after 1s", func() { c.Add(time.Second); b.Set(250) }, "wan_2.1_vae.safetensors           25% ▕█████               ▏ 250 B/1.00 kB  250 B/s  3s"},
		{"half after 2s", func() { c.Add(time.Second); b.Set(500) }, "wan_2.1_vae.safetensors           50% ▕██████████          ▏ 500 B/1.00 kB  250 B/s  2s"},
		{"status hides rate", func() { b.SetStatus("retry 1") }, "wan_2.1_vae.safetensors           50% ▕██████████          ▏ 500 B/1.00 kB  retry 1"},
		{"done", func() { b.SetStatus(""); c.Add(time.Second); b.Set(1000); b.Finish("✓ verified") },
			"wan_2.1_vae.safetensors          100% ▕████████████████████▏ 1.00 kB/1.00 kB  ✓ verified"},
	}
	for _, tc := range tests {
		tc.step()
		if got := b.String(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestBarLongNameAndUnknownTotal(t *testing.T) {
	c := newClock()
	b := newBar("wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", 0, 0, c.Now)
	c.Add(2 * time.Second)
	b.Set(4000)
	want := "wan2.2_i2v_high…aled.safetensors 4.00 kB  2.00 kB/s"
	if got := b.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := b.Milestone(); got != "-1|" {
		t.Errorf("milestone with unknown total = %q", got)
	}
}

func TestBarRate(t *testing.T) {
	c := newClock()
	// A resumed download: 600 of 1000 bytes were there before.
	b := newBar("f", 10_000, 600, c.Now)
	c.Add(time.Second)
	b.Set(1600)
	if r := b.Rate(); r != 1000 {
		t.Errorf("rate after resume = %v, want 1000 (bytes already there do not count)", r)
	}
	// Ten one-second buckets: the rate follows the recent speed.
	for range 12 {
		c.Add(time.Second)
		b.Set(b.current + 100)
	}
	if r := b.Rate(); r != 100 {
		t.Errorf("recent rate = %v, want 100", r)
	}
	// Restarting from zero restarts the measurement.
	c.Add(time.Second)
	b.Set(0)
	if r := b.Rate(); r != 0 {
		t.Errorf("rate after restart = %v, want 0", r)
	}
	c.Add(2 * time.Second)
	b.Set(600)
	if r := b.Rate(); r != 300 {
		t.Errorf("rate after restart and 2s = %v, want 300", r)
	}
}

func TestBarMilestone(t *testing.T) {
	b := newBar("f", 100, 0, newClock().Now)
	var got []string
	for _, v := range []int64{1, 9, 10, 19, 55, 100} {
		b.Set(v)
		got = append(got, b.Milestone())
	}
	b.Finish("done")
	got = append(got, b.Milestone())
	want := "0|,0|,10|,10|,50|,100|,100|done"
	if strings.Join(got, ",") != want {
		t.Errorf("milestones %v, want %s", got, want)
	}
}

// renderer returns a renderer whose ticker never fires during a test, so
// frames come only from explicit Render and Stop calls.
func renderer(w *bytes.Buffer, plain bool, width int) *Renderer {
	return NewRenderer(w, RenderOptions{Plain: plain, Interval: time.Hour, Width: width})
}

func TestRendererPlain(t *testing.T) {
	var buf bytes.Buffer
	r := renderer(&buf, true, 0)
	c := newClock()
	a := newBar("a", 100, 0, c.Now)
	b := newBar("b", 100, 0, c.Now)
	r.Add(a)
	r.Add(b)
	r.Render() // both at 0%: printed once
	a.Set(5)
	r.Render() // same milestone: nothing
	a.Set(30)
	r.Render() // a at 30%
	r.Println("! b: retrying")
	b.Set(100)
	b.Finish("done")
	if !r.Stop() {
		t.Error("first Stop returned false")
	}
	if r.Stop() {
		t.Error("second Stop returned true")
	}
	out := buf.String()
	if strings.Contains(out, "\033") {
		t.Errorf("plain output has escape sequences: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	wantPrefixes := []string{"a ", "b ", "a ", "! b: retrying", "b "}
	if len(lines) != len(wantPrefixes) {
		t.Fatalf("lines:\n%s", out)
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], p)
		}
	}
	if !strings.Contains(lines[2], " 30% ") || !strings.Contains(lines[4], "100%") || !strings.HasSuffix(lines[4], "done") {
		t.Errorf("unexpected lines:\n%s", out)
	}
}

func TestRendererTerminal(t *testing.T) {
	var buf bytes.Buffer
	r := renderer(&buf, false, 30)
	c := newClock()
	r.Add(newBar("first-file", 100, 0, c.Now))
	r.Add(newBar("second-file", 100, 0, c.Now))
	r.Render()
	first := buf.String()
	// Two lines, each cut to 29 columns and ended by erase-to-end-of-line.
	if strings.Count(first, "\033[K") != 2 || strings.Count(first, "\n") != 1 {
		t.Errorf("first frame = %q", first)
	}
	for _, l := range strings.Split(first, "\n") {
		if n := len([]rune(strings.TrimSuffix(l, "\033[K"))); n > 29 {
			t.Errorf("line of %d runes is wider than the terminal: %q", n, l)
		}
	}
	buf.Reset()
	r.Render()
	// The next frame first moves up one line and clears below.
	if !strings.HasPrefix(buf.String(), "\033[1A\r\033[J") {
		t.Errorf("second frame does not redraw in place: %q", buf.String())
	}
	buf.Reset()
	r.Stop()
	if !strings.HasSuffix(buf.String(), "\n") {
		t.Errorf("Stop does not end the last line: %q", buf.String())
	}
}

// Bars are set from download goroutines while the renderer draws them.
func TestRendererConcurrent(t *testing.T) {
	var buf syncBuffer
	r := NewRenderer(&buf, RenderOptions{Interval: time.Millisecond})
	var wg sync.WaitGroup
	for range 4 {
		b := NewBar("f", 10_000, 0)
		r.Add(b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range int64(10_000) {
				b.Set(v + 1)
				if v%1000 == 0 {
					b.SetStatus("s")
					r.Println("x")
				}
			}
			b.Finish("done")
		}()
	}
	wg.Wait()
	r.Stop()
	r.Stop()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestRecorder(t *testing.T) {
	var r Recorder
	for _, p := range []Progress{{Stage: Queued}, {Stage: Uploading, Percent: 1}, {Stage: SamplingHigh, Percent: 20, Step: 1, Steps: 6},
		{Stage: SamplingHigh, Percent: 30, Step: 2, Steps: 6}, {Stage: Delivering, Percent: 100}} {
		r.Add(p)
	}
	if got := r.List(); len(got) != 5 || got[3].Step != 2 {
		t.Fatalf("List = %+v", got)
	}
	want := []Stage{Queued, Uploading, SamplingHigh, Delivering}
	if got := r.Stages(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Stages = %v, want %v", got, want)
	}
}
