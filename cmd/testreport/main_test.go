package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// stream builds a go test -json stream from events.
func stream(t *testing.T, events ...event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range events {
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestReport(t *testing.T) {
	const a, b, c = "example.com/m/a", "example.com/m/b", "example.com/m/c"
	tests := []struct {
		name    string
		in      string
		code    int
		want    []string // in this order
		notWant []string
	}{
		{
			name: "results as packages finish, failures in full",
			in: stream(t,
				event{Action: "start", Package: a},
				event{Action: "start", Package: b},
				event{Action: "run", Package: a, Test: "TestSlow"},
				event{Action: "run", Package: b, Test: "TestFast"},
				event{Action: "output", Package: b, Test: "TestFast", Output: "=== RUN   TestFast\n"},
				event{Action: "pass", Package: b, Test: "TestFast"},
				event{Action: "output", Package: b, Output: "PASS\n"},
				event{Action: "output", Package: b, Output: "ok  \texample.com/m/b\t0.01s\n"},
				event{Action: "pass", Package: b},
				event{Action: "output", Package: a, Test: "TestSlow", Output: "    a_test.go:9: got 1, want 2\n"},
				event{Action: "output", Package: a, Test: "TestSlow", Output: "--- FAIL: TestSlow (9.00s)\n"},
				event{Action: "fail", Package: a, Test: "TestSlow"},
				event{Action: "run", Package: a, Test: "TestSkipped"},
				event{Action: "skip", Package: a, Test: "TestSkipped"},
				event{Action: "output", Package: a, Output: "FAIL\n"},
				event{Action: "output", Package: a, Output: "FAIL\texample.com/m/a\t9.01s\n"},
				event{Action: "fail", Package: a},
				event{Action: "output", Package: c, Output: "?   \texample.com/m/c\t[no test files]\n"},
				event{Action: "skip", Package: c},
			),
			code: 1,
			want: []string{"ok  \texample.com/m/b\t0.01s\n", "a_test.go:9: got 1, want 2", "--- FAIL: TestSlow", "FAIL\texample.com/m/a\t9.01s\n",
				"?   \texample.com/m/c\t[no test files]\n", "tests: 1 passed, 1 failed, 1 skipped\n"},
			notWant: []string{"=== RUN", "PASS\n"},
		},
		{
			name: "all pass",
			in: stream(t,
				event{Action: "run", Package: a, Test: "TestA"},
				event{Action: "pass", Package: a, Test: "TestA"},
				event{Action: "output", Package: a, Output: "ok  \texample.com/m/a\t0.01s\n"},
				event{Action: "pass", Package: a},
			),
			want: []string{"ok  \texample.com/m/a", "tests: 1 passed, 0 failed, 0 skipped\n"},
		},
		{
			name: "build failure",
			in: stream(t,
				event{Action: "build-output", ImportPath: a + " [" + a + ".test]", Output: "a/a.go:3:1: syntax error\n"},
				event{Action: "build-fail", ImportPath: a + " [" + a + ".test]"},
				event{Action: "output", Package: a, Output: "FAIL\texample.com/m/a [build failed]\n"},
				event{Action: "fail", Package: a},
			),
			code: 1,
			want: []string{"a/a.go:3:1: syntax error", "FAIL\texample.com/m/a [build failed]", "tests: 0 passed, 0 failed, 0 skipped\n"},
		},
		{
			name: "stream cut short",
			in: stream(t,
				event{Action: "run", Package: a, Test: "TestA"},
				event{Action: "output", Package: a, Output: "panic: boom\n"},
			),
			code: 1,
			want: []string{"panic: boom", "FAIL\texample.com/m/a (no result", "tests: 0 passed, 0 failed, 0 skipped\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := report(strings.NewReader(tc.in), &out); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			got := out.String()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Fatalf("output lacks %q after offset %d:\n%s", w, at, got)
				}
				at += i + len(w)
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%s", w, got)
				}
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "tests: ") {
				t.Errorf("last line %q", last)
			}
		})
	}
}
