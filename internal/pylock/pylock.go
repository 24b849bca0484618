// Package pylock reads a hashed pip requirements lock (the format `uv pip compile --generate-hashes` and
// pip-compile write) and compares it with the packages installed in a Python environment.
package pylock

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Pin is one locked package.
type Pin struct {
	Name    string   // normalized (PEP 503): lower case, runs of -_. as one -
	Version string   // exact version
	Hashes  []string // "sha256:<hex>", one per file of that version
	Line    int      // 1-based line of the requirement
}

// LineError is a lock line that is not an exact, hashed pin.
type LineError struct {
	Line int
	Text string
	Why  string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s: %s", e.Line, e.Why, e.Text) }

var (
	pinRE  = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([A-Za-z0-9.+!_-]+)\s*(;.*)?$`)
	hashRE = regexp.MustCompile(`^--hash=(sha256:[0-9a-f]{64})$`)
	normRE = regexp.MustCompile(`[-_.]+`)
)

// Normalize returns the PEP 503 normalized form of a package name.
func Normalize(name string) string {
	return normRE.ReplaceAllString(strings.ToLower(strings.TrimSpace(name)), "-")
}

// Parse reads a lock. Every requirement must be pinned with == and carry at least one sha256 hash; the lines
// that are not are returned as LineErrors, all of them, next to the pins that parsed.
func Parse(data []byte) ([]Pin, []error) {
	var pins []Pin
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	lineNo, start := 0, 0
	var logical strings.Builder
	flush := func() {
		text := strings.TrimSpace(logical.String())
		logical.Reset()
		if text == "" {
			return
		}
		fields := strings.Fields(text)
		req := []string{}
		var hashes []string
		for _, f := range fields {
			if m := hashRE.FindStringSubmatch(f); m != nil {
				hashes = append(hashes, m[1])
				continue
			}
			if strings.HasPrefix(f, "--hash") {
				errs = append(errs, &LineError{start, text, "a hash that is not --hash=sha256:<64 hex>"})
				return
			}
			req = append(req, f)
		}
		spec := strings.Join(req, " ")
		if strings.HasPrefix(spec, "-") {
			errs = append(errs, &LineError{start, text, "an option in a lock (only pins are allowed)"})
			return
		}
		m := pinRE.FindStringSubmatch(spec)
		switch {
		case m == nil:
			errs = append(errs, &LineError{start, text, "not pinned to one exact version (name==version)"})
		case len(hashes) == 0:
			errs = append(errs, &LineError{start, text, "no --hash"})
		default:
			pins = append(pins, Pin{Name: Normalize(m[1]), Version: m[3], Hashes: hashes, Line: start})
		}
	}
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
		}
		if logical.Len() == 0 {
			start = lineNo
		}
		trimmed := strings.TrimRight(line, " \t")
		if strings.HasSuffix(trimmed, "\\") {
			logical.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		logical.WriteString(trimmed)
		flush()
	}
	flush()
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return pins, errs
}

// Difference is one package whose installed version is not the locked one. An empty Locked means installed
// but not in the lock; an empty Installed means locked but not installed.
type Difference struct {
	Name      string `json:"name"`
	Locked    string `json:"locked,omitempty"`
	Installed string `json:"installed,omitempty"`
}

func (d Difference) String() string {
	switch {
	case d.Locked == "":
		return d.Name + " " + d.Installed + " (not in the lock)"
	case d.Installed == "":
		return d.Name + " (locked " + d.Locked + ", not installed)"
	default:
		return d.Name + " " + d.Installed + " (locked " + d.Locked + ")"
	}
}

// installerPackages are the installer's own packages, which a lock does not list.
var installerPackages = map[string]bool{"pip": true, "wheel": true, "uv": true}

// Compare returns the differences between the lock and the installed packages (name → version; names are
// normalized here), sorted by name. A local version label (torch 2.8.0+cu128) matches its public version.
func Compare(pins []Pin, installed map[string]string) []Difference {
	have := make(map[string]string, len(installed))
	for n, v := range installed {
		have[Normalize(n)] = v
	}
	var diffs []Difference
	locked := make(map[string]bool, len(pins))
	for _, p := range pins {
		locked[p.Name] = true
		v, ok := have[p.Name]
		switch {
		case !ok:
			diffs = append(diffs, Difference{Name: p.Name, Locked: p.Version})
		case v != p.Version && strings.SplitN(v, "+", 2)[0] != p.Version:
			diffs = append(diffs, Difference{Name: p.Name, Locked: p.Version, Installed: v})
		}
	}
	for n, v := range have {
		if !locked[n] && !installerPackages[n] {
			diffs = append(diffs, Difference{Name: n, Installed: v})
		}
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].Name < diffs[j].Name })
	return diffs
}

// Version returns the locked version of name, or "".
func Version(pins []Pin, name string) string {
	name = Normalize(name)
	for _, p := range pins {
		if p.Name == name {
			return p.Version
		}
	}
	return ""
}
