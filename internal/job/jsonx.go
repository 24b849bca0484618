package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// member is one key of a JSON object with its raw value, in input order.
type member struct {
	key string
	raw json.RawMessage
}

// kind names the JSON type of a raw value, as error messages say it.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// isNull reports whether raw is JSON null (a value given as null counts as
// not given).
func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// syntaxError describes malformed JSON with its line and column.
func syntaxError(data []byte, err error) *apperr.Error {
	msg := "the job is not valid JSON"
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		msg = fmt.Sprintf("the job is not valid JSON: %s (line %d, column %d)", se.Error(), line, col)
	} else if err != nil {
		msg = "the job is not valid JSON: " + err.Error()
	}
	return apperr.Field(apperr.InvalidInput, "", msg,
		`send one JSON object such as {"input": {"prompt": "...", "image": "..."}}; check quotes, commas and brackets`)
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// readObject splits a JSON object into its members, in order. ok is false
// when raw is not an object. raw must be valid JSON.
func readObject(raw json.RawMessage) (members []member, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, false
	}
	if d, isDelim := tok.(json.Delim); !isDelim || d != '{' {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, isKey := tok.(string)
		if !isKey {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		members = append(members, member{key: key, raw: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	return members, true
}

// readArray splits a JSON array into its elements. raw must be valid JSON.
func readArray(raw json.RawMessage) (elems []json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, false
	}
	if d, isDelim := tok.(json.Delim); !isDelim || d != '[' {
		return nil, false
	}
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		elems = append(elems, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	return elems, true
}

// checker collects the field errors of one job, so that all are reported at
// once.
type checker struct {
	errs apperr.List
}

func (c *checker) add(e *apperr.Error) { c.errs = append(c.errs, e) }

// fail records an INVALID_INPUT error about a field.
func (c *checker) fail(field, hint, format string, args ...any) {
	c.add(apperr.Field(apperr.InvalidInput, field, fmt.Sprintf(format, args...), hint))
}

// typeErr records a wrong JSON type.
func (c *checker) typeErr(field string, raw json.RawMessage, want, example string) {
	hint := "write it as " + example
	c.fail(field, hint, "%s must be %s, got %s", field, want, describe(raw))
}

// describe is kind plus a short quote of the value, for type errors.
func describe(raw json.RawMessage) string {
	k := kind(raw)
	if k == "an object" || k == "an array" || k == "null" || k == "nothing" {
		return k
	}
	s := string(bytes.TrimSpace(raw))
	if utf8.RuneCountInString(s) > 40 {
		r := []rune(s)
		s = string(r[:40]) + "…"
	}
	return k + " (" + s + ")"
}

// str decodes a JSON string.
func (c *checker) str(field string, raw json.RawMessage, example string) (string, bool) {
	if kind(raw) != "a string" {
		c.typeErr(field, raw, "a string", example)
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		c.typeErr(field, raw, "a string", example)
		return "", false
	}
	// encoding/json replaces invalid UTF-8 and lone surrogate escapes with
	// U+FFFD; a replacement character the input did not contain means the
	// text was not valid UTF-8.
	if strings.ContainsRune(s, utf8.RuneError) && !containsReplacement(raw) {
		c.fail(field, "send the text as UTF-8 (JSON requires it); check the client's encoding",
			"%s is not valid UTF-8", field)
		return "", false
	}
	return s, true
}

func containsReplacement(raw []byte) bool {
	if bytes.Contains(raw, []byte("\uFFFD")) {
		return true
	}
	l := bytes.ToLower(raw)
	return bytes.Contains(l, []byte(`\ufffd`))
}

// boolean decodes a JSON boolean.
func (c *checker) boolean(field string, raw json.RawMessage, example string) (bool, bool) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	c.typeErr(field, raw, "true or false", example)
	return false, false
}

// number decodes a JSON number.
func (c *checker) number(field string, raw json.RawMessage, example string) (float64, bool) {
	if kind(raw) != "a number" {
		c.typeErr(field, raw, "a number", example)
		return 0, false
	}
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		c.fail(field, "write it as "+example, "%s is not a usable number: %s", field, describe(raw))
		return 0, false
	}
	return v, true
}

// maxExactFloat is the largest integer a float64 holds exactly (2^53).
const maxExactFloat = 1 << 53

// integer decodes a JSON number that is a whole number (81 or 81.0; 81.5 is
// an error).
func (c *checker) integer(field string, raw json.RawMessage, example string) (int64, bool) {
	if kind(raw) != "a number" {
		c.typeErr(field, raw, "a whole number", example)
		return 0, false
	}
	s := string(bytes.TrimSpace(raw))
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			c.fail(field, "write it as "+example, "%s is out of range: %s", field, s)
			return 0, false
		}
		return n, true
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != math.Trunc(v) || math.Abs(v) > maxExactFloat {
		c.fail(field, "write it as "+example, "%s must be a whole number, got %s", field, s)
		return 0, false
	}
	return int64(v), true
}

// unsigned decodes a JSON number that is a whole number from 0 to 2^64−1,
// exactly: numbers above 2^53 must be written as integers, since a decimal
// point or exponent means a floating-point value that has lost digits.
func (c *checker) unsigned(field string, raw json.RawMessage, example string) (uint64, bool) {
	const hint = "use a whole number from 0 to 18446744073709551615"
	if kind(raw) != "a number" {
		c.typeErr(field, raw, "a whole number", example)
		return 0, false
	}
	s := string(bytes.TrimSpace(raw))
	if strings.HasPrefix(s, "-") {
		c.fail(field, hint, "%s must not be negative, got %s", field, s)
		return 0, false
	}
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			c.fail(field, hint, "%s is larger than 18446744073709551615: %s", field, s)
			return 0, false
		}
		return n, true
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != math.Trunc(v) || v > maxExactFloat {
		c.fail(field, hint+", written without a decimal point or exponent",
			"%s must be a whole number written exactly, got %s", field, s)
		return 0, false
	}
	return uint64(v), true
}

// object splits raw into members and reports unknown and repeated keys.
// valid lists the keys of this object, in documentation order.
func (c *checker) object(field string, raw json.RawMessage, valid []string, example string) (map[string]json.RawMessage, bool) {
	members, ok := readObject(raw)
	if !ok {
		c.typeErr(field, raw, "an object", example)
		return nil, false
	}
	known := make(map[string]bool, len(valid))
	for _, k := range valid {
		known[k] = true
	}
	out := make(map[string]json.RawMessage, len(members))
	for _, m := range members {
		path := joinPath(field, m.key)
		if !known[m.key] {
			c.add(unknownKey(field, m.key, valid))
			continue
		}
		if _, dup := out[m.key]; dup {
			c.fail(path, "give each key once", "%s appears more than once", path)
			continue
		}
		out[m.key] = m.raw
	}
	return out, true
}

func joinPath(parent, key string) string {
	if parent == "" || parent == "input" {
		return key
	}
	return parent + "." + key
}

// unknownKey is the error for a key that is not part of the contract: it
// names the key, suggests the closest valid one and lists them all.
func unknownKey(parent, key string, valid []string) *apperr.Error {
	if r := []rune(key); len(r) > 64 {
		key = string(r[:64]) + "…"
	}
	path := joinPath(parent, key)
	where := "the input"
	if parent != "" && parent != "input" {
		where = parent
	}
	msg := fmt.Sprintf("unknown key %q in %s", key, where)
	hint := fmt.Sprintf("valid keys of %s: %s", where, strings.Join(valid, ", "))
	if s := suggest(key, valid, parent); s != "" {
		hint = "did you mean " + s + "? " + hint
	}
	return apperr.Field(apperr.InvalidInput, path, msg, hint)
}
