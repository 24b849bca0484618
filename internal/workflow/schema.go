package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
)

// Schema is the node catalogue of a ComfyUI server as GET /object_info
// reports it: class name → class.
type Schema map[string]*Class

// Class is one node class of the schema.
type Class struct {
	Name       string
	Required   map[string]*InputSpec
	Optional   map[string]*InputSpec
	Output     []string // output types, by index
	OutputNode bool
}

// The value types of widget inputs. Every other type name ("MODEL", "IMAGE",
// ...) is a link type: the input takes a link from an output of that type.
const (
	TypeInt     = "INT"
	TypeFloat   = "FLOAT"
	TypeString  = "STRING"
	TypeBoolean = "BOOLEAN"
	TypeCombo   = "COMBO" // a list of allowed values
)

// InputSpec is one input of a class. object_info writes it as
// [type, {options}], where type is a type name, or a list of allowed values
// (a classic combo); new-style nodes write a combo as ["COMBO", {"options":
// [...]}]. Both combo forms parse to Type "COMBO" with Options set.
type InputSpec struct {
	Name    string
	Type    string
	Options []any // combo values (strings, or json.Number for numeric combos)
	// Classic is true for a combo written as a list of values, which is the
	// only kind ComfyUI 0.3.64 checks values against; "COMBO" inputs of
	// new-style nodes are not checked there.
	Classic bool
	Min     *big.Rat // nil when the spec sets none
	Max     *big.Rat
	// Formats holds per-value extra inputs of a combo (VideoHelperSuite's
	// format widgets: "video/h264-mp4" → pix_fmt, crf, ...). When the combo
	// has one of these values, its widgets are accepted as inputs of the
	// same node.
	Formats map[string][]*InputSpec
}

// Input returns the spec of a declared input and whether it is required.
func (c *Class) Input(name string) (spec *InputSpec, required, ok bool) {
	if s, ok := c.Required[name]; ok {
		return s, true, true
	}
	if s, ok := c.Optional[name]; ok {
		return s, false, true
	}
	return nil, false, false
}

// LoadSchema reads an /object_info response (all classes, or any subset).
func LoadSchema(r io.Reader) (Schema, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := decodeNumbers(data, &raw); err != nil {
		return nil, fmt.Errorf("object_info: %w", err)
	}
	return SchemaFrom(raw)
}

// SchemaFrom parses the per-class entries of an /object_info response.
func SchemaFrom(objectInfo map[string]json.RawMessage) (Schema, error) {
	s := Schema{}
	names := make([]string, 0, len(objectInfo))
	for name := range objectInfo {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		c, err := parseClass(name, objectInfo[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("object_info: %s: %w", name, err))
			continue
		}
		s[name] = c
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

type rawClass struct {
	Input struct {
		Required map[string]json.RawMessage `json:"required"`
		Optional map[string]json.RawMessage `json:"optional"`
	} `json:"input"`
	Output     []json.RawMessage `json:"output"`
	OutputNode bool              `json:"output_node"`
}

func parseClass(name string, data json.RawMessage) (*Class, error) {
	var rc rawClass
	if err := decodeNumbers(data, &rc); err != nil {
		return nil, err
	}
	c := &Class{Name: name, Required: map[string]*InputSpec{}, Optional: map[string]*InputSpec{}, OutputNode: rc.OutputNode}
	for _, o := range rc.Output {
		// An output type is a name; a list (a combo output) is typed COMBO.
		var t string
		if err := json.Unmarshal(o, &t); err != nil {
			t = TypeCombo
		}
		c.Output = append(c.Output, t)
	}
	for group, in := range map[string]map[string]json.RawMessage{"required": rc.Input.Required, "optional": rc.Input.Optional} {
		for n, raw := range in {
			spec, err := parseSpec(n, raw)
			if err != nil {
				return nil, fmt.Errorf("%s input %s: %w", group, n, err)
			}
			if group == "required" {
				c.Required[n] = spec
			} else {
				c.Optional[n] = spec
			}
		}
	}
	return c, nil
}

// parseSpec parses [type, {options}].
func parseSpec(name string, raw json.RawMessage) (*InputSpec, error) {
	var parts []json.RawMessage
	if err := decodeNumbers(raw, &parts); err != nil || len(parts) == 0 {
		return nil, errors.New("want [type, {options}]")
	}
	var opts json.RawMessage
	if len(parts) > 1 {
		opts = parts[1]
	}
	return specFrom(name, parts[0], opts)
}

// specFrom builds a spec from its type part (a name or a list of values) and
// its options object (may be nil).
func specFrom(name string, typ, opts json.RawMessage) (*InputSpec, error) {
	spec := &InputSpec{Name: name}
	var values []any
	if err := decodeNumbers(typ, &values); err == nil {
		spec.Type, spec.Options, spec.Classic = TypeCombo, values, true
	} else if err := json.Unmarshal(typ, &spec.Type); err != nil {
		return nil, errors.New("type is neither a name nor a list of values")
	}
	if len(opts) == 0 || bytes.Equal(bytes.TrimSpace(opts), []byte("null")) {
		return spec, nil
	}
	var o map[string]json.RawMessage
	if err := decodeNumbers(opts, &o); err != nil {
		return nil, errors.New("options are not an object")
	}
	// Each option is read on its own; one we cannot read carries nothing we check.
	spec.Min = ratOption(o["min"])
	spec.Max = ratOption(o["max"])
	if spec.Type == TypeCombo && spec.Options == nil {
		if err := decodeNumbers(o["options"], &spec.Options); err != nil || spec.Options == nil {
			spec.Options = []any{}
		}
	}
	var formats map[string][]json.RawMessage
	if raw, ok := o["formats"]; ok {
		if err := decodeNumbers(raw, &formats); err != nil {
			return nil, errors.New("formats is not an object of widget lists")
		}
	}
	if len(formats) > 0 {
		spec.Formats = map[string][]*InputSpec{}
		for value, widgets := range formats {
			for _, w := range widgets {
				ws, err := parseWidget(w)
				if err != nil {
					return nil, fmt.Errorf("format %s: %w", value, err)
				}
				spec.Formats[value] = append(spec.Formats[value], ws)
			}
		}
	}
	return spec, nil
}

// parseWidget parses a VideoHelperSuite format widget: [name, type or list,
// {options}?, template?].
func parseWidget(raw json.RawMessage) (*InputSpec, error) {
	var parts []json.RawMessage
	if err := decodeNumbers(raw, &parts); err != nil || len(parts) < 2 {
		return nil, errors.New("want a widget [name, type, {options}]")
	}
	var name string
	if err := json.Unmarshal(parts[0], &name); err != nil {
		return nil, errors.New("widget name is not a string")
	}
	var opts json.RawMessage
	if len(parts) > 2 {
		opts = parts[2]
	}
	return specFrom(name, parts[1], opts)
}

func ratOption(raw json.RawMessage) *big.Rat {
	var n json.Number
	if len(raw) == 0 || decodeNumbers(raw, &n) != nil {
		return nil
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return nil
	}
	return r
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}
