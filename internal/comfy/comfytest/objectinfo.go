package comfytest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"github.com/wan22-worker/wan22-worker/internal/workflow"
	"sort"
)

// recordedObjectInfo is GET /object_info of a real ComfyUI 0.3.64 with
// VideoHelperSuite, filtered to the classes the worker uses (see
// testdata/README.md).
//
//go:embed testdata/object_info.json
var recordedObjectInfo []byte

// extraNodes adds the few core classes the recorded sessions used that the
// filtered recording left out (SaveImage, ImageBatch, ModelSave, ...), in the
// same shapes.
//
//go:embed data/extra_nodes.json
var extraNodes []byte

// nodeClass is what validation needs of one class.
type nodeClass struct {
	name       string
	inputs     []inputDef // required, then optional, in input_order
	outputs    []string   // RETURN_TYPES
	outputNode bool
	// custom lists the inputs the class validates itself (VALIDATE_INPUTS),
	// which skips the built-in checks for them.
	custom map[string]bool
}

type inputDef struct {
	name     string
	required bool
	typ      string   // the type name; "" for a classic combo
	options  []string // a classic (V1) combo's list, before model overrides
	combo    bool     // a classic combo: value must be in the list
	extra    obj      // the options object ({} when absent)
}

// catalog is the parsed object_info: the raw classes (for rendering) and the
// validation view.
type catalog struct {
	raw     obj // class → class object, recorded order
	classes map[string]*nodeClass
}

func loadCatalog(base []byte, missing []string) (*catalog, error) {
	if base == nil {
		base = recordedObjectInfo
	}
	v, err := decodeOrdered(base)
	if err != nil {
		return nil, fmt.Errorf("object_info: %w", err)
	}
	raw, ok := v.(obj)
	if !ok {
		return nil, fmt.Errorf("object_info: not an object")
	}
	ev, err := decodeOrdered(extraNodes)
	if err != nil {
		return nil, fmt.Errorf("extra nodes: %w", err)
	}
	for _, e := range ev.(obj) {
		if _, ok := raw.get(e.k); !ok {
			raw = append(raw, e)
		}
	}
	drop := map[string]bool{}
	for _, m := range missing {
		drop[m] = true
	}
	c := &catalog{classes: map[string]*nodeClass{}}
	for _, e := range raw {
		if drop[e.k] {
			continue
		}
		co, ok := e.v.(obj)
		if !ok {
			return nil, fmt.Errorf("object_info: class %s is not an object", e.k)
		}
		nc, err := parseClass(e.k, co)
		if err != nil {
			return nil, fmt.Errorf("object_info: class %s: %w", e.k, err)
		}
		c.raw = append(c.raw, e)
		c.classes[e.k] = nc
	}
	return c, nil
}

func parseClass(name string, co obj) (*nodeClass, error) {
	nc := &nodeClass{name: name, custom: map[string]bool{}}
	if name == "LoadImage" || name == "LoadImageMask" {
		nc.custom["image"] = true
	}
	if on, ok := co.get("output_node"); ok {
		nc.outputNode, _ = on.(bool)
	}
	if out, ok := co.get("output"); ok {
		for _, o := range out.([]any) {
			s, _ := o.(string)
			nc.outputs = append(nc.outputs, s)
		}
	}
	in, _ := co.get("input")
	inputs, _ := in.(obj)
	order, _ := co.get("input_order")
	orderObj, _ := order.(obj)
	for _, cat := range []string{"required", "optional"} {
		section, _ := inputs.get(cat)
		so, _ := section.(obj)
		names := []string{}
		if ov, ok := orderObj.get(cat); ok {
			for _, n := range ov.([]any) {
				names = append(names, n.(string))
			}
		} else {
			for _, e := range so {
				names = append(names, e.k)
			}
		}
		for _, n := range names {
			spec, ok := so.get(n)
			if !ok {
				continue
			}
			d, err := parseInput(n, cat == "required", spec)
			if err != nil {
				return nil, err
			}
			nc.inputs = append(nc.inputs, d)
		}
	}
	return nc, nil
}

func parseInput(name string, required bool, spec any) (inputDef, error) {
	d := inputDef{name: name, required: required, extra: obj{}}
	arr, ok := spec.([]any)
	if !ok || len(arr) == 0 {
		return d, fmt.Errorf("input %s: config is not a list", name)
	}
	switch t := arr[0].(type) {
	case string:
		d.typ = t
	case []any:
		d.combo = true
		for _, o := range t {
			d.options = append(d.options, fmt.Sprint(o))
		}
	default:
		return d, fmt.Errorf("input %s: type is %T", name, arr[0])
	}
	if len(arr) > 1 {
		if e, ok := arr[1].(obj); ok {
			d.extra = e
		}
	}
	return d, nil
}

// options returns the list a combo input accepts, with the model folders and
// the input directory filled in from the server's state.
func (s *Server) comboOptions(class string, d inputDef) []string {
	if folder, ok := workflow.ModelFolder(class, d.name); ok {
		list := s.modelList(folder)
		if folder == "vae" {
			// 0.3.64's VAELoader always offers pixel_space besides the files.
			list = append(list, "pixel_space")
		}
		return list
	}
	if (class == "LoadImage" || class == "LoadImageMask") && d.name == "image" {
		return s.inputFiles()
	}
	return d.options
}

// renderObjectInfo renders GET /object_info (class "" = every class) with the
// combos filled from the server's state.
func (s *Server) renderObjectInfo(class string) ([]byte, error) {
	out := obj{}
	for _, e := range s.catalog.raw {
		if class != "" && e.k != class {
			continue
		}
		// Re-decode so the shared catalog is never mutated.
		b, err := marshal(e.v)
		if err != nil {
			return nil, err
		}
		v, err := decodeOrdered(b)
		if err != nil {
			return nil, err
		}
		co := v.(obj)
		nc := s.catalog.classes[e.k]
		in, _ := co.get("input")
		inputs, _ := in.(obj)
		for _, cat := range []string{"required", "optional"} {
			section, _ := inputs.get(cat)
			so, _ := section.(obj)
			for i, ie := range so {
				for _, d := range nc.inputs {
					if d.name != ie.k || !d.combo {
						continue
					}
					arr := ie.v.([]any)
					list := s.comboOptions(e.k, d)
					anyList := make([]any, len(list))
					for j, l := range list {
						anyList[j] = l
					}
					arr[0] = anyList
					so[i].v = arr
				}
			}
		}
		out = append(out, kv{e.k, co})
	}
	return marshal(out)
}

// DefaultFolders are the model folder keys GET /models lists, as recorded
// from ComfyUI 0.3.64 with VideoHelperSuite.
func DefaultFolders() []string {
	return []string{"checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
		"style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models",
		"custom_nodes", "hypernetworks", "photomaker", "classifiers", "model_patches", "audio_encoders",
		"VHS_video_formats"}
}

// modelList returns the sorted files of a folder.
func (s *Server) modelList(folder string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := append([]string(nil), s.models[folder]...)
	sort.Strings(list)
	return list
}

// jsonList marshals a string list as JSON, never null.
func jsonList(l []string) json.RawMessage {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return b
}
