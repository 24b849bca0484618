package safetensors

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// comfyPython returns the Python of ComfyUI's environment (COMFY_PYTHON, or
// $COMFYUI_DIR/venv/bin/python) when it can import safetensors and torch,
// and skips the test otherwise.
func comfyPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("COMFY_PYTHON")
	if py == "" && os.Getenv("COMFYUI_DIR") != "" {
		py = filepath.Join(os.Getenv("COMFYUI_DIR"), "venv", "bin", "python")
	}
	if py == "" {
		t.Skip("set COMFY_PYTHON (or COMFYUI_DIR with a venv) to check files with Python's safetensors")
	}
	if out, err := exec.CommandContext(t.Context(), py, "-c", "import safetensors.torch, torch").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import safetensors and torch: %v\n%s", py, err, out)
	}
	return py
}

const loadScript = `
import json, sys
from safetensors import safe_open
out = {"tensors": {}}
with safe_open(sys.argv[1], framework="pt") as f:
    out["metadata"] = f.metadata()
    for k in f.keys():
        t = f.get_tensor(k)
        if t.dtype.is_floating_point:
            vals = t.float().flatten().tolist()
        elif str(t.dtype) == "torch.uint8":
            vals = list(t.numpy().tobytes())
        else:
            vals = t.flatten().tolist()
        out["tensors"][k] = {"dtype": str(t.dtype), "shape": list(t.shape), "values": vals}
json.dump(out, sys.stdout)
`

// The reference implementation loads what WriteFile writes, holes included,
// with the same values.
func TestPythonLoads(t *testing.T) {
	py := comfyPython(t)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(path, sample(), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), py, "-c", loadScript, path).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got struct {
		Metadata map[string]string `json:"metadata"`
		Tensors  map[string]struct {
			DType  string    `json:"dtype"`
			Shape  []int64   `json:"shape"`
			Values []float64 `json:"values"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", got.Metadata)
	}
	torchName := map[DType]string{F32: "torch.float32", F16: "torch.float16", BF16: "torch.bfloat16",
		F8E4M3: "torch.float8_e4m3fn", I64: "torch.int64", U8: "torch.uint8"}
	for _, st := range sample() {
		g, ok := got.Tensors[st.Name]
		if !ok {
			t.Errorf("%s: not loaded", st.Name)
			continue
		}
		if g.DType != torchName[st.DType] || len(g.Shape) != len(st.Shape) {
			t.Errorf("%s: %s%v, want %s%v", st.Name, g.DType, g.Shape, torchName[st.DType], st.Shape)
		}
		data := want(st)
		var wantVals []float64
		switch {
		case st.DType.Float():
			fs, _ := DecodeFloats(st.DType, data)
			for _, f := range fs {
				wantVals = append(wantVals, float64(f))
			}
		case st.DType == U8:
			for _, b := range data {
				wantVals = append(wantVals, float64(b))
			}
		case st.DType == I64:
			wantVals = []float64{7, 1 << 40}
		}
		if len(g.Values) != len(wantVals) {
			t.Errorf("%s: %d values, want %d", st.Name, len(g.Values), len(wantVals))
			continue
		}
		for i := range wantVals {
			if g.Values[i] != wantVals[i] {
				t.Errorf("%s[%d] = %g, want %g", st.Name, i, g.Values[i], wantVals[i])
			}
		}
	}
}
