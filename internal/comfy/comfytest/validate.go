package comfytest

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// promptNode is one node of a submitted API-format graph.
type promptNode struct {
	id        string
	classType string
	hasClass  bool
	inputs    obj // ordered, mutated by validation (converted constants)
	raw       obj
}

// graph is a submitted API-format graph, in the order it was sent.
type graph struct {
	order []string
	nodes map[string]*promptNode
	raw   obj
}

func parseGraph(v any) (*graph, error) {
	o, ok := v.(obj)
	if !ok {
		return nil, fmt.Errorf("prompt is not an object")
	}
	g := &graph{nodes: map[string]*promptNode{}, raw: o}
	for _, e := range o {
		no, ok := e.v.(obj)
		if !ok {
			return nil, fmt.Errorf("node %s is not an object", e.k)
		}
		n := &promptNode{id: e.k, raw: no}
		if ct, ok := no.get("class_type"); ok {
			n.hasClass = true
			n.classType = pyStr(ct)
		}
		if in, ok := no.get("inputs"); ok {
			n.inputs, _ = in.(obj)
		}
		g.order = append(g.order, e.k)
		g.nodes[e.k] = n
	}
	return g, nil
}

// setInput replaces a constant input in place (validation writes converted
// values back, as ComfyUI does).
func (n *promptNode) setInput(name string, v any) {
	for i := range n.inputs {
		if n.inputs[i].k == name {
			n.inputs[i].v = v
			return
		}
	}
}

// constant returns a constant input, or false for a link or a missing input.
func (n *promptNode) constant(name string) (any, bool) {
	v, ok := n.inputs.get(name)
	if !ok {
		return nil, false
	}
	if _, link := v.([]any); link {
		return nil, false
	}
	return v, true
}

// link returns the source node id and slot of a linked input.
func (n *promptNode) link(name string) (string, int, bool) {
	v, ok := n.inputs.get(name)
	if !ok {
		return "", 0, false
	}
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return "", 0, false
	}
	slot, err := strconv.Atoi(pyStr(a[1]))
	if err != nil {
		return "", 0, false
	}
	return pyStr(a[0]), slot, true
}

// validation is the outcome of ComfyUI's validate_prompt.
type validation struct {
	ok         bool
	err        obj      // top-level error, when !ok
	outputs    []string // outputs that will run
	nodeErrors obj
}

type validated struct {
	valid   bool
	reasons []any
}

func errObj(typ, message, details string, extra obj) obj {
	if extra == nil {
		extra = obj{}
	}
	return obj{{"type", typ}, {"message", message}, {"details", details}, {"extra_info", extra}}
}

// validatePrompt reproduces execution.validate_prompt of ComfyUI 0.3.64.
func (s *Server) validatePrompt(g *graph, partial []string) validation {
	outputs := []string{}
	for _, id := range g.order {
		n := g.nodes[id]
		if !n.hasClass {
			return validation{err: errObj("invalid_prompt", "Cannot execute because a node is missing the class_type property.", fmt.Sprintf("Node ID '#%s'", id), nil), nodeErrors: obj{}}
		}
		c, ok := s.catalog.classes[n.classType]
		if !ok {
			return validation{err: errObj("invalid_prompt", fmt.Sprintf("Cannot execute because node %s does not exist.", n.classType), fmt.Sprintf("Node ID '#%s'", id), nil), nodeErrors: obj{}}
		}
		if c.outputNode && (partial == nil || contains(partial, id)) {
			outputs = append(outputs, id)
		}
	}
	if len(outputs) == 0 {
		return validation{err: errObj("prompt_no_outputs", "Prompt has no outputs", "", nil), nodeErrors: obj{}}
	}
	done := map[string]validated{}
	var good []string
	type outErr struct {
		o       string
		reasons []any
	}
	var errs []outErr
	nodeErrors := obj{}
	for _, o := range outputs {
		r := s.validateInputs(g, o, done)
		if r.valid {
			good = append(good, o)
			continue
		}
		errs = append(errs, outErr{o, r.reasons})
		for _, id := range g.order {
			res, ok := done[id]
			if !ok || res.valid || len(res.reasons) == 0 {
				continue
			}
			var entry obj
			if v, ok := nodeErrors.get(id); ok {
				entry = v.(obj)
			} else {
				entry = obj{{"errors", res.reasons}, {"dependent_outputs", []any{}}, {"class_type", g.nodes[id].classType}}
			}
			deps := entry[1].v.([]any)
			entry[1].v = append(deps, o)
			found := false
			for i := range nodeErrors {
				if nodeErrors[i].k == id {
					nodeErrors[i].v = entry
					found = true
				}
			}
			if !found {
				nodeErrors = append(nodeErrors, kv{id, entry})
			}
		}
	}
	if len(good) == 0 {
		var lines []string
		for _, e := range errs {
			for _, r := range e.reasons {
				ro := r.(obj)
				m, _ := ro.get("message")
				d, _ := ro.get("details")
				lines = append(lines, fmt.Sprintf("%v: %v", m, d))
			}
		}
		return validation{
			err:        errObj("prompt_outputs_failed_validation", "Prompt outputs failed validation", strings.Join(lines, "\n"), nil),
			outputs:    good,
			nodeErrors: nodeErrors,
		}
	}
	return validation{ok: true, outputs: good, nodeErrors: nodeErrors}
}

// validateInputs reproduces execution.validate_inputs for one node.
func (s *Server) validateInputs(g *graph, id string, done map[string]validated) validated {
	if r, ok := done[id]; ok {
		return r
	}
	n := g.nodes[id]
	c := s.catalog.classes[n.classType]
	var reasons []any
	valid := true
	for _, d := range c.inputs {
		val, present := n.inputs.get(d.name)
		if !present {
			if d.required {
				reasons = append(reasons, errObj("required_input_missing", "Required input is missing", d.name, obj{{"input_name", d.name}}))
			}
			continue
		}
		var typ any = d.typ
		if d.combo {
			typ = toAnyList(s.comboOptions(n.classType, d))
		}
		info := []any{typ, d.extra}
		if link, ok := val.([]any); ok {
			if len(link) != 2 {
				reasons = append(reasons, errObj("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", d.name,
					obj{{"input_name", d.name}, {"input_config", info}, {"received_value", val}}))
				continue
			}
			oid := pyStr(link[0])
			src, ok := g.nodes[oid]
			var received string
			var problem string
			if !ok {
				problem = fmt.Sprintf("'%s'", oid)
			} else if slot, err := strconv.Atoi(pyStr(link[1])); err != nil {
				problem = "tuple indices must be integers or slices, not " + pyTypeName(link[1])
			} else if sc := s.catalog.classes[src.classType]; slot < 0 || slot >= len(sc.outputs) {
				problem = "tuple index out of range"
			} else {
				received = sc.outputs[slot]
			}
			if problem != "" {
				valid = false
				reasons = append(reasons, errObj("exception_during_inner_validation", "Exception when validating inner node", problem,
					obj{{"input_name", d.name}, {"input_config", info}, {"exception_message", problem},
						{"exception_type", "KeyError"}, {"traceback", []any{}}, {"linked_node", val}}))
				continue
			}
			if !typesMatch(received, typ) {
				details := fmt.Sprintf("%s, received_type(%s) mismatch input_type(%s)", d.name, received, pyStr(typ))
				reasons = append(reasons, errObj("return_type_mismatch", "Return type mismatch between linked nodes", details,
					obj{{"input_name", d.name}, {"input_config", info}, {"received_type", received}, {"linked_node", val}}))
				continue
			}
			if r := s.validateInputs(g, oid, done); !r.valid {
				valid = false
			}
			continue
		}
		conv, err := convert(d.typ, val)
		if err != nil {
			reasons = append(reasons, errObj("invalid_input_type", fmt.Sprintf("Failed to convert an input value to a %s value", d.typ),
				fmt.Sprintf("%s, %s, %s", d.name, pyStr(val), err), obj{{"input_name", d.name}, {"input_config", info},
					{"received_value", val}, {"exception_message", err.Error()}}))
			continue
		}
		if conv != nil {
			val = conv
			n.setInput(d.name, val)
		}
		if c.custom[d.name] {
			continue
		}
		if num, ok := number(val); ok {
			if m, ok := d.extra.get("min"); ok {
				if mn, ok := number(m); ok && num.Cmp(mn) < 0 {
					reasons = append(reasons, errObj("value_smaller_than_min", fmt.Sprintf("Value %s smaller than min of %s", pyRepr(val), pyRepr(m)), d.name,
						obj{{"input_name", d.name}, {"input_config", info}, {"received_value", val}}))
					continue
				}
			}
			if m, ok := d.extra.get("max"); ok {
				if mx, ok := number(m); ok && num.Cmp(mx) > 0 {
					reasons = append(reasons, errObj("value_bigger_than_max", fmt.Sprintf("Value %s bigger than max of %s", pyRepr(val), pyRepr(m)), d.name,
						obj{{"input_name", d.name}, {"input_config", info}, {"received_value", val}}))
					continue
				}
			}
		}
		if d.combo {
			list := s.comboOptions(n.classType, d)
			sv, isStr := val.(string)
			if !isStr || !contains(list, sv) {
				var cfg any = info
				var listInfo string
				if len(list) > 20 {
					listInfo = fmt.Sprintf("(list of length %d)", len(list))
					cfg = nil
				} else {
					listInfo = pyRepr(list)
				}
				reasons = append(reasons, errObj("value_not_in_list", "Value not in list", fmt.Sprintf("%s: '%s' not in %s", d.name, pyStr(val), listInfo),
					obj{{"input_name", d.name}, {"input_config", cfg}, {"received_value", val}}))
				continue
			}
		}
	}
	// VALIDATE_INPUTS of the classes that have one (LoadImage: the file exists).
	for _, d := range c.inputs {
		if !c.custom[d.name] {
			continue
		}
		v, ok := n.constant(d.name)
		if !ok {
			continue
		}
		name := pyStr(v)
		if _, err := s.inputPath(name); err != nil {
			reasons = append(reasons, errObj("custom_validation_failed", "Custom validation failed for node",
				fmt.Sprintf("%s - Invalid image file: %s", d.name, name), obj{{"input_name", d.name}}))
		}
	}
	r := validated{valid: valid && len(reasons) == 0, reasons: reasons}
	if r.reasons == nil {
		r.reasons = []any{}
	}
	done[id] = r
	return r
}

// typesMatch reproduces validate_node_input: equal types, a wildcard, or
// overlapping comma-separated unions.
func typesMatch(received string, input any) bool {
	in, ok := input.(string)
	if !ok {
		return false
	}
	if received == in {
		return true
	}
	rs := splitTypes(received)
	is := splitTypes(in)
	if rs["*"] || is["*"] {
		return true
	}
	for t := range rs {
		if is[t] {
			return true
		}
	}
	return false
}

func splitTypes(s string) map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		m[strings.TrimSpace(t)] = true
	}
	return m
}

// convert reproduces the INT/FLOAT/STRING/BOOLEAN coercion of constants. It
// returns nil when the type needs no conversion.
func convert(typ string, v any) (any, error) {
	switch typ {
	case "INT":
		switch x := v.(type) {
		case json.Number:
			if i, ok := new(big.Int).SetString(x.String(), 10); ok {
				return json.Number(i.String()), nil
			}
			f, _, err := big.ParseFloat(x.String(), 10, 256, big.ToZero)
			if err != nil {
				return nil, err
			}
			i, _ := f.Int(nil)
			return json.Number(i.String()), nil
		case string:
			i, ok := new(big.Int).SetString(strings.TrimSpace(x), 10)
			if !ok {
				return nil, fmt.Errorf("invalid literal for int() with base 10: %s", pyQuote(x))
			}
			return json.Number(i.String()), nil
		case bool:
			if x {
				return json.Number("1"), nil
			}
			return json.Number("0"), nil
		}
		return nil, fmt.Errorf("int() argument must be a string, a bytes-like object or a real number, not '%s'", pyTypeName(v))
	case "FLOAT":
		switch x := v.(type) {
		case json.Number:
			f, err := strconv.ParseFloat(x.String(), 64)
			if err != nil {
				return nil, err
			}
			return pyFloat(f), nil
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return nil, fmt.Errorf("could not convert string to float: %s", pyQuote(x))
			}
			return pyFloat(f), nil
		case bool:
			if x {
				return pyFloat(1), nil
			}
			return pyFloat(0), nil
		}
		return nil, fmt.Errorf("float() argument must be a string or a real number, not '%s'", pyTypeName(v))
	case "STRING":
		if s, ok := v.(string); ok {
			return s, nil
		}
		return pyStr(v), nil
	case "BOOLEAN":
		switch x := v.(type) {
		case bool:
			return x, nil
		case nil:
			return false, nil
		case string:
			return x != "", nil
		case json.Number:
			f, _ := strconv.ParseFloat(x.String(), 64)
			return f != 0, nil
		}
		return true, nil
	}
	return nil, nil
}

// number returns a numeric constant as a big.Float.
func number(v any) (*big.Float, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case pyFloat:
		return big.NewFloat(float64(x)), true
	default:
		return nil, false
	}
	f, _, err := big.ParseFloat(s, 10, 256, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	return f, true
}

func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case json.Number:
		if strings.ContainsAny(v.(json.Number).String(), ".eE") {
			return "float"
		}
		return "int"
	case []any:
		return "list"
	case obj:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}

func toAnyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
