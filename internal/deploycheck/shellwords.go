package deploycheck

import (
	"regexp"
	"strings"
)

// splitCommands splits a shell command line into its simple commands (split at
// && || ; | & ( ) and newlines), each as a list of words with quotes removed
// and $NAME / ${NAME} expanded from env where known. It is a reader for the
// subset of sh that Dockerfile RUN lines use, not a shell: command
// substitutions ($(...), `...`) stay inside their word as written, and
// redirections are dropped together with their targets. Leading shell
// keywords (if, then, else, do, !, {, ...) and variable assignments are
// removed, so that the first word of each command is the program.
func splitCommands(s string, env map[string]string) [][]string {
	t := &tokenizer{src: []rune(s), env: env}
	t.run()
	var cmds [][]string
	var cur []string
	flush := func() {
		if c := trimCommand(cur); len(c) > 0 {
			cmds = append(cmds, c)
		}
		cur = nil
	}
	for _, tok := range t.toks {
		if tok.op {
			flush()
			continue
		}
		cur = append(cur, tok.word)
	}
	flush()
	return cmds
}

var (
	shellKeywords = map[string]bool{"if": true, "then": true, "elif": true, "else": true, "fi": true, "do": true,
		"done": true, "while": true, "until": true, "for": true, "!": true, "{": true, "}": true, "time": true}
	assignRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

func trimCommand(c []string) []string {
	for len(c) > 0 && (shellKeywords[c[0]] || assignRE.MatchString(c[0])) {
		if c[0] == "for" { // for x in ...; do — the loop header is not a command
			return nil
		}
		c = c[1:]
	}
	return c
}

type token struct {
	word string
	op   bool
}

type tokenizer struct {
	src      []rune
	i        int
	env      map[string]string
	toks     []token
	word     strings.Builder
	inWord   bool
	skipNext bool // the next word is a redirection target
}

func (t *tokenizer) peek(off int) rune {
	if t.i+off < len(t.src) {
		return t.src[t.i+off]
	}
	return 0
}

func (t *tokenizer) endWord() {
	if !t.inWord {
		return
	}
	w := t.word.String()
	t.word.Reset()
	t.inWord = false
	if t.skipNext {
		t.skipNext = false
		return
	}
	t.toks = append(t.toks, token{word: w})
}

func (t *tokenizer) op() {
	t.endWord()
	t.skipNext = false
	t.toks = append(t.toks, token{op: true})
}

func (t *tokenizer) run() {
	for t.i < len(t.src) {
		c := t.src[t.i]
		switch {
		case c == '\\' && t.peek(1) == '\n':
			t.i += 2
		case c == '\\':
			t.inWord = true
			if t.i+1 < len(t.src) {
				t.word.WriteRune(t.src[t.i+1])
			}
			t.i += 2
		case c == ' ' || c == '\t':
			t.endWord()
			t.i++
		case c == '\n' || c == ';' || c == '(' || c == ')':
			t.op()
			t.i++
		case c == '&' || c == '|':
			t.op()
			t.i++
			if t.peek(0) == c {
				t.i++
			}
		case c == '>' || c == '<':
			t.redirect()
		case c == '#' && !t.inWord:
			for t.i < len(t.src) && t.src[t.i] != '\n' {
				t.i++
			}
		case c == '\'':
			t.inWord = true
			t.i++
			for t.i < len(t.src) && t.src[t.i] != '\'' {
				t.word.WriteRune(t.src[t.i])
				t.i++
			}
			t.i++
		case c == '"':
			t.inWord = true
			t.i++
			t.doubleQuoted()
		case c == '$':
			t.inWord = true
			t.dollar()
		case c == '`':
			t.inWord = true
			t.raw('`', '`')
		default:
			t.inWord = true
			t.word.WriteRune(c)
			t.i++
		}
	}
	t.endWord()
}

// redirect drops a redirection: a file-descriptor number before it, the
// operator, and its target word (unless it is >&N).
func (t *tokenizer) redirect() {
	if w := t.word.String(); t.inWord && w != "" && strings.Trim(w, "0123456789") == "" {
		t.word.Reset()
		t.inWord = false
	}
	t.endWord()
	for t.i < len(t.src) && (t.src[t.i] == '>' || t.src[t.i] == '<') {
		t.i++
	}
	if t.peek(0) == '&' {
		t.i++
		for t.i < len(t.src) && (t.src[t.i] >= '0' && t.src[t.i] <= '9' || t.src[t.i] == '-') {
			t.i++
		}
		return
	}
	t.skipNext = true
}

func (t *tokenizer) doubleQuoted() {
	for t.i < len(t.src) {
		c := t.src[t.i]
		switch {
		case c == '"':
			t.i++
			return
		case c == '\\' && t.i+1 < len(t.src) && strings.ContainsRune("\"\\$`\n", t.src[t.i+1]):
			if t.src[t.i+1] != '\n' {
				t.word.WriteRune(t.src[t.i+1])
			}
			t.i += 2
		case c == '$':
			t.dollar()
		case c == '`':
			t.raw('`', '`')
		default:
			t.word.WriteRune(c)
			t.i++
		}
	}
}

// dollar reads $NAME, ${NAME}, ${NAME...} or $(...) at t.i.
func (t *tokenizer) dollar() {
	switch next := t.peek(1); {
	case next == '(':
		t.word.WriteRune('$')
		t.i++
		t.raw('(', ')')
	case next == '{':
		end := t.i + 2
		for end < len(t.src) && t.src[end] != '}' {
			end++
		}
		inner := string(t.src[t.i+2 : min(end, len(t.src))])
		if v, ok := t.env[inner]; ok {
			t.word.WriteString(v)
		} else {
			t.word.WriteString("${" + inner + "}")
		}
		t.i = end + 1
	case next == '_' || next >= 'A' && next <= 'Z' || next >= 'a' && next <= 'z':
		end := t.i + 1
		for end < len(t.src) && (t.src[end] == '_' || t.src[end] >= 'A' && t.src[end] <= 'Z' ||
			t.src[end] >= 'a' && t.src[end] <= 'z' || t.src[end] >= '0' && t.src[end] <= '9') {
			end++
		}
		name := string(t.src[t.i+1 : end])
		if v, ok := t.env[name]; ok {
			t.word.WriteString(v)
		} else {
			t.word.WriteString("${" + name + "}")
		}
		t.i = end
	default:
		t.word.WriteRune('$')
		t.i++
	}
}

// raw copies a bracketed span that starts at t.i — $( ... ) with nesting and
// quotes respected, or ` ... ` — into the word as written.
func (t *tokenizer) raw(open, close rune) {
	t.word.WriteRune(t.src[t.i])
	t.i++
	depth := 1
	var quote rune
	for t.i < len(t.src) && depth > 0 {
		c := t.src[t.i]
		t.word.WriteRune(c)
		t.i++
		switch {
		case c == '\\' && t.i < len(t.src):
			t.word.WriteRune(t.src[t.i])
			t.i++
		case open == close:
			if c == close {
				depth = 0
			}
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == open:
			depth++
		case c == close:
			depth--
		}
	}
}
