package job

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIMatchesContract keeps docs/openapi.json's job schemas in step
// with the parser: the same keys at every level and the same enum values.
func TestOpenAPIMatchesContract(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Items      json.RawMessage            `json:"items"`
		Enum       []any                      `json:"enum"`
		Ref        string                     `json:"$ref"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	sub := func(raw json.RawMessage) schema {
		var s schema
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
			return doc.Components.Schemas[name]
		}
		return s
	}
	keys := func(s schema) []string {
		var k []string
		for name := range s.Properties {
			k = append(k, name)
		}
		sort.Strings(k)
		return k
	}
	sorted := func(x []string) []string {
		x = slices.Clone(x)
		sort.Strings(x)
		return x
	}
	in, opts := doc.Components.Schemas["JobInput"], doc.Components.Schemas["JobOptions"]
	if got, want := keys(in), sorted(inputKeys()); !slices.Equal(got, want) {
		t.Errorf("JobInput keys %v, want %v", got, want)
	}
	if got, want := keys(opts), sorted(optionKeys()); !slices.Equal(got, want) {
		t.Errorf("JobOptions keys %v, want %v", got, want)
	}
	interp := sub(opts.Properties["interpolate"])
	if got, want := keys(interp), sorted(interpolateKeys()); !slices.Equal(got, want) {
		t.Errorf("interpolate keys %v, want %v", got, want)
	}
	lora := sub(sub(opts.Properties["loras"]).Items)
	if got, want := keys(lora), sorted(loraKeys()); !slices.Equal(got, want) {
		t.Errorf("loras[] keys %v, want %v", got, want)
	}
	enums := []struct {
		name string
		s    schema
		want []string
	}{
		{"fit", sub(opts.Properties["fit"]), []string{string(FitCrop), string(FitPad), string(FitStretch)}},
		{"output", sub(opts.Properties["output"]), []string{string(OutputAuto), string(OutputBase64), string(OutputS3), string(OutputVolume)}},
		{"resolution", sub(opts.Properties["resolution"]), Resolutions()},
		{"aspect_ratio", sub(opts.Properties["aspect_ratio"]), AspectRatios()},
		{"preset", sub(opts.Properties["preset"]), Presets()},
		{"distill_lora", sub(opts.Properties["distill_lora"]), DistillLoRAs()},
		{"video_quality", sub(opts.Properties["video_quality"]), VideoQualities()},
		{"interpolate.method", sub(interp.Properties["method"]), InterpolationMethods()},
		{"loras[].expert", sub(lora.Properties["expert"]), []string{string(ExpertBoth), string(ExpertHigh), string(ExpertLow)}},
	}
	for _, e := range enums {
		var got []string
		for _, v := range e.s.Enum {
			s, _ := v.(string)
			got = append(got, s)
		}
		if !slices.Equal(got, e.want) {
			t.Errorf("%s enum %v, want %v", e.name, got, e.want)
		}
	}
}
