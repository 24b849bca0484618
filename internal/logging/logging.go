// Package logging builds the worker's *slog.Logger from the configuration.
//
// Under RunPod (RUNPOD_ENDPOINT_ID set, LOG_FORMAT=auto) every line is a JSON
// object in the shape RunPod's own SDK writes, {"requestId": <job id|null>,
// "message": "...", "level": "INFO"}, plus the record's attributes; the
// console's per-request filter keys on requestId. Elsewhere lines are text.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/wan22-worker/wan22-worker/internal/config"
)

// RequestIDKey is the attribute that carries the job id, the name RunPod's
// SDK uses for it.
const RequestIDKey = "requestId"

// MaxMessage is the longest message written; longer ones are cut in the
// middle, as RunPod's SDK does.
const MaxMessage = 4096

// Format is the line format.
type Format string

// The formats.
const (
	JSON Format = "json"
	Text Format = "text"
)

// FormatFor resolves LOG_FORMAT: auto means JSON lines when the worker runs
// on a RunPod endpoint (RUNPOD_ENDPOINT_ID set), text otherwise.
func FormatFor(c *config.Config) Format {
	switch c.LogFormat {
	case "json":
		return JSON
	case "text":
		return Text
	}
	if c.RunPodEndpointID != "" {
		return JSON
	}
	return Text
}

// Level parses LOG_LEVEL (debug, info, warn, error); anything else is info.
func Level(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// New returns the logger the configuration asks for, writing to w.
func New(w io.Writer, c *config.Config) *slog.Logger {
	return NewWith(w, FormatFor(c), Level(c.LogLevel))
}

// NewWith returns a logger with an explicit format and level.
func NewWith(w io.Writer, f Format, level slog.Level) *slog.Logger {
	if f == JSON {
		h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: runpodKeys})
		return slog.New(&requestIDHandler{Handler: h})
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: truncateMessage})
	return slog.New(h)
}

// WithJob returns a logger whose lines carry the job id as requestId.
func WithJob(log *slog.Logger, jobID string) *slog.Logger {
	return log.With(RequestIDKey, jobID)
}

// Discard returns a logger that writes nothing.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// runpodKeys renames the built-in keys to RunPod's: msg → message; level
// keeps slog's names, which are RunPod's (DEBUG, INFO, WARN, ERROR).
func runpodKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	if a.Key == slog.MessageKey {
		a.Key = "message"
		a.Value = slog.StringValue(shorten(a.Value.String()))
	}
	return a
}

func truncateMessage(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.MessageKey {
		a.Value = slog.StringValue(shorten(a.Value.String()))
	}
	return a
}

// shorten cuts s in the middle to at most MaxMessage bytes.
func shorten(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	const mark = " ... "
	half := (MaxMessage - len(mark)) / 2
	return s[:half] + mark + s[len(s)-half:]
}

// requestIDHandler adds "requestId": null to lines that carry no job id, so
// every JSON line has the key RunPod's console filters on.
type requestIDHandler struct {
	slog.Handler
	has     bool // a requestId attribute was added with WithAttrs
	grouped bool // a group is open: attributes no longer land at the top
}

func (h *requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.has && !h.grouped {
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == RequestIDKey {
				found = true
				return false
			}
			return true
		})
		if !found {
			r = r.Clone()
			r.AddAttrs(slog.Any(RequestIDKey, nil))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.has
	if !h.grouped {
		for _, a := range attrs {
			if a.Key == RequestIDKey {
				has = true
			}
		}
	}
	return &requestIDHandler{Handler: h.Handler.WithAttrs(attrs), has: has, grouped: h.grouped}
}

func (h *requestIDHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	// Lines inside a group put attributes under it; add the null requestId
	// before the group opens so it stays at the top level.
	inner := h.Handler
	if !h.has && !h.grouped {
		inner = inner.WithAttrs([]slog.Attr{slog.Any(RequestIDKey, nil)})
	}
	return &requestIDHandler{Handler: inner.WithGroup(name), has: true, grouped: true}
}
