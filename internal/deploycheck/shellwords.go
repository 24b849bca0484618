package deploycheck

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// splitCommands splits a shell command line into its simple commands, each
// as a list of words with quotes removed and $NAME / ${NAME} expanded from env
// where known (unknown ones read ${NAME}). The line is parsed with
// mvdan.cc/sh/v3/syntax (bash, a superset of the sh that RUN lines use), so
// that the commands are exactly the shell's. Command substitutions ($(...),
// `...`) and other expansions stay inside their word as written, and the
// commands inside them are not listed; redirections are dropped with their
// targets, as are variable assignments; keywords (if, for, !, {, time, ...)
// are the parser's, so the first word of each command is the program. The
// error is a line that is not valid shell.
func parseCommands(s string, env map[string]string) ([][]string, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(s), "")
	if err != nil {
		return nil, err
	}
	var cmds [][]string
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst:
			return false
		case *syntax.CallExpr:
			if len(n.Args) == 0 {
				return false // assignments only
			}
			words := make([]string, len(n.Args))
			for i, w := range n.Args {
				words[i] = wordText(s, w.Parts, env, false)
			}
			cmds = append(cmds, words)
			return false
		}
		return true
	})
	return cmds, nil
}

// splitCommands is parseCommands without the error: nil for a line that is
// not valid shell.
func splitCommands(s string, env map[string]string) [][]string {
	cmds, _ := parseCommands(s, env)
	return cmds
}

// wordText is the text of a word's parts with quotes removed: plain
// parameters are expanded from env (or written ${NAME}), every other
// expansion is kept as written in src.
func wordText(src string, parts []syntax.WordPart, env map[string]string, quoted bool) string {
	var b strings.Builder
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescape(p.Value, quoted))
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			b.WriteString(wordText(src, p.Parts, env, true))
		case *syntax.ParamExp:
			if simpleParam(p) {
				if v, ok := env[p.Param.Value]; ok {
					b.WriteString(v)
				} else {
					b.WriteString("${" + p.Param.Value + "}")
				}
				continue
			}
			b.WriteString(src[p.Pos().Offset():p.End().Offset()])
		default:
			b.WriteString(src[p.Pos().Offset():p.End().Offset()])
		}
	}
	return b.String()
}

// simpleParam reports whether p is $NAME or ${NAME}, nothing more.
func simpleParam(p *syntax.ParamExp) bool {
	return p.Param != nil && p.Exp == nil && p.Slice == nil && p.Repl == nil && p.Index == nil && !p.Length &&
		!p.Width && !p.Excl && p.Names == 0
}

// unescape removes the shell's backslashes from a literal: outside quotes a
// backslash quotes any character (and joins lines); inside double quotes only
// \" \\ \$ \` and a line break.
func unescape(s string, quoted bool) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) || quoted && !strings.ContainsRune("\"\\$`\n", rune(s[i+1])) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] != '\n' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
