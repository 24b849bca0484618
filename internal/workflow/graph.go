// Package workflow builds the ComfyUI API-format graph that runs one WAN 2.2
// image-to-video job (DESIGN.md §5, docs/workflow.md), and checks any such
// graph against a recorded ComfyUI /object_info the way ComfyUI's own
// validation does, and stricter.
//
// The builder is pure: the same job, model profile and capabilities always
// give the same graph, with the same readable node ids ("unet_high",
// "sampler_low", "video", ...), so that ComfyUI's cache keeps the models
// loaded between jobs and golden files can pin the output.
package workflow

import (
	"encoding/json"
	"math"
	"math/big"
)

// Graph is a ComfyUI API-format prompt: node id → node. Encoded as JSON it is
// exactly the "prompt" object of POST /prompt. Go marshals map keys sorted,
// so the encoding is deterministic.
type Graph map[string]Node

// Node is one node of a graph. An input value is either a constant (string,
// number, bool) or a link to an output of another node, written
// ["<node id>", <output index>] (see Link).
type Node struct {
	ClassType string         `json:"class_type"`
	Inputs    map[string]any `json:"inputs"`
	Meta      *Meta          `json:"_meta,omitempty"`
}

// Meta is the optional "_meta" of a node; ComfyUI ignores it. The builder
// sets a title so that a printed graph reads well.
type Meta struct {
	Title string `json:"title"`
}

// Link returns the API-format value that connects an input to output index
// out of node id.
func Link(id string, out int) []any { return []any{id, out} }

// AsLink reports whether v is a link ["<id>", index] and returns its parts.
// It accepts the forms the builder writes and the forms encoding/json decodes
// (float64 or json.Number index). A list that is not a well-formed link
// returns ok false.
func AsLink(v any) (id string, out int, ok bool) {
	l, isList := v.([]any)
	if !isList || len(l) != 2 {
		return "", 0, false
	}
	id, ok = l[0].(string)
	if !ok {
		return "", 0, false
	}
	n, isNum := toRat(l[1])
	if !isNum || !n.IsInt() || !n.Num().IsInt64() {
		return "", 0, false
	}
	i := n.Num().Int64()
	if i < 0 || i > math.MaxInt32 {
		return "", 0, false
	}
	return id, int(i), true
}

// isList reports whether v is a JSON list (which ComfyUI always treats as a
// link, well-formed or not).
func isList(v any) bool {
	_, ok := v.([]any)
	return ok
}

// ParseGraph decodes an API-format graph. Numbers are kept exact
// (json.Number), so 64-bit seeds survive.
func ParseGraph(data []byte) (Graph, error) {
	var g Graph
	if err := decodeNumbers(data, &g); err != nil {
		return nil, err
	}
	return g, nil
}

// toRat converts any number the graph may hold (Go integer and float types
// from the builder, float64 or json.Number from a decoder) to an exact
// rational. ok is false for anything that is not a number, and for NaN and
// infinities.
func toRat(v any) (*big.Rat, bool) {
	r := new(big.Rat)
	switch n := v.(type) {
	case int:
		return r.SetInt64(int64(n)), true
	case int32:
		return r.SetInt64(int64(n)), true
	case int64:
		return r.SetInt64(n), true
	case uint:
		return r.SetUint64(uint64(n)), true
	case uint32:
		return r.SetUint64(uint64(n)), true
	case uint64:
		return r.SetUint64(n), true
	case float32:
		return floatRat(float64(n))
	case float64:
		return floatRat(n)
	case json.Number:
		if _, ok := r.SetString(string(n)); ok {
			return r, true
		}
		return nil, false
	}
	return nil, false
}

func floatRat(f float64) (*big.Rat, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, false
	}
	return new(big.Rat).SetFloat64(f), true
}

// intValue returns v as an int64 when it is an integral number that fits.
func intValue(v any) (int64, bool) {
	r, ok := toRat(v)
	if !ok || !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}
