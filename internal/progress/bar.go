package progress

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// State is one line a Renderer draws. Its String is called from the
// renderer's goroutine, so implementations guard their own fields.
type State interface {
	String() string
}

// Milestoner is a State that tells a plain (not a terminal) renderer when
// its line is worth printing again: the renderer prints the line whenever
// Milestone returns something new. States without it print when their
// String changes.
type Milestoner interface {
	Milestone() string
}

// RenderOptions configures a Renderer.
type RenderOptions struct {
	// Plain writes whole lines, never cursor movements: the mode for a
	// writer that is not a terminal (a log file, CI).
	Plain bool
	// Interval is the time between frames; 0 means 100ms.
	Interval time.Duration
	// Width is the terminal's width in columns; longer lines are cut so
	// that they never wrap (a wrapped line would break the redraw). 0 means
	// no limit.
	Width int
}

// Renderer draws states on a writer from a ticker goroutine, as ollama's
// progress package does: on a terminal it redraws every line in place each
// tick; in plain mode it prints a state's line only when its milestone
// changes. Stop draws the last frame and is idempotent.
type Renderer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	plain  bool
	width  int
	states []State
	last   []string // plain mode: last milestone printed, per state
	drawn  int      // terminal mode: lines drawn by the last frame
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
}

// NewRenderer starts drawing on w. Call Stop when done.
func NewRenderer(w io.Writer, opts RenderOptions) *Renderer {
	interval := opts.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	r := &Renderer{w: bufio.NewWriter(w), plain: opts.Plain, width: opts.Width, done: make(chan struct{}), exited: make(chan struct{})}
	go r.loop(interval)
	return r
}

func (r *Renderer) loop(interval time.Duration) {
	defer close(r.exited)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			r.Render()
		}
	}
}

// Add appends a state below the others.
func (r *Renderer) Add(s State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, s)
	r.last = append(r.last, "")
}

// Println prints a message line above the states (a warning, a retry); on a
// terminal the states are redrawn below it.
func (r *Renderer) Println(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.plain {
		r.clearLocked()
	}
	r.w.WriteString(msg)
	r.w.WriteString("\n")
	if !r.plain {
		r.drawLocked()
	}
	r.w.Flush()
}

// Render draws one frame now. The ticker calls it; tests may too.
func (r *Renderer) Render() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.renderLocked()
}

func (r *Renderer) renderLocked() {
	if r.plain {
		for i, s := range r.states {
			m := milestone(s)
			if m == r.last[i] {
				continue
			}
			r.last[i] = m
			r.w.WriteString(s.String())
			r.w.WriteString("\n")
		}
	} else {
		r.clearLocked()
		r.drawLocked()
	}
	r.w.Flush()
}

func milestone(s State) string {
	if m, ok := s.(Milestoner); ok {
		return m.Milestone()
	}
	return s.String()
}

// clearLocked moves the cursor to the start of the first drawn line and
// erases everything below it.
func (r *Renderer) clearLocked() {
	if r.drawn == 0 {
		return
	}
	if r.drawn > 1 {
		fmt.Fprintf(r.w, "\033[%dA", r.drawn-1)
	}
	r.w.WriteString("\r\033[J")
	r.drawn = 0
}

// drawLocked writes every state, one per line, leaving the cursor at the end
// of the last one.
func (r *Renderer) drawLocked() {
	for i, s := range r.states {
		if i > 0 {
			r.w.WriteString("\n")
		}
		line := s.String()
		if r.width > 1 {
			line = cut(line, r.width-1)
		}
		r.w.WriteString(line)
		r.w.WriteString("\033[K")
	}
	r.drawn = len(r.states)
}

// Stop stops the ticker, draws the final frame and ends the last line. It
// reports whether this call stopped the renderer; later calls do nothing.
func (r *Renderer) Stop() bool {
	stopped := false
	r.once.Do(func() {
		close(r.done)
		<-r.exited
		r.mu.Lock()
		defer r.mu.Unlock()
		r.renderLocked()
		if !r.plain && r.drawn > 0 {
			r.w.WriteString("\n")
			r.drawn = 0
		}
		r.w.Flush()
		stopped = true
	})
	return stopped
}

// Bar is a progress bar over a byte count: name, percent, bar, done/total,
// rate and time left. The rate comes from up to ten one-second buckets, so
// it follows the recent speed; bytes present at the start (a resumed
// download) do not count towards it. Set may be called from any goroutine.
type Bar struct {
	mu       sync.Mutex
	name     string
	total    int64 // 0: unknown
	current  int64
	initial  int64
	started  time.Time
	stopped  time.Time
	buckets  []bucket
	status   string
	final    bool
	now      func() time.Time
	nameCols int
	barCols  int
}

type bucket struct {
	at    time.Time
	value int64
}

const (
	maxBuckets     = 10
	bucketInterval = time.Second
)

// NewBar returns a bar named name over total bytes (0 when unknown), of
// which initial are already done.
func NewBar(name string, total, initial int64) *Bar {
	return newBar(name, total, initial, time.Now)
}

func newBar(name string, total, initial int64, now func() time.Time) *Bar {
	return &Bar{name: name, total: total, current: initial, initial: initial, started: now(), now: now,
		nameCols: 32, barCols: 20}
}

// SetTotal changes the total (learnt from the server, for example).
func (b *Bar) SetTotal(total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
}

// Set records how many bytes are done. A value below the current one (a
// download restarted from zero) restarts the rate measurement.
func (b *Bar) Set(value int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if value < b.current {
		b.initial, b.started, b.buckets, b.stopped = value, now, nil, time.Time{}
	}
	if b.total > 0 && value > b.total {
		value = b.total
	}
	b.current = value
	if b.total > 0 && value >= b.total && b.stopped.IsZero() {
		b.stopped = now
	}
	if n := len(b.buckets); n == 0 || now.Sub(b.buckets[n-1].at) >= bucketInterval {
		b.buckets = append(b.buckets, bucket{at: now, value: value})
		if len(b.buckets) > maxBuckets {
			b.buckets = b.buckets[1:]
		}
	}
}

// SetStatus shows s in place of the rate and time left ("hashing",
// "retry 2: stalled"); "" goes back to them.
func (b *Bar) SetStatus(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = s
}

// Finish freezes the bar with a final status ("done", "failed: …").
func (b *Bar) Finish(status string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = status
	b.final = true
	if b.stopped.IsZero() {
		b.stopped = b.now()
	}
}

// Rate returns the recent speed in bytes per second.
func (b *Bar) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rateLocked()
}

func (b *Bar) rateLocked() float64 {
	var num int64
	var den time.Duration
	switch {
	case !b.stopped.IsZero():
		num, den = b.current-b.initial, b.stopped.Sub(b.started)
	case len(b.buckets) >= 2:
		first, last := b.buckets[0], b.buckets[len(b.buckets)-1]
		num, den = last.value-first.value, last.at.Sub(first.at)
	case len(b.buckets) == 1:
		num, den = b.buckets[0].value-b.initial, b.buckets[0].at.Sub(b.started)
	}
	if den < time.Second/10 || num <= 0 {
		return 0
	}
	return float64(num) / den.Seconds()
}

// percentLocked returns the percentage done, or -1 when the total is unknown.
func (b *Bar) percentLocked() int {
	if b.total <= 0 {
		return -1
	}
	p := int(b.current * 100 / b.total)
	return min(max(p, 0), 100)
}

// Milestone changes every ten percent and on every status change, so a
// plain renderer prints a handful of lines per file.
func (b *Bar) Milestone() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.percentLocked()
	if p >= 0 {
		p = p / 10 * 10
	}
	return fmt.Sprintf("%d|%s", p, b.status)
}

// String renders the bar on one line.
func (b *Bar) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	s.WriteString(fit(b.name, b.nameCols))
	s.WriteByte(' ')
	p := b.percentLocked()
	if p >= 0 {
		fmt.Fprintf(&s, "%3d%% ", p)
		filled := p * b.barCols / 100
		s.WriteString("▕")
		s.WriteString(strings.Repeat("█", filled))
		s.WriteString(strings.Repeat(" ", b.barCols-filled))
		s.WriteString("▏ ")
		fmt.Fprintf(&s, "%s/%s", Bytes(b.current), Bytes(b.total))
	} else {
		s.WriteString(Bytes(b.current))
	}
	switch {
	case b.status != "":
		s.WriteString("  ")
		s.WriteString(b.status)
	case !b.final:
		if r := b.rateLocked(); r > 0 {
			fmt.Fprintf(&s, "  %s/s", Bytes(int64(r)))
			if b.total > 0 && b.current < b.total {
				left := time.Duration(float64(b.total-b.current) / r * float64(time.Second))
				fmt.Fprintf(&s, "  %s", shortDuration(left))
			}
		}
	}
	return s.String()
}

// fit pads or cuts s to exactly n columns (runes), cutting in the middle so
// that both ends of a long file name stay visible.
func fit(s string, n int) string {
	l := utf8.RuneCountInString(s)
	if l <= n {
		return s + strings.Repeat(" ", n-l)
	}
	r := []rune(s)
	head := (n - 1) / 2
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// cut shortens s to at most n runes.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// Bytes formats a byte count with decimal units, as Hugging Face shows
// sizes: 999 B, 1.5 kB, 14.3 GB.
func Bytes(n int64) string {
	const unit = 1000
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB", "PB"} {
		f /= unit
		if math.Abs(f) < 999.95 || u == "PB" {
			if math.Abs(f) < 9.995 {
				return fmt.Sprintf("%.2f %s", f, u)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%d B", n) // not reached
}

func shortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 100*time.Hour:
		return ">99h"
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
