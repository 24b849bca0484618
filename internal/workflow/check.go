package workflow

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
)

// Problem is one reason a graph would fail, or should not be submitted.
type Problem struct {
	NodeID    string `json:"node_id,omitempty"`
	ClassType string `json:"class_type,omitempty"`
	Input     string `json:"input,omitempty"`
	// Type is ComfyUI's error type where ComfyUI reports the same problem
	// (required_input_missing, value_not_in_list, ...), else one of the
	// Problem* types of this package.
	Type    string `json:"type"`
	Message string `json:"message"`
	// Strict is true for problems ComfyUI's own validation does not report
	// (the graph would be queued, and fail or misbehave later, or not at all).
	// A fake ComfyUI answers 400 only for problems that are not Strict.
	Strict bool `json:"strict,omitempty"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.NodeID != "" {
		fmt.Fprintf(&b, "node %q", p.NodeID)
		if p.ClassType != "" {
			fmt.Fprintf(&b, " (%s)", p.ClassType)
		}
		if p.Input != "" {
			fmt.Fprintf(&b, " input %q", p.Input)
		}
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s: %s", p.Type, p.Message)
	return b.String()
}

// The problem types. The first group are ComfyUI's own (its /prompt 400
// answer uses the same names); the second are this checker's stricter rules.
const (
	ProblemInvalidPrompt      = "invalid_prompt"         // node without class_type, or an unknown class
	ProblemNoOutputs          = "prompt_no_outputs"      // no output node
	ProblemRequiredMissing    = "required_input_missing" // a required input is absent
	ProblemBadLinkedInput     = "bad_linked_input"       // a list that is not ["<id>", index], or names no node
	ProblemReturnTypeMismatch = "return_type_mismatch"   // the linked output's type does not fit the input
	ProblemInvalidInputType   = "invalid_input_type"     // a constant of the wrong type
	ProblemSmallerThanMin     = "value_smaller_than_min"
	ProblemBiggerThanMax      = "value_bigger_than_max"
	ProblemNotInList          = "value_not_in_list" // a combo value (or a model file) the server does not list

	ProblemUnknownInput = "unknown_input"    // an input the class does not declare (ComfyUI ignores it)
	ProblemBadOutput    = "bad_output_index" // link to an output index the source does not have (ComfyUI fails validating it)
	ProblemBadImage     = "bad_image_name"   // LoadImage file name that is empty, absolute or climbs out
	ProblemCycle        = "cycle"            // the links form a cycle
	ProblemUnreachable  = "unreachable"      // the node feeds no output node (ComfyUI silently skips it)
	ProblemRule         = "rule_violation"   // a WAN rule: 16-pixel grid, 4k+1 frames, sampler split
)

// ModelLists are the model files a server has, by folder (FolderLoRAs, ...),
// as ComfyUI names them. Recorded object_info files list no models, so the
// checker takes them separately.
type ModelLists map[string][]string

// Check validates g against the schema the way ComfyUI's /prompt validation
// does (classes exist, required inputs present, link types match, combo
// values listed, numbers within min/max), and stricter: no undeclared
// inputs, constants of the exact type (an INT is a whole number, a BOOLEAN a
// bool), output indexes in range, model file names in models (unless models
// is nil, which skips them), the graph acyclic with every node feeding an
// output node, and the WAN rules (width and height multiples of 16, length
// 4k+1, the two-sampler split within range and consistent).
//
// Problems come sorted by node id, then input. An empty result means the
// graph is valid.
func Check(g Graph, schema Schema, models ModelLists) []Problem {
	c := &checker{g: g, schema: schema, models: models}
	ids := make([]string, 0, len(g))
	for id := range g {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	c.ids = ids

	for _, id := range ids {
		c.checkNode(id)
	}
	c.checkStructure()
	c.checkRules()

	sort.SliceStable(c.problems, func(i, j int) bool {
		a, b := c.problems[i], c.problems[j]
		if a.NodeID != b.NodeID {
			return a.NodeID < b.NodeID
		}
		return a.Input < b.Input
	})
	return c.problems
}

type checker struct {
	g        Graph
	schema   Schema
	models   ModelLists
	ids      []string
	problems []Problem
}

func (c *checker) add(id, input, typ string, strict bool, format string, args ...any) {
	p := Problem{NodeID: id, Input: input, Type: typ, Strict: strict, Message: fmt.Sprintf(format, args...)}
	if n, ok := c.g[id]; ok {
		p.ClassType = n.ClassType
	}
	c.problems = append(c.problems, p)
}

// class returns the schema class of a node, or nil.
func (c *checker) class(id string) *Class {
	n, ok := c.g[id]
	if !ok {
		return nil
	}
	return c.schema[n.ClassType]
}

func (c *checker) checkNode(id string) {
	n := c.g[id]
	if n.ClassType == "" {
		c.add(id, "", ProblemInvalidPrompt, false, "node has no class_type")
		return
	}
	cls := c.schema[n.ClassType]
	if cls == nil {
		c.add(id, "", ProblemInvalidPrompt, false, "node class %s does not exist on this server", n.ClassType)
		return
	}
	// Extra inputs a combo value brings (VideoHelperSuite format widgets).
	extra := map[string]*InputSpec{}
	for _, name := range sortedKeys(cls.Required, cls.Optional) {
		spec, _, _ := cls.Input(name)
		if spec.Formats == nil {
			continue
		}
		if v, ok := n.Inputs[name].(string); ok {
			for _, w := range spec.Formats[v] {
				extra[w.Name] = w
			}
		}
	}

	for _, name := range sortedKeys(cls.Required) {
		if _, ok := n.Inputs[name]; !ok {
			c.add(id, name, ProblemRequiredMissing, false, "required input %s is missing", name)
		}
	}
	for _, name := range sortedKeys(n.Inputs) {
		v := n.Inputs[name]
		spec, _, declared := cls.Input(name)
		if !declared {
			if w, ok := extra[name]; ok {
				// ComfyUI passes these through unchecked; check them anyway.
				c.checkValue(id, cls, name, w, v, true)
				continue
			}
			c.add(id, name, ProblemUnknownInput, true, "input %s is not an input of %s (ComfyUI ignores it)", name, cls.Name)
			continue
		}
		c.checkValue(id, cls, name, spec, v, false)
	}
}

// checkValue checks one input value, a link or a constant. strict marks
// problems ComfyUI would not report for this input.
func (c *checker) checkValue(id string, cls *Class, name string, spec *InputSpec, v any, strict bool) {
	if isList(v) {
		c.checkLink(id, name, spec, v, strict)
		return
	}
	if v == nil {
		c.add(id, name, ProblemInvalidInputType, true, "input %s is null", name)
		return
	}
	switch spec.Type {
	case TypeInt:
		if _, ok := toRat(v); !ok {
			c.add(id, name, ProblemInvalidInputType, strict || convertible(v), "input %s: %v is not a number", name, v)
			return
		}
		if r, _ := toRat(v); !r.IsInt() {
			c.add(id, name, ProblemInvalidInputType, true, "input %s: %v is not a whole number", name, v)
			return
		}
		c.checkRange(id, name, spec, v, strict)
	case TypeFloat:
		if _, ok := toRat(v); !ok {
			c.add(id, name, ProblemInvalidInputType, strict || convertible(v), "input %s: %v is not a number", name, v)
			return
		}
		c.checkRange(id, name, spec, v, strict)
	case TypeString:
		if !isString(v) {
			c.add(id, name, ProblemInvalidInputType, true, "input %s: %v is not a string", name, v)
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			c.add(id, name, ProblemInvalidInputType, true, "input %s: %v is not true or false", name, v)
		}
	case TypeCombo:
		c.checkCombo(id, cls, name, spec, v, strict)
	default:
		c.add(id, name, ProblemInvalidInputType, true, "input %s takes a link from a %s output, not the constant %v", name, spec.Type, v)
	}
}

// convertible reports whether Python's int()/float() might accept v (a
// string or a bool), so that ComfyUI would not report it.
func convertible(v any) bool {
	switch v.(type) {
	case string, bool:
		return true
	}
	return false
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

func (c *checker) checkRange(id, name string, spec *InputSpec, v any, strict bool) {
	r, _ := toRat(v)
	if spec.Min != nil && r.Cmp(spec.Min) < 0 {
		c.add(id, name, ProblemSmallerThanMin, strict, "input %s: %v is smaller than the minimum %s", name, v, ratString(spec.Min))
	}
	if spec.Max != nil && r.Cmp(spec.Max) > 0 {
		c.add(id, name, ProblemBiggerThanMax, strict, "input %s: %v is bigger than the maximum %s", name, v, ratString(spec.Max))
	}
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return fmt.Sprint(f)
}

func (c *checker) checkCombo(id string, cls *Class, name string, spec *InputSpec, v any, strict bool) {
	if folder := modelFolder(cls.Name, name); folder != "" {
		// Model file names: checked against the server's model lists, since
		// a recorded schema lists none.
		s, ok := v.(string)
		if !ok || s == "" {
			c.add(id, name, ProblemInvalidInputType, true, "input %s: %v is not a file name", name, v)
			return
		}
		if c.models == nil {
			return
		}
		if !slices.Contains(c.models[folder], s) {
			c.add(id, name, ProblemNotInList, false, "model file %q is not in the server's %s folder", s, folder)
		}
		return
	}
	if cls.Name == "LoadImage" && name == "image" {
		// ComfyUI checks that the file exists, not the list (VALIDATE_INPUTS).
		s, ok := v.(string)
		parts := strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' })
		if !ok || s == "" || strings.HasPrefix(s, "/") || slices.Contains(parts, "..") {
			c.add(id, name, ProblemBadImage, true, "input %s: %v is not a plain file name in ComfyUI's input folder", name, v)
		}
		return
	}
	for _, o := range spec.Options {
		if comboEqual(o, v) {
			return
		}
	}
	// ComfyUI 0.3.64 checks classic (list) combos only; new-style COMBO
	// inputs are not list-checked there, so that miss is strict.
	c.add(id, name, ProblemNotInList, strict || !spec.Classic, "input %s: %v is not one of %s", name, v, comboList(spec.Options))
}

func comboEqual(o, v any) bool {
	if os, ok := o.(string); ok {
		vs, ok := v.(string)
		return ok && os == vs
	}
	or, ok1 := toRat(o)
	vr, ok2 := toRat(v)
	return ok1 && ok2 && or.Cmp(vr) == 0
}

func comboList(opts []any) string {
	if len(opts) > 20 {
		return fmt.Sprintf("(a list of %d values)", len(opts))
	}
	parts := make([]string, len(opts))
	for i, o := range opts {
		parts[i] = fmt.Sprint(o)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (c *checker) checkLink(id, name string, spec *InputSpec, v any, strict bool) {
	src, out, ok := AsLink(v)
	if !ok {
		c.add(id, name, ProblemBadLinkedInput, strict, "input %s: %v is not a link [\"<node id>\", <output index>]", name, v)
		return
	}
	srcNode, exists := c.g[src]
	if !exists {
		c.add(id, name, ProblemBadLinkedInput, strict, "input %s links to node %q, which is not in the graph", name, src)
		return
	}
	srcClass := c.schema[srcNode.ClassType]
	if srcClass == nil {
		return // reported on the source node
	}
	if out >= len(srcClass.Output) {
		c.add(id, name, ProblemBadOutput, strict, "input %s links to output %d of %q (%s), which has %d outputs",
			name, out, src, srcClass.Name, len(srcClass.Output))
		return
	}
	got := srcClass.Output[out]
	if !typesFit(got, spec.Type) {
		c.add(id, name, ProblemReturnTypeMismatch, strict, "input %s takes %s, but output %d of %q (%s) is %s",
			name, spec.Type, out, src, srcClass.Name, got)
	}
}

// typesFit is ComfyUI's validate_node_input, non-strict: "*" fits anything,
// and "A,B" unions fit when they share a type.
func typesFit(received, input string) bool {
	if received == input || received == "*" || input == "*" {
		return true
	}
	for _, r := range strings.Split(received, ",") {
		for _, i := range strings.Split(input, ",") {
			if strings.TrimSpace(r) == strings.TrimSpace(i) {
				return true
			}
		}
	}
	return false
}

// edges returns, for every node, the nodes it takes links from (sorted,
// existing nodes only).
func (c *checker) edges() map[string][]string {
	deps := map[string][]string{}
	for _, id := range c.ids {
		seen := map[string]bool{}
		for _, v := range c.g[id].Inputs {
			if src, _, ok := AsLink(v); ok {
				if _, exists := c.g[src]; exists && !seen[src] {
					seen[src] = true
					deps[id] = append(deps[id], src)
				}
			}
		}
		sort.Strings(deps[id])
	}
	return deps
}

func (c *checker) checkStructure() {
	deps := c.edges()

	// Cycles: depth-first search, colouring nodes.
	const (
		white = iota
		grey
		black
	)
	colour := map[string]int{}
	var visit func(id string) bool
	visit = func(id string) bool {
		colour[id] = grey
		for _, d := range deps[id] {
			switch colour[d] {
			case grey:
				c.add(id, "", ProblemCycle, false, "the links through %q and %q form a cycle", id, d)
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		colour[id] = black
		return false
	}
	for _, id := range c.ids {
		if colour[id] == white && visit(id) {
			break // one cycle report is enough
		}
	}

	// Outputs, and every node reaching one.
	var outputs []string
	for _, id := range c.ids {
		if cls := c.class(id); cls != nil && cls.OutputNode {
			outputs = append(outputs, id)
		}
	}
	if len(outputs) == 0 {
		c.add("", "", ProblemNoOutputs, false, "the graph has no output node (a node that saves a result)")
		return
	}
	reach := map[string]bool{}
	stack := append([]string(nil), outputs...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if reach[id] {
			continue
		}
		reach[id] = true
		stack = append(stack, deps[id]...)
	}
	for _, id := range c.ids {
		if !reach[id] {
			c.add(id, "", ProblemUnreachable, true, "node %q feeds no output node; ComfyUI would not run it", id)
		}
	}
}

// checkRules checks the WAN rules ComfyUI does not enforce.
func (c *checker) checkRules() {
	for _, id := range c.ids {
		n := c.g[id]
		switch n.ClassType {
		case ClassImageToVideo, ClassFirstLastFrame:
			for _, dim := range []string{"width", "height"} {
				if v, ok := intValue(n.Inputs[dim]); ok && v%16 != 0 {
					c.add(id, dim, ProblemRule, true, "%s %d is not a multiple of 16", dim, v)
				}
			}
			if v, ok := intValue(n.Inputs["length"]); ok && (v-1)%4 != 0 {
				c.add(id, "length", ProblemRule, true, "length %d is not 4k+1 (the VAE decodes 4k+1 frames)", v)
			}
		case "KSamplerAdvanced":
			c.checkSampler(id, n)
		}
	}
}

// checkSampler checks one KSamplerAdvanced: its step range, and when it
// continues another sampler's latent (the low-noise pass), that the two
// passes split one schedule: same steps, start = the first's end, noise
// added once and handed over as leftover noise.
func (c *checker) checkSampler(id string, n Node) {
	in := n.Inputs
	steps, ok1 := intValue(in["steps"])
	start, ok2 := intValue(in["start_at_step"])
	end, ok3 := intValue(in["end_at_step"])
	if !ok1 || !ok2 || !ok3 {
		return // reported as input problems
	}
	if start >= end || start >= steps {
		c.add(id, "start_at_step", ProblemRule, true, "steps [%d, %d) of %d run nothing", start, end, steps)
		return
	}
	prev, _, linked := AsLink(in["latent_image"])
	prevNode, exists := c.g[prev]
	continues := linked && exists && prevNode.ClassType == "KSamplerAdvanced"
	next := c.nextSampler(id)
	switch {
	case !continues:
		if in["add_noise"] != "enable" {
			c.add(id, "add_noise", ProblemRule, true, "the first sampler must add noise")
		}
		if start != 0 {
			c.add(id, "start_at_step", ProblemRule, true, "the first sampler starts at step %d, not 0", start)
		}
	default:
		p := prevNode.Inputs
		pSteps, _ := intValue(p["steps"])
		pEnd, _ := intValue(p["end_at_step"])
		if pSteps != steps {
			c.add(id, "steps", ProblemRule, true, "steps %d differ from the previous sampler's %d", steps, pSteps)
		}
		if pEnd != start {
			c.add(id, "start_at_step", ProblemRule, true, "starts at step %d, but the previous sampler %q ends at %d", start, prev, pEnd)
		}
		if in["add_noise"] != "disable" {
			c.add(id, "add_noise", ProblemRule, true, "a continuing sampler must not add noise again")
		}
	}
	if next != "" {
		if end < 1 || end > steps-1 {
			c.add(id, "end_at_step", ProblemRule, true, "split step %d is not within 1…%d", end, steps-1)
		}
		if in["return_with_leftover_noise"] != "enable" {
			c.add(id, "return_with_leftover_noise", ProblemRule, true, "a sampler that hands over to %q must return its leftover noise", next)
		}
	} else {
		if end < steps {
			c.add(id, "end_at_step", ProblemRule, true, "the last sampler ends at step %d of %d; the video would stay noisy", end, steps)
		}
		if in["return_with_leftover_noise"] != "disable" {
			c.add(id, "return_with_leftover_noise", ProblemRule, true, "the last sampler must denoise fully")
		}
	}
}

// nextSampler returns a KSamplerAdvanced that takes id's latent, or "".
func (c *checker) nextSampler(id string) string {
	for _, other := range c.ids {
		n := c.g[other]
		if n.ClassType != "KSamplerAdvanced" {
			continue
		}
		if src, _, ok := AsLink(n.Inputs["latent_image"]); ok && src == id {
			return other
		}
	}
	return ""
}

// sortedKeys returns the keys of the maps, merged and sorted.
func sortedKeys[V any](ms ...map[string]V) []string {
	var keys []string
	for _, m := range ms {
		for k := range m {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
