package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/logging"
)

func TestFormatFor(t *testing.T) {
	tests := []struct {
		format, endpoint string
		want             logging.Format
	}{
		{"auto", "", logging.Text},
		{"auto", "ep123", logging.JSON},
		{"json", "", logging.JSON},
		{"text", "ep123", logging.Text},
	}
	for _, tc := range tests {
		c := config.Default()
		c.LogFormat, c.RunPodEndpointID = tc.format, tc.endpoint
		if got := logging.FormatFor(c); got != tc.want {
			t.Errorf("LOG_FORMAT=%s endpoint=%q: got %s, want %s", tc.format, tc.endpoint, got, tc.want)
		}
	}
}

func TestLevel(t *testing.T) {
	tests := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "WARN": slog.LevelWarn,
		"error": slog.LevelError, "": slog.LevelInfo}
	for in, want := range tests {
		if got := logging.Level(in); got != want {
			t.Errorf("Level(%q) = %v, want %v", in, got, want)
		}
	}
}

func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestJSONShape(t *testing.T) {
	var buf bytes.Buffer
	c := config.Default()
	c.RunPodEndpointID = "ep"
	c.LogLevel = "debug"
	log := logging.New(&buf, c)

	log.Info("worker ready", "pod", "p1")
	logging.WithJob(log, "job-1").Warn("job slow")
	log.Debug("with explicit id", logging.RequestIDKey, "job-2")
	log.WithGroup("http").Error("grouped", "status", 500)

	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), buf.String())
	}
	tests := []struct {
		message, level string
		requestID      any
	}{
		{"worker ready", "INFO", nil},
		{"job slow", "WARN", "job-1"},
		{"with explicit id", "DEBUG", "job-2"},
		{"grouped", "ERROR", nil},
	}
	for i, tc := range tests {
		m := lines[i]
		if m["message"] != tc.message || m["level"] != tc.level {
			t.Errorf("line %d: message=%v level=%v, want %q %q", i, m["message"], m["level"], tc.message, tc.level)
		}
		rid, ok := m["requestId"]
		if !ok {
			t.Errorf("line %d: no requestId key: %v", i, m)
		}
		if rid != tc.requestID {
			t.Errorf("line %d: requestId=%v, want %v", i, rid, tc.requestID)
		}
		if _, ok := m["msg"]; ok {
			t.Errorf("line %d: has slog's msg key as well: %v", i, m)
		}
	}
	if lines[0]["pod"] != "p1" {
		t.Errorf("attributes lost: %v", lines[0])
	}
	if g, _ := lines[3]["http"].(map[string]any); g["status"] != float64(500) {
		t.Errorf("grouped attribute lost: %v", lines[3])
	}
}

func TestLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	c := config.Default()
	c.LogFormat, c.LogLevel = "json", "warn"
	log := logging.New(&buf, c)
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown") {
		t.Errorf("level filter wrong: %s", buf.String())
	}
}

func TestLongMessageCutInTheMiddle(t *testing.T) {
	for _, f := range []logging.Format{logging.JSON, logging.Text} {
		var buf bytes.Buffer
		log := logging.NewWith(&buf, f, slog.LevelInfo)
		msg := "BEGIN" + strings.Repeat("x", 10000) + "END"
		log.Info(msg)
		out := buf.String()
		if !strings.Contains(out, "BEGIN") || !strings.Contains(out, "END") || !strings.Contains(out, " ... ") {
			t.Errorf("%s: message not cut in the middle", f)
		}
		if len(out) > logging.MaxMessage+200 {
			t.Errorf("%s: line is %d bytes", f, len(out))
		}
	}
}

func TestTextFormat(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, config.Default())
	logging.WithJob(log, "abc").Info("hello")
	out := buf.String()
	if !strings.Contains(out, "msg=hello") || !strings.Contains(out, "requestId=abc") {
		t.Errorf("text line: %q", out)
	}
}
