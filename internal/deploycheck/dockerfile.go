package deploycheck

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Dockerfile is what the checks read from a Dockerfile: its global ARGs and its
// stages, with every ARG, ENV and LABEL value expanded the way BuildKit does
// (ARG defaults, quotes removed).
type Dockerfile struct {
	GlobalArgs map[string]string // ARGs before the first FROM, with their defaults
	Stages     []*Stage
}

// Stage is one FROM ... [AS name] section.
type Stage struct {
	Name       string            // the AS name, "" when unnamed
	Image      string            // the base image after ARG expansion
	Line       int               // the FROM's line
	Args       map[string]string // ARGs declared in the stage, with their values
	Env        map[string]string // ENV set in the stage
	Labels     map[string]string // LABELs set in the stage
	Shell      []string          // the SHELL in force at the end of the stage
	Runs       []Script          // the RUN instructions, in order
	Copies     []Copy            // the COPY and ADD instructions, in order
	Entrypoint []string          // exec-form ENTRYPOINT, nil if none
	Cmd        []string          // exec-form CMD, nil if none
}

// Script is one RUN instruction as the shell receives it.
type Script struct {
	Line  int      // the RUN's first line
	Shell []string // the SHELL in force, e.g. [/bin/sh -c]
	Text  string   // the command text (shell form), or the exec-form argv joined by spaces
	Exec  []string // the exec-form argv; nil for the shell form
	env   map[string]string
}

// Copy is one COPY or ADD instruction.
type Copy struct {
	Line  int
	Add   bool     // ADD rather than COPY
	From  string   // --from value, "" for the build context
	Args  []string // sources then destination, as written
	Flags []string
}

// platformArgs are the ARGs BuildKit sets itself; they need no default.
var platformArgs = []string{"TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
	"BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"}

// envMap adapts a map to BuildKit's shell.EnvGetter.
type envMap map[string]string

func (e envMap) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envMap) Keys() []string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// expandWord expands ARG/ENV references and removes quotes, as BuildKit does
// for ARG, ENV, LABEL and FROM values. Unknown variables are kept as written.
func expandWord(lex *shell.Lex, word string, env map[string]string) (string, error) {
	out, _, err := lex.ProcessWord(word, envMap(env))
	return out, err
}

// ParseDockerfile parses src with BuildKit's own Dockerfile parser and reads
// its stages. The findings are problems met while reading (an ARG without a
// default, a parser warning); the error is a Dockerfile that does not parse.
func ParseDockerfile(name string, src []byte) (*Dockerfile, []Finding, error) {
	fs := &findings{file: name}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		fs.add(line, "parse-warning", "%s", w.Short)
	}
	lex := shell.NewLex(res.EscapeToken)
	lex.SkipUnsetEnv = true
	df := &Dockerfile{GlobalArgs: map[string]string{}}
	var st *Stage
	for _, n := range res.AST.Children {
		cmd := strings.ToLower(n.Value)
		args := nodeArgs(n)
		switch {
		case cmd == "from":
			st, err = readFrom(lex, df, n, args)
			if err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %w", name, n.StartLine, err)
			}
			df.Stages = append(df.Stages, st)
		case cmd == "arg":
			if err := readArgs(lex, df, st, n, args, fs); err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %w", name, n.StartLine, err)
			}
		case st == nil:
			fs.add(n.StartLine, "parse", "%s before the first FROM", n.Value)
		case cmd == "env" || cmd == "label":
			into := st.Env
			if cmd == "label" {
				into = st.Labels
			}
			for i := 0; i+1 < len(args); i += 3 {
				v, err := expandWord(lex, args[i+1], stageEnv(st))
				if err != nil {
					return nil, nil, fmt.Errorf("%s:%d: %w", name, n.StartLine, err)
				}
				into[args[i]] = v
			}
		case cmd == "shell":
			st.Shell = args
		case cmd == "run":
			s := Script{Line: n.StartLine, Shell: st.Shell, env: stageEnv(st)}
			if n.Attributes["json"] {
				s.Exec = args
				s.Text = strings.Join(args, " ")
			} else {
				s.Text = strings.Join(args, " ")
			}
			st.Runs = append(st.Runs, s)
		case cmd == "copy" || cmd == "add":
			c := Copy{Line: n.StartLine, Add: cmd == "add", Args: args, Flags: n.Flags}
			for _, f := range n.Flags {
				if v, ok := strings.CutPrefix(f, "--from="); ok {
					c.From = v
				}
			}
			st.Copies = append(st.Copies, c)
		case cmd == "entrypoint":
			if n.Attributes["json"] {
				st.Entrypoint = args
			} else {
				st.Entrypoint = nil
				fs.add(n.StartLine, "exec-form", "ENTRYPOINT in shell form runs under /bin/sh -c, which does not pass SIGTERM on: use the JSON form")
			}
		case cmd == "cmd":
			if n.Attributes["json"] {
				st.Cmd = args
			} else {
				st.Cmd = []string{"/bin/sh", "-c", strings.Join(args, " ")}
			}
		}
	}
	if len(df.Stages) == 0 {
		fs.add(0, "parse", "no FROM instruction")
	}
	return df, fs.sorted(), nil
}

// nodeArgs lists the values after the instruction keyword.
func nodeArgs(n *parser.Node) []string {
	var out []string
	for x := n.Next; x != nil; x = x.Next {
		out = append(out, x.Value)
	}
	return out
}

func readFrom(lex *shell.Lex, df *Dockerfile, n *parser.Node, args []string) (*Stage, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("FROM without an image")
	}
	image, err := expandWord(lex, args[0], df.GlobalArgs)
	if err != nil {
		return nil, err
	}
	st := &Stage{Image: image, Line: n.StartLine, Args: map[string]string{}, Env: map[string]string{},
		Labels: map[string]string{}, Shell: []string{"/bin/sh", "-c"}}
	if len(args) >= 3 && strings.EqualFold(args[1], "as") {
		st.Name = args[2]
	}
	return st, nil
}

func readArgs(lex *shell.Lex, df *Dockerfile, st *Stage, n *parser.Node, args []string, fs *findings) error {
	for _, a := range args {
		name, raw, hasDefault := strings.Cut(a, "=")
		scope := df.GlobalArgs
		env := df.GlobalArgs
		if st != nil {
			scope, env = st.Args, stageEnv(st)
		}
		switch {
		case hasDefault:
			v, err := expandWord(lex, raw, env)
			if err != nil {
				return err
			}
			scope[name] = v
		case st != nil && hasKey(df.GlobalArgs, name):
			scope[name] = df.GlobalArgs[name] // re-declared global ARG: inherits its default
		case slices.Contains(platformArgs, name):
			scope[name] = "${" + name + "}"
		default:
			fs.add(n.StartLine, "arg-default", "ARG %s has no default: give it one (ARG %s=<value>) so that a plain `docker build` is reproducible", name, name)
			scope[name] = "${" + name + "}"
		}
	}
	return nil
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// stageEnv is what a RUN in the stage sees: its ARGs and ENVs.
func stageEnv(st *Stage) map[string]string {
	env := make(map[string]string, len(st.Args)+len(st.Env))
	for k, v := range st.Args {
		env[k] = v
	}
	for k, v := range st.Env {
		env[k] = v
	}
	return env
}

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	shaRE    = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)
	anySHARE = regexp.MustCompile(`\b[0-9a-f]{40}\b`)
	tagRE    = regexp.MustCompile(`^(refs/tags/)?v?[0-9]+(\.[0-9]+)+([-+.][0-9A-Za-z.+-]*)?$`)
)

// CheckDockerfile parses src and checks that the image is reproducible:
//   - every FROM (and COPY --from an image) names a tag that is not "latest"
//     and a sha256 digest;
//   - every ARG has a default;
//   - every pip install pins each package with == (or ===), and installs from a
//     requirements file only with --require-hashes (a lock: pip then refuses any
//     unpinned or unhashed package) or together with a constraints file (-c);
//   - every git clone, fetch and checkout ends on a full commit: a clone of a
//     release tag must verify the tag's commit (git rev-parse HEAD against a
//     full SHA), or check out a full SHA;
//   - ADD of a URL carries --checksum;
//   - ENTRYPOINT is in JSON (exec) form;
//   - LD_PRELOAD, when set, names a file that a RUN of the same stage checks.
//
// The error is a Dockerfile that does not parse.
func CheckDockerfile(name string, src []byte) ([]Finding, error) {
	df, pre, err := ParseDockerfile(name, src)
	if err != nil {
		return nil, err
	}
	fs := &findings{file: name, list: pre}
	stageNames := map[string]bool{}
	for _, st := range df.Stages {
		checkImageRef(fs, st.Line, "FROM", st.Image, stageNames)
		for _, c := range st.Copies {
			if c.From != "" {
				ref, _ := expandWord(shell.NewLex('\\'), c.From, stageEnv(st))
				checkImageRef(fs, c.Line, "COPY --from", ref, stageNames)
			}
			if c.Add {
				checkAdd(fs, c)
			}
		}
		for _, r := range st.Runs {
			checkRun(fs, r)
		}
		if p, ok := st.Env["LD_PRELOAD"]; ok && p != "" {
			checked := false
			for _, r := range st.Runs {
				if strings.Contains(expandText(r.Text, r.env), p) {
					checked = true
				}
			}
			if !checked {
				fs.add(st.Line, "ld-preload", "LD_PRELOAD=%s but no RUN in this stage checks that the file exists (test -e %q): a missing library only prints a warning at every process start", p, p)
			}
		}
		if st.Name != "" {
			stageNames[strings.ToLower(st.Name)] = true
		}
	}
	return fs.sorted(), nil
}

// checkImageRef checks that ref is a previous stage, scratch, or an image
// pinned by tag and digest.
func checkImageRef(fs *findings, line int, what, ref string, stages map[string]bool) {
	if stages[strings.ToLower(ref)] || ref == "scratch" {
		return
	}
	if strings.Contains(ref, "$") {
		fs.add(line, "from-pin", "%s %s uses a variable with no default", what, ref)
		return
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	switch {
	case tag == "":
		fs.add(line, "from-tag", "%s %s has no tag: name a version (e.g. image:1.2.3)", what, ref)
	case tag == "latest":
		fs.add(line, "from-tag", "%s %s uses the moving tag latest: name a version", what, ref)
	}
	switch {
	case !hasDigest:
		fs.add(line, "from-digest", "%s %s is not pinned by digest: append @sha256:<digest> (docker buildx imagetools inspect %s)", what, ref, name)
	case !digestRE.MatchString(digest):
		fs.add(line, "from-digest", "%s %s: %q is not a sha256 digest", what, ref, digest)
	}
}

func checkAdd(fs *findings, c Copy) {
	hasChecksum := slices.ContainsFunc(c.Flags, func(f string) bool { return strings.HasPrefix(f, "--checksum=") })
	for _, a := range c.Args[:max(len(c.Args)-1, 0)] {
		if (strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://")) && !hasChecksum {
			fs.add(c.Line, "add-pin", "ADD %s downloads without --checksum=sha256:...: the content can change", a)
		}
		if strings.HasPrefix(a, "git@") || strings.HasSuffix(a, ".git") || strings.Contains(a, ".git#") {
			if _, ref, _ := strings.Cut(a, "#"); !shaRE.MatchString(ref) {
				fs.add(c.Line, "git-pin", "ADD %s does not name a full commit (…#<sha>)", a)
			}
		}
	}
}

// checkRun checks the pip and git commands of one RUN.
func checkRun(fs *findings, r Script) {
	var cmds [][]string
	var err error
	text := r.Text
	switch {
	case r.Exec != nil && len(r.Exec) >= 3 && isShell(r.Exec[0]) && r.Exec[1] == "-c":
		text = r.Exec[2]
		cmds, err = parseCommands(text, r.env)
	case r.Exec != nil:
		cmds = [][]string{expandAll(r.Exec, r.env)}
	default:
		cmds, err = parseCommands(text, r.env)
	}
	if err != nil {
		fs.add(r.Line, "parse", "RUN is not valid shell: %v", err)
		return
	}
	expanded := expandText(text, r.env)
	verified := strings.Contains(expanded, "rev-parse") && anySHARE.MatchString(expanded)
	fetchPinned := false
	for i, c := range cmds {
		if pip := pipArgs(c); pip != nil {
			checkPip(fs, r.Line, pip)
		}
		sub, args := gitArgs(c)
		switch sub {
		case "clone":
			checkClone(fs, r.Line, args, verified, cmds[i+1:], r.env)
		case "fetch":
			fetchPinned = checkFetch(fs, r.Line, args, verified)
		case "checkout", "switch", "reset":
			checkCheckout(fs, r.Line, sub, args, verified, fetchPinned)
		}
	}
}

func isShell(p string) bool {
	base := p[strings.LastIndex(p, "/")+1:]
	return base == "sh" || base == "bash" || base == "dash"
}

// pipArgs returns the arguments after "install" when c is a pip install, else nil.
func pipArgs(c []string) []string {
	if len(c) == 0 {
		return nil
	}
	base := c[0][strings.LastIndex(c[0], "/")+1:]
	rest := c[1:]
	switch {
	case base == "pip" || strings.HasPrefix(base, "pip3"):
	case strings.HasPrefix(base, "python") && len(rest) >= 2 && rest[0] == "-m" && rest[1] == "pip":
		rest = rest[2:]
	case base == "uv" && len(rest) >= 1 && rest[0] == "pip":
		rest = rest[1:]
	default:
		return nil
	}
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") { // pip's global options, e.g. -q
		rest = rest[1:]
	}
	if len(rest) == 0 || rest[0] != "install" {
		return nil
	}
	return append([]string{}, rest[1:]...)
}

// pipValueOptions are pip install options that take a value.
var pipValueOptions = []string{"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
	"-f", "--find-links", "-t", "--target", "--prefix", "--root", "--platform", "--python-version", "--implementation",
	"--abi", "--src", "-e", "--editable", "--progress-bar", "--report", "--log", "--proxy", "--retries", "--timeout",
	"--exists-action", "--trusted-host", "--cert", "--client-cert", "--cache-dir", "-C", "--config-settings",
	"--global-option", "--no-binary", "--only-binary", "--upgrade-strategy", "--root-user-action", "--python",
	"--torch-backend", "--index-strategy"}

func checkPip(fs *findings, line int, args []string) {
	var reqs, cons []string
	hashes := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		opt, val, inline := strings.Cut(a, "=")
		if strings.HasPrefix(a, "-") {
			if opt == "--require-hashes" {
				hashes = true
			}
			if !slices.Contains(pipValueOptions, opt) {
				continue // a flag
			}
			if !inline {
				if i+1 >= len(args) {
					fs.add(line, "pip-pin", "pip install %s has no value", opt)
					break
				}
				i++
				val = args[i]
			}
			switch opt {
			case "-r", "--requirement":
				reqs = append(reqs, val)
			case "-c", "--constraint":
				cons = append(cons, val)
			case "-e", "--editable":
				fs.add(line, "pip-pin", "pip install -e %s is an editable (unpinned) install", val)
			}
			continue
		}
		checkPipSpec(fs, line, a)
	}
	if len(reqs) > 0 && len(cons) == 0 && !hashes {
		fs.add(line, "pip-pin", "pip install -r %s without --require-hashes or a constraints file (-c): the requirements' versions float, and they may replace packages pinned earlier (torch)", strings.Join(reqs, " -r "))
	}
}

var pipNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?`)

func checkPipSpec(fs *findings, line int, spec string) {
	switch {
	case strings.Contains(spec, "$"):
		fs.add(line, "pip-pin", "pip install %s: the version comes from a variable with no default in this stage", spec)
		return
	case strings.HasPrefix(spec, "/") || strings.HasPrefix(spec, "./") || spec == ".":
		return // a file from the build itself
	case strings.HasPrefix(spec, "git+"):
		if _, ref, ok := strings.Cut(strings.TrimPrefix(spec, "git+"), ".git@"); !ok || !shaRE.MatchString(strings.SplitN(ref, "#", 2)[0]) {
			fs.add(line, "pip-pin", "pip install %s does not name a full commit (…@<sha>)", spec)
		}
		return
	}
	name := pipNameRE.FindString(spec)
	rest := strings.TrimSpace(spec[len(name):])
	ver, ok := strings.CutPrefix(rest, "===")
	if !ok {
		ver, ok = strings.CutPrefix(rest, "==")
	}
	if name == "" || !ok || ver == "" || strings.ContainsAny(ver, "*,<>=!~; ") {
		fs.add(line, "pip-pin", "pip install %s is not pinned: write %s==<version> (or install it through a constraints file)", spec, strings.TrimRight(name, " "))
	}
}

// gitArgs returns the git subcommand and its arguments, or "" when c is not git.
func gitArgs(c []string) (string, []string) {
	if len(c) == 0 || c[0][strings.LastIndex(c[0], "/")+1:] != "git" {
		return "", nil
	}
	for i := 1; i < len(c); i++ {
		switch a := c[i]; {
		case a == "-C" || a == "-c":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a, c[i+1:]
		}
	}
	return "", nil
}

// positional splits git arguments into options' values and positionals.
func positional(args []string, valueOpts ...string) (opts map[string]string, pos []string) {
	opts = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		if k, v, ok := strings.Cut(a, "="); ok {
			opts[k] = v
			continue
		}
		if slices.Contains(valueOpts, a) && i+1 < len(args) {
			opts[a] = args[i+1]
			i++
			continue
		}
		opts[a] = ""
	}
	return opts, pos
}

func checkClone(fs *findings, line int, args []string, verified bool, later [][]string, env map[string]string) {
	opts, pos := positional(args, "-b", "--branch", "--depth", "-o", "--origin", "--reference", "--separate-git-dir",
		"-c", "--config", "--filter", "--shallow-since", "--shallow-exclude", "-j", "--jobs", "--template", "-u", "--upload-pack")
	repo := ""
	if len(pos) > 0 {
		repo = pos[0]
	}
	for _, c := range later {
		sub, a := gitArgs(c)
		if sub == "checkout" || sub == "reset" || sub == "switch" {
			_, p := positional(a, "-b", "-B", "--orphan", "-c", "-C")
			if len(p) > 0 && shaRE.MatchString(p[0]) {
				return // checks out a full commit
			}
		}
	}
	branch := opts["--branch"]
	if b, ok := opts["-b"]; ok {
		branch = b
	}
	switch {
	case branch == "":
		fs.add(line, "git-pin", "git clone %s follows the default branch: clone a release tag (--branch vX.Y.Z) and verify its commit, or check out a full commit SHA", repo)
	case strings.Contains(branch, "$"):
		fs.add(line, "git-pin", "git clone %s --branch %s: the ref comes from a variable with no default in this stage", repo, branch)
	case !tagRE.MatchString(branch):
		fs.add(line, "git-pin", "git clone %s --branch %s: %s looks like a branch, which moves; clone a release tag or check out a full commit SHA", repo, branch, branch)
	case !verified:
		fs.add(line, "git-pin", "git clone %s --branch %s: a tag can be moved; verify the commit in the same RUN (git rev-parse HEAD against the full SHA)", repo, branch)
	}
}

// checkFetch reports whether the fetch is pinned to a commit (or a verified tag).
func checkFetch(fs *findings, line int, args []string, verified bool) bool {
	_, pos := positional(args, "--depth", "-j", "--jobs", "--shallow-since", "--shallow-exclude", "--deepen",
		"--negotiation-tip", "--refmap", "-o", "--server-option", "--upload-pack", "--filter")
	if len(pos) < 2 {
		fs.add(line, "git-pin", "git fetch %s fetches the remote's moving refs: fetch a full commit SHA", strings.Join(pos, " "))
		return false
	}
	for _, ref := range pos[1:] {
		src, _, _ := strings.Cut(strings.TrimPrefix(ref, "+"), ":")
		if shaRE.MatchString(src) || (tagRE.MatchString(src) && verified) {
			return true
		}
	}
	fs.add(line, "git-pin", "git fetch %s: fetch a full commit SHA (or a release tag whose commit the RUN verifies)", strings.Join(pos, " "))
	return false
}

func checkCheckout(fs *findings, line int, sub string, args []string, verified, fetchPinned bool) {
	opts, pos := positional(args, "-b", "-B", "--orphan", "-c", "-C")
	if sub == "checkout" && len(pos) > 0 && len(opts) == 0 && len(pos) > 1 {
		return // git checkout <ref> -- <paths>: restores files
	}
	if len(pos) == 0 {
		if sub == "reset" {
			return // resets the index; moves nothing
		}
		fs.add(line, "git-pin", "git %s without a target", sub)
		return
	}
	ref := pos[0]
	switch {
	case shaRE.MatchString(ref):
	case ref == "FETCH_HEAD" && fetchPinned:
	case tagRE.MatchString(ref) && verified:
	default:
		fs.add(line, "git-pin", "git %s %s: check out a full commit SHA (or FETCH_HEAD of a fetch by SHA)", sub, ref)
	}
}

// expandAll expands variables in each word.
func expandAll(words []string, env map[string]string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = expandText(w, env)
	}
	return out
}

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expandText replaces $NAME and ${NAME} with their values from env, leaving
// unknown variables as written.
func expandText(s string, env map[string]string) string {
	return varRE.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := env[name]; ok && !strings.Contains(v, "${"+name+"}") {
			return v
		}
		return m
	})
}
