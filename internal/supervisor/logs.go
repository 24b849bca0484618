package supervisor

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"
)

// ComfyUI's output goes through a chain of writers (one pipe carries both
// stdout and stderr, so their order is kept):
//
//	pipe ─► fileWriter (the raw bytes, to COMFY_LOG_FILE)
//	     └► lineWriter (bounded lines, carriage returns as a terminal shows them)
//	          ─► logSink (tail of the last lines + slog records tagged component=comfyui,
//	                      a Python traceback as one error record)
//
// None of them ever returns an error: a failing log file must not stop the
// pipe from being drained, or ComfyUI would block on a full pipe.

// truncatedMark ends a line that was cut at the line length limit.
const truncatedMark = " …[line truncated]"

// lineWriter splits a byte stream into lines of at most max bytes. A longer
// line is cut: its head is emitted with truncated set and the rest dropped
// up to the next newline. A lone carriage return starts the line over, as
// on a terminal, so a progress bar redrawn in place yields its final state
// rather than every redraw. Memory is bounded by max.
type lineWriter struct {
	max      int
	buf      []byte
	skipping bool // the current line was cut; drop bytes until '\n'
	cr       bool // the last byte seen was a '\r'
	emit     func(line string, truncated bool)
}

func newLineWriter(max int, emit func(string, bool)) *lineWriter {
	return &lineWriter{max: max, buf: make([]byte, 0, 256), emit: emit}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if w.cr {
			w.cr = false
			if p[0] != '\n' { // "\r" not followed by "\n": redraw in place
				w.buf, w.skipping = w.buf[:0], false
			}
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		if p[i] == '\n' {
			w.end()
		} else {
			w.cr = true
		}
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) add(b []byte) {
	if w.skipping || len(b) == 0 {
		return
	}
	if room := w.max - len(w.buf); len(b) > room {
		w.buf = append(w.buf, b[:room]...)
		w.emit(validUTF8(w.buf, true), true)
		w.buf, w.skipping = w.buf[:0], true
		return
	}
	w.buf = append(w.buf, b...)
}

func (w *lineWriter) end() {
	if !w.skipping {
		w.emit(validUTF8(w.buf, false), false)
	}
	w.buf, w.skipping = w.buf[:0], false
}

// Flush emits a last line that has no newline.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 && !w.skipping {
		w.emit(validUTF8(w.buf, false), false)
	}
	w.buf, w.skipping, w.cr = w.buf[:0], false, false
}

// validUTF8 turns a line into a string, dropping a rune split by a cut.
func validUTF8(b []byte, cut bool) string {
	if cut {
		for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
			r, size := utf8.DecodeLastRune(b)
			if r != utf8.RuneError || size != 1 {
				break
			}
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// tail keeps the last lines of output, bounded in count and bytes.
type tail struct {
	mu       sync.Mutex
	lines    []string
	size     int
	maxLines int
	maxBytes int
}

func newTail(maxLines, maxBytes int) *tail {
	return &tail{maxLines: maxLines, maxBytes: maxBytes}
}

func (t *tail) add(line string) {
	if len(line) > t.maxBytes {
		line = line[len(line)-t.maxBytes:]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	t.size += len(line) + 1
	for len(t.lines) > t.maxLines || (t.size > t.maxBytes && len(t.lines) > 1) {
		t.size -= len(t.lines[0]) + 1
		t.lines[0] = ""
		t.lines = t.lines[1:]
	}
}

// String returns the kept lines, one per line.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// logSink receives ComfyUI's lines: it keeps the tail and logs each line with
// the worker's logger. A Python traceback ("Traceback (most recent call
// last):" up to the exception line) is logged as one error record whose
// message is the exception line, with the whole traceback as an attribute.
type logSink struct {
	log      *slog.Logger
	tail     *tail
	maxTrace int      // lines kept in one traceback record
	trace    []string // the traceback being collected, nil when none
}

const tracebackHeader = "Traceback (most recent call last):"

func (s *logSink) line(l string, truncated bool) {
	if truncated {
		l += truncatedMark
	}
	s.tail.add(l)
	if s.trace != nil {
		s.trace = append(s.trace, l)
		indented := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		if (!indented && l != "") || len(s.trace) >= s.maxTrace {
			s.flush()
		}
		return
	}
	if strings.HasPrefix(l, tracebackHeader) {
		s.trace = []string{l}
		return
	}
	if strings.TrimSpace(l) == "" {
		return
	}
	s.log.Log(context.Background(), levelOf(l), l)
}

// flush logs a collected traceback (also one cut short by the end of output).
func (s *logSink) flush() {
	if s.trace == nil {
		return
	}
	msg := s.trace[len(s.trace)-1]
	if len(s.trace) == 1 {
		msg = "Python traceback (cut short)"
	}
	s.log.Error(msg, "traceback", strings.Join(s.trace, "\n"))
	s.trace = nil
}

// levelOf guesses a line's level. ComfyUI logs bare messages (format
// "%(message)s"), so only well-known prefixes are recognised.
func levelOf(l string) slog.Level {
	t := strings.TrimSpace(l)
	for _, p := range []string{"ERROR", "Error", "CRITICAL", "!!! Exception", "Exception", "Failed", "FATAL", "RuntimeError", "torch.OutOfMemoryError"} {
		if strings.HasPrefix(t, p) {
			return slog.LevelError
		}
	}
	for _, p := range []string{"WARNING", "Warning", "WARN", "warning:"} {
		if strings.HasPrefix(t, p) {
			return slog.LevelWarn
		}
	}
	return slog.LevelInfo
}

// fileWriter writes to the log file and never fails: after the first error
// it warns once and drops further output.
type fileWriter struct {
	mu     sync.Mutex
	w      io.Writer
	log    *slog.Logger
	failed bool
}

func (f *fileWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.w == nil || f.failed {
		return len(p), nil
	}
	if _, err := f.w.Write(p); err != nil {
		f.failed = true
		f.log.Warn("ComfyUI log file write failed; its output still goes to this log", "err", err)
	}
	return len(p), nil
}
