// Package doctor checks that the worker can run here and says how to fix
// what is wrong: configuration, ComfyUI, Python and torch, the GPU, the
// model files, custom nodes, ffmpeg, disk space, RunPod's variables, S3 and
// the local API's safety.
//
// Each check is a function of injected dependencies (Deps: a command runner,
// an HTTP client, a free-space function, a file system root), so tests cover
// every outcome without a GPU, ComfyUI or network.
package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/wan22-worker/wan22-worker/internal/config"
	"github.com/wan22-worker/wan22-worker/internal/models"
	"github.com/wan22-worker/wan22-worker/internal/startup"
)

// Status is the outcome of a check.
type Status string

// The outcomes, from good to bad.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	// Skip is a check not run because a check it depends on failed (Check.Needs).
	Skip Status = "skip"
)

// Mark is the one-character sign of a status: ✓, ! or ✗.
func (s Status) Mark() string {
	switch s {
	case Pass:
		return "✓"
	case Warn:
		return "!"
	case Skip:
		return "-"
	}
	return "✗"
}

// Result is one line of the report.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
}

func pass(name, detail string) Result { return Result{Name: name, Status: Pass, Detail: detail} }
func warn(name, detail, hint string) Result {
	return Result{Name: name, Status: Warn, Detail: detail, Hint: hint}
}
func fail(name, detail, hint string) Result {
	return Result{Name: name, Status: Fail, Detail: detail, Hint: hint}
}

// Report is the outcome of every check. Its JSON form is
// {"checks": [{name, status, detail, hint}], "ok": bool}, plus "config" (the
// redacted configuration) when asked for.
type Report struct {
	Checks []Result       `json:"checks"`
	OK     bool           `json:"ok"`
	Config []config.Entry `json:"config,omitempty"`
	// Startup is the start-up timeline of the worker last started on this machine (Deps.StartupFile).
	Startup *startup.Report `json:"startup,omitempty"`
}

// Runner runs a program to completion and returns what it wrote. A program
// that cannot be found returns an error matching exec.ErrNotFound.
type Runner func(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)

// ExecRunner runs programs with os/exec.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	var out, errb strings.Builder
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return []byte(out.String()), []byte(errb.String()), err
}

// Deps is what the checks use to look at the machine.
type Deps struct {
	// Config is the loaded configuration; ConfigErr the error of loading it
	// (then Config holds the defaults, so that other checks still run).
	Config    *config.Config
	ConfigErr error
	// Manifest is the model manifest; nil means models.DefaultManifest().
	Manifest models.Manifest
	// Run runs programs (nvidia-smi, Python, ffmpeg); nil means ExecRunner.
	Run Runner
	// LookPath finds programs; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// HTTP talks to ComfyUI; nil means a client with no proxy.
	HTTP *http.Client
	// FreeSpace reports free disk space; nil means models.FreeSpace.
	FreeSpace models.SpaceFunc
	// Root is prefixed to every file path the checks read (tests point it
	// at a temporary directory); "" is the real root.
	Root string
	// TempDir is the work directory whose free space is checked; "" means
	// os.TempDir().
	TempDir string
	// Timeout bounds each command and request; 0 means 10s (60s for
	// importing torch, which is slow on a cold disk).
	Timeout time.Duration
	// StartupFile is where the worker keeps its start-up timeline; "" means startup.DefaultFile(). Read
	// under Root.
	StartupFile string
}

func (d *Deps) withDefaults() *Deps {
	c := *d
	if c.Config == nil {
		c.Config = config.Default()
	}
	if c.Manifest == nil {
		c.Manifest = models.DefaultManifest()
	}
	if c.Run == nil {
		c.Run = ExecRunner
	}
	if c.LookPath == nil {
		c.LookPath = exec.LookPath
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Transport: &http.Transport{Proxy: nil}}
	}
	if c.FreeSpace == nil {
		c.FreeSpace = models.FreeSpace
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.StartupFile == "" {
		c.StartupFile = startup.DefaultFile()
	}
	return &c
}

// path maps a path of the machine under Root.
func (d *Deps) path(p string) string {
	if d.Root == "" {
		return p
	}
	return filepath.Join(d.Root, p)
}

// Check is one named check; it may report several results (one per model
// file, for example).
type Check struct {
	Name string
	Run  func(ctx context.Context, d *Deps) []Result
	// Needs names earlier checks this one depends on: when one of them failed, this check is not run and
	// reports one Skip result saying which, instead of repeating that failure in its own words.
	Needs []string
}

// Run runs the checks in order and collects their results. OK is false when
// any result fails; warnings do not make it false.
func Run(ctx context.Context, d *Deps, checks []Check) Report {
	dd := d.withDefaults()
	rep := Report{OK: true, Checks: []Result{}}
	if r, err := startup.Read(dd.path(dd.StartupFile)); err == nil {
		rep.Startup = &r
	}
	failed := map[string]bool{}
	for _, c := range checks {
		if ctx.Err() != nil {
			rep.Checks = append(rep.Checks, fail(c.Name, "not run: "+ctx.Err().Error(), ""))
			rep.OK = false
			failed[c.Name] = true
			continue
		}
		var blockers []string
		for _, n := range c.Needs {
			if failed[n] {
				blockers = append(blockers, n)
			}
		}
		if len(blockers) > 0 {
			failed[c.Name] = true // and so are the checks that need this one
			rep.Checks = append(rep.Checks, Result{Name: c.Name, Status: Skip,
				Detail: "not checked: it depends on the " + strings.Join(blockers, " and ") + " check, which failed",
				Hint:   "fix the " + strings.Join(blockers, " and ") + " check first"})
			continue
		}
		for _, r := range c.Run(ctx, dd) {
			if r.Name == "" {
				r.Name = c.Name
			}
			if r.Status == Fail {
				rep.OK = false
				failed[c.Name] = true
			}
			rep.Checks = append(rep.Checks, r)
		}
	}
	return rep
}

// nameCols is the width of the name column; longer names put their detail
// on the next line.
const nameCols = 18

// WriteText writes the report as a table: mark, name, detail, and the hint
// below each warning or failure, then a summary line. When Config is set
// (verbose), the redacted configuration comes first.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if len(r.Config) > 0 {
		b.WriteString("Configuration (secrets redacted):\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, e := range r.Config {
			fmt.Fprintf(tw, "  %s\t%s\t(%s)\n", e.Name, e.Value, e.Source)
		}
		tw.Flush()
		b.WriteString("\n")
	}
	var passed, warned, failed, skipped int
	indent := strings.Repeat(" ", nameCols+3)
	for _, c := range r.Checks {
		switch c.Status {
		case Pass:
			passed++
		case Warn:
			warned++
		case Skip:
			skipped++
		default:
			failed++
		}
		if n := utf8.RuneCountInString(c.Name); n <= nameCols {
			fmt.Fprintf(&b, "%s %s%s %s\n", c.Status.Mark(), c.Name, strings.Repeat(" ", nameCols-n), oneLine(c.Detail))
		} else {
			fmt.Fprintf(&b, "%s %s\n%s%s\n", c.Status.Mark(), c.Name, indent, oneLine(c.Detail))
		}
		if c.Hint != "" && c.Status != Pass {
			fmt.Fprintf(&b, "%s→ %s\n", indent, oneLine(c.Hint))
		}
	}
	verdict := "ready"
	if failed > 0 {
		verdict = "NOT ready: fix the ✗ lines"
	}
	skippedText := ""
	if skipped > 0 {
		skippedText = fmt.Sprintf("%d skipped, ", skipped)
	}
	fmt.Fprintf(&b, "\n%d passed, %d warning%s, %s%d failed: %s\n", passed, warned, plural(warned), skippedText, failed, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// oneLine keeps a detail on one line: tabs and newlines would break the
// table.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\t", " ")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// errText is an error's text on one line, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return oneLine(err.Error())
}

// notFound reports whether err says a program does not exist.
func notFound(err error) bool {
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist)
}
