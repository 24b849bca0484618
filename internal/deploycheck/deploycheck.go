// Package deploycheck checks the deployment files statically, without Docker or
// a GPU: the Dockerfile (pinned base images, pinned pip installs, git sources
// pinned to a commit, ARG defaults), docker-compose.yml (parses, reserves a
// GPU) and the RunPod Hub files (.runpod/hub.json and .runpod/tests.json,
// against the Hub's schema and the worker's own settings table).
//
// Each Check function returns the problems it found as Findings; a file that
// cannot be read as its format at all is an error. The package's tests run
// every check on the repository's real files, so `make test` fails when a
// deployment file drifts.
package deploycheck

import (
	"fmt"
	"sort"
)

// Finding is one problem in a deployment file.
type Finding struct {
	File    string // the file's name as given to the check
	Line    int    // 1-based line, 0 when not known
	Rule    string // short rule id, e.g. "from-digest"
	Message string // what is wrong and what to do
}

// String formats the finding as file:line: [rule] message.
func (f Finding) String() string {
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d: [%s] %s", f.File, f.Line, f.Rule, f.Message)
	}
	return fmt.Sprintf("%s: [%s] %s", f.File, f.Rule, f.Message)
}

// findings collects Findings for one file.
type findings struct {
	file string
	list []Finding
}

func (fs *findings) add(line int, rule, format string, args ...any) {
	fs.list = append(fs.list, Finding{File: fs.file, Line: line, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// sorted returns the findings ordered by line, then rule.
func (fs *findings) sorted() []Finding {
	sort.SliceStable(fs.list, func(i, j int) bool {
		if fs.list[i].Line != fs.list[j].Line {
			return fs.list[i].Line < fs.list[j].Line
		}
		return fs.list[i].Rule < fs.list[j].Rule
	})
	return fs.list
}
