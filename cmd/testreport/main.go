// Command testreport turns the event stream of `go test -json` into go
// test's usual per-package lines (ok, FAIL, "no test files"), printed as
// each package finishes rather than in package order, with the full output
// of failing tests and packages, and a last line
//
//	tests: N passed, N failed, N skipped
//
// It exits 1 when any test or package failed (or the stream is not
// go test's), so that `set -o pipefail; go test -json ./... | testreport`
// fails like go test does.
//
//	go test -json -race -count=1 ./... | go run ./cmd/testreport
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(report(os.Stdin, os.Stdout))
}

// event is one line of `go test -json` (test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output / build-fail events
}

// pkgState is what is kept of a package until it finishes.
type pkgState struct {
	output []string            // package-level output lines
	tests  map[string][]string // output of each running test
	failed []string            // output of failed tests, in order
}

func report(in io.Reader, out io.Writer) int {
	var passed, failed, skipped, badPkgs int
	pkgs := map[string]*pkgState{}
	builds := map[string][]string{} // build output by import path
	get := func(p string) *pkgState {
		s := pkgs[p]
		if s == nil {
			s = &pkgState{tests: map[string][]string{}}
			pkgs[p] = s
		}
		return s
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, string(line)) // not an event (e.g. a build error on stderr merged in)
			continue
		}
		switch {
		case e.Action == "build-output":
			builds[e.ImportPath] = append(builds[e.ImportPath], e.Output)
		case e.Action == "build-fail":
			fmt.Fprint(out, strings.Join(builds[e.ImportPath], ""))
			delete(builds, e.ImportPath)
		case e.Test != "":
			s := get(e.Package)
			switch e.Action {
			case "output":
				s.tests[e.Test] = append(s.tests[e.Test], e.Output)
			case "pass":
				passed++
				delete(s.tests, e.Test)
			case "skip":
				skipped++
				delete(s.tests, e.Test)
			case "fail":
				failed++
				s.failed = append(s.failed, s.tests[e.Test]...)
				delete(s.tests, e.Test)
			}
		default:
			s := get(e.Package)
			switch e.Action {
			case "output":
				s.output = append(s.output, e.Output)
			case "pass", "skip":
				// Only go test's own summary line, as without -json ("PASS"
				// and the like are -v output).
				for _, l := range s.output {
					if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "?") {
						fmt.Fprint(out, l)
					}
				}
				delete(pkgs, e.Package)
			case "fail":
				badPkgs++
				fmt.Fprint(out, strings.Join(s.failed, ""))
				for _, lines := range s.tests { // tests that never ended (a panic, a timeout)
					fmt.Fprint(out, strings.Join(lines, ""))
				}
				fmt.Fprint(out, strings.Join(s.output, ""))
				delete(pkgs, e.Package)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testreport: reading go test's output:", err)
		badPkgs++
	}
	for p, s := range pkgs { // the stream ended before these finished
		badPkgs++
		fmt.Fprint(out, strings.Join(s.output, ""))
		fmt.Fprintf(out, "FAIL\t%s (no result: the run ended early)\n", p)
	}
	fmt.Fprintf(out, "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || badPkgs > 0 {
		return 1
	}
	return 0
}
