package supervisor

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
)

type emitted struct {
	line      string
	truncated bool
}

func collect(max int, chunks ...string) []emitted {
	var out []emitted
	w := newLineWriter(max, func(l string, tr bool) { out = append(out, emitted{l, tr}) })
	for _, c := range chunks {
		_, _ = w.Write([]byte(c))
	}
	w.Flush()
	return out
}

func TestLineWriter(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		chunks []string
		want   []emitted
	}{
		{"lines", 100, []string{"a\nbb\n"}, []emitted{{"a", false}, {"bb", false}}},
		{"split across writes", 100, []string{"he", "llo\nwor", "ld\n"}, []emitted{{"hello", false}, {"world", false}}},
		{"last line without newline", 100, []string{"a\nb"}, []emitted{{"a", false}, {"b", false}}},
		{"crlf", 100, []string{"a\r\nb\r", "\n"}, []emitted{{"a", false}, {"b", false}}},
		{"progress bar redrawn", 100, []string{"  0%|\r 50%|\r", "100%|\n"}, []emitted{{"100%|", false}}},
		{"empty lines kept", 100, []string{"\n\n"}, []emitted{{"", false}, {"", false}}},
		{"long line cut once", 4, []string{"abcdefghij\nxy\n"}, []emitted{{"abcd", true}, {"xy", false}}},
		{"long line across writes", 4, []string{"ab", "cdef", "gh", "\nz"}, []emitted{{"abcd", true}, {"z", false}}},
		{"exactly max", 4, []string{"abcd\n"}, []emitted{{"abcd", false}}},
		{"cut inside a rune", 4, []string{"abcé\n"}, []emitted{{"abc", true}}},
		{"invalid utf-8 replaced", 100, []string{"a\xffb\n"}, []emitted{{"a\uFFFDb", false}}},
		{"redraw after a cut line", 4, []string{"abcdefgh\rxy\n"}, []emitted{{"abcd", true}, {"xy", false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(tc.max, tc.chunks...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
		// Byte by byte must give the same lines.
		t.Run(tc.name+"/bytewise", func(t *testing.T) {
			in := strings.Join(tc.chunks, "")
			var chunks []string
			for i := 0; i < len(in); i++ {
				chunks = append(chunks, in[i:i+1])
			}
			if got := collect(tc.max, chunks...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLineWriterMemoryBounded(t *testing.T) {
	n := 0
	w := newLineWriter(1024, func(string, bool) { n++ })
	chunk := []byte(strings.Repeat("x", 64<<10))
	for i := 0; i < 160; i++ { // 10 MiB without a newline
		_, _ = w.Write(chunk)
		if cap(w.buf) > 2048 {
			t.Fatalf("buffer grew to %d bytes", cap(w.buf))
		}
	}
	if n != 1 {
		t.Errorf("emitted %d lines, want 1 (the cut head)", n)
	}
}

func TestTailBounds(t *testing.T) {
	tests := []struct {
		name               string
		maxLines, maxBytes int
		add                []string
		want               string
	}{
		{"keeps all", 3, 100, []string{"a", "b"}, "a\nb"},
		{"line count", 2, 100, []string{"a", "b", "c"}, "b\nc"},
		{"bytes", 10, 6, []string{"aa", "bb", "cc"}, "bb\ncc"},
		{"one huge line keeps its end", 10, 4, []string{"a", "123456"}, "3456"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTail(tc.maxLines, tc.maxBytes)
			for _, l := range tc.add {
				tl.add(l)
			}
			if got := tl.String(); got != tc.want {
				t.Errorf("tail %q, want %q", got, tc.want)
			}
		})
	}
}

// capture is a slog handler keeping level, message and the traceback attr.
type capture struct {
	mu   sync.Mutex
	recs []string
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "traceback" {
			s += " [" + strings.ReplaceAll(a.Value.String(), "\n", "|") + "]"
		}
		return true
	})
	c.mu.Lock()
	c.recs = append(c.recs, s)
	c.mu.Unlock()
	return nil
}

func TestLogSink(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"plain lines at info", []string{"Total VRAM 81559 MB", "", "Starting server"}, []string{"INFO Total VRAM 81559 MB", "INFO Starting server"}},
		{"levels by prefix", []string{"WARNING: something", "!!! Exception during processing !!! boom", "Failed to validate prompt"},
			[]string{"WARN WARNING: something", "ERROR !!! Exception during processing !!! boom", "ERROR Failed to validate prompt"}},
		{"traceback is one record", []string{"before", "Traceback (most recent call last):", `  File "x.py", line 1, in <module>`, "    boom()", "    ^^^^^^", "RuntimeError: boom", "after"},
			[]string{"INFO before", `ERROR RuntimeError: boom [Traceback (most recent call last):|  File "x.py", line 1, in <module>|    boom()|    ^^^^^^|RuntimeError: boom]`, "INFO after"}},
		{"chained tracebacks", []string{"Traceback (most recent call last):", "  a", "KeyError: 1", "", "During handling of the above exception, another exception occurred:", "", "Traceback (most recent call last):", "  b", "ValueError: 2"},
			[]string{"ERROR KeyError: 1 [Traceback (most recent call last):|  a|KeyError: 1]", "INFO During handling of the above exception, another exception occurred:", "ERROR ValueError: 2 [Traceback (most recent call last):|  b|ValueError: 2]"}},
		{"cut short by the end of output", []string{"Traceback (most recent call last):", "  File \"x.py\""},
			[]string{`ERROR   File "x.py" [Traceback (most recent call last):|  File "x.py"]`}},
		{"header only", []string{"Traceback (most recent call last):"}, []string{"ERROR Python traceback (cut short) [Traceback (most recent call last):]"}},
		{"bounded traceback", []string{"Traceback (most recent call last):", "  1", "  2", "  3", "  4", "E: x"},
			[]string{"ERROR   2 [Traceback (most recent call last):|  1|  2]", "INFO   3", "INFO   4", "INFO E: x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &capture{}
			maxTrace := 10
			if tc.name == "bounded traceback" {
				maxTrace = 3
			}
			s := &logSink{log: slog.New(c), tail: newTail(64, 16<<10), maxTrace: maxTrace}
			for _, l := range tc.lines {
				s.line(l, false)
			}
			s.flush()
			if !reflect.DeepEqual(c.recs, tc.want) {
				t.Errorf("records\n%q\nwant\n%q", c.recs, tc.want)
			}
			if got := s.tail.String(); got != strings.Join(tc.lines, "\n") {
				t.Errorf("tail %q", got)
			}
		})
	}
}

func TestLogSinkMarksTruncated(t *testing.T) {
	c := &capture{}
	s := &logSink{log: slog.New(c), tail: newTail(8, 1024), maxTrace: 10}
	s.line("abcd", true)
	if want := "abcd" + truncatedMark; s.tail.String() != want || c.recs[0] != "INFO "+want {
		t.Errorf("tail %q, record %q", s.tail.String(), c.recs)
	}
}

func TestFileWriterNeverFails(t *testing.T) {
	c := &capture{}
	f := &fileWriter{w: failingWriter{}, log: slog.New(c)}
	for i := 0; i < 3; i++ {
		if n, err := f.Write([]byte("abc")); n != 3 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if len(c.recs) != 1 {
		t.Errorf("%d warnings, want 1", len(c.recs))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errFull }

var errFull = &stringError{"no space left on device"}

type stringError struct{ s string }

func (e *stringError) Error() string { return e.s }

func BenchmarkLineWriter(b *testing.B) {
	data := []byte(strings.Repeat(strings.Repeat("x", 100)+"\n", 1000))
	w := newLineWriter(4096, func(string, bool) {})
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, _ = w.Write(data)
	}
}
