package testmodels

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// comfyUI returns a ComfyUI checkout (COMFYUI_DIR) and the Python of its
// environment (COMFY_PYTHON, default $COMFYUI_DIR/venv/bin/python) when that
// Python imports torch, and skips the test otherwise.
func comfyUI(t *testing.T) (dir, python string) {
	t.Helper()
	dir = os.Getenv("COMFYUI_DIR")
	if dir == "" {
		t.Skip("set COMFYUI_DIR to a ComfyUI checkout to check the fixtures against ComfyUI's own model classes")
	}
	if _, err := os.Stat(filepath.Join(dir, "comfy", "ldm", "wan", "vae.py")); err != nil {
		t.Skipf("COMFYUI_DIR=%s is not a ComfyUI checkout with WAN support: %v", dir, err)
	}
	python = os.Getenv("COMFY_PYTHON")
	if python == "" {
		python = filepath.Join(dir, "venv", "bin", "python")
	}
	if out, err := exec.CommandContext(t.Context(), python, "-c", "import torch, sentencepiece").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import torch and sentencepiece: %v\n%s", python, err, out)
	}
	return dir, python
}

// checkScript builds ComfyUI's own modules on PyTorch's meta device (no
// memory, no weights) and compares their parameters with the fixtures'
// headers, runs ComfyUI's model detection on the diffusion model, and loads
// the tokenizer with sentencepiece.
const checkScript = `
import base64, json, os, sys
sys.path.insert(0, os.getcwd())
import comfy.options
import comfy.cli_args
comfy.cli_args.args.cpu = True
import torch
import comfy.model_management, comfy.ops, comfy.model_detection
import comfy.ldm.wan.vae, comfy.ldm.wan.model, comfy.text_encoders.t5
import sentencepiece

inp = json.load(sys.stdin)
DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F8_E4M3": torch.float8_e4m3fn, "U8": torch.uint8}

def compare(got, module):
    want = {k: list(v.shape) for k, v in module.state_dict().items()}
    got = {k: v["shape"] for k, v in got.items()}
    return {"missing": sorted(set(want) - set(got)), "unexpected": sorted(set(got) - set(want)),
            "shape_mismatch": sorted(k for k in set(got) & set(want) if got[k] != want[k])}

out = {}
with torch.device("meta"):
    vae = comfy.ldm.wan.vae.WanVAE(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[], temperal_downsample=[False, True, True])
out["vae"] = compare(inp["vae"], vae)

unet = inp["unet"]
sd = {k: torch.empty(v["shape"], dtype=DT[v["dtype"]], device="meta") for k, v in unet.items()}
cfg = comfy.model_detection.detect_unet_config(sd, "")
mc = comfy.model_detection.model_config_from_unet(sd, "")
ops = comfy.ops.scaled_fp8_ops(fp8_matrix_mult=False, override_dtype=torch.float8_e4m3fn)
uc = {k: v for k, v in cfg.items() if k != "image_model"}
net = comfy.ldm.wan.model.WanModel(**uc, device="meta", dtype=torch.float32, operations=ops)
out["unet"] = compare({k: v for k, v in unet.items() if k != "scaled_fp8"}, net)
out["unet"]["class"] = type(mc).__name__
out["unet"]["config"] = {k: str(v) for k, v in cfg.items()}
out["unet"]["fp8_optimizations"] = bool(mc.optimizations.get("fp8"))

conf = json.load(open("comfy/text_encoders/umt5_config_xxl.json"))
t5 = comfy.text_encoders.t5.T5(conf, torch.float16, "meta", ops)
t5.scaled_fp8 = torch.nn.Parameter(torch.tensor([], dtype=torch.float8_e4m3fn, device="meta"))
out["umt5"] = compare({k: v for k, v in inp["umt5"].items() if k != "spiece_model"}, t5)

sp = sentencepiece.SentencePieceProcessor(model_proto=base64.b64decode(inp["spm"]), add_bos=False, add_eos=True)
text = "a cat walks on the grass, slowly!"
out["spm"] = {"size": sp.get_piece_size(), "empty": sp.encode(""), "ids": sp.encode(text),
              "decoded": sp.decode(sp.encode(text)), "pad": sp.pad_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "bos": sp.bos_id()}
json.dump(out, sys.stdout)
`

type keyDiff struct {
	Missing       []string `json:"missing"`
	Unexpected    []string `json:"unexpected"`
	ShapeMismatch []string `json:"shape_mismatch"`
}

func headerOf(ts []safetensors.Tensor) map[string]any {
	m := map[string]any{}
	for _, t := range ts {
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		m[t.Name] = map[string]any{"dtype": t.DType, "shape": shape}
	}
	return m
}

// The fixtures, tiny and full-size, have exactly the parameters of ComfyUI's
// own WAN VAE, WAN model and UMT5 classes, the diffusion model is detected as
// the real WAN 2.2 I2V experts are (at full size with the real 14B
// configuration), and the tokenizer loads with the ids ComfyUI expects.
func TestFixturesMatchComfyUI(t *testing.T) {
	t.Parallel() // a few seconds of Python start-up, overlapped with the other tests
	dir, python := comfyUI(t)
	for _, tc := range []struct {
		name string
		dims wanDims
		full bool
		want map[string]string
	}{
		{"tiny", tinyWAN, false, map[string]string{"dim": "128", "in_dim": "36", "out_dim": "16", "num_heads": "1", "num_layers": "1", "ffn_dim": "256", "model_type": "t2v"}},
		{"full", fullWAN, true, map[string]string{"dim": "5120", "in_dim": "36", "out_dim": "16", "num_heads": "40", "num_layers": "40", "ffn_dim": "13824", "freq_dim": "256", "model_type": "t2v"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkAgainstComfyUI(t, dir, python, tc.dims, tc.full, tc.want) })
	}
}

func checkAgainstComfyUI(t *testing.T, dir, python string, dims wanDims, full bool, wantConfig map[string]string) {
	in, err := json.Marshal(map[string]any{
		"vae":  headerOf(wanVAE(4, safetensors.BF16)),
		"unet": headerOf(wanModel(1, dims)),
		"umt5": headerOf(umt5(5, full)),
		"spm":  spmModel(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), python, "-c", checkScript)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var got struct {
		VAE  keyDiff `json:"vae"`
		UMT5 keyDiff `json:"umt5"`
		UNet struct {
			keyDiff
			Class  string            `json:"class"`
			Config map[string]string `json:"config"`
			FP8Opt bool              `json:"fp8_optimizations"`
		} `json:"unet"`
		SPM struct {
			Size    int    `json:"size"`
			Empty   []int  `json:"empty"`
			IDs     []int  `json:"ids"`
			Decoded string `json:"decoded"`
			Pad     int    `json:"pad"`
			EOS     int    `json:"eos"`
			UNK     int    `json:"unk"`
			BOS     int    `json:"bos"`
		} `json:"spm"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for name, d := range map[string]keyDiff{"vae": got.VAE, "unet": got.UNet.keyDiff, "umt5": got.UMT5} {
		if len(d.Missing)+len(d.Unexpected)+len(d.ShapeMismatch) > 0 {
			t.Errorf("%s: missing %v, unexpected %v, wrong shape %v", name, d.Missing, d.Unexpected, d.ShapeMismatch)
		}
	}
	if got.UNet.Class != "WAN21_T2V" {
		t.Errorf("diffusion model detected as %s, want WAN21_T2V (as the real WAN 2.2 I2V experts)", got.UNet.Class)
	}
	for k, v := range wantConfig {
		if got.UNet.Config[k] != v {
			t.Errorf("detected %s = %s, want %s", k, got.UNet.Config[k], v)
		}
	}
	if got.UNet.FP8Opt {
		t.Error("scaled_fp8 marker turned fp8 optimizations on; want off (2 elements)")
	}
	s := got.SPM
	if s.Size != spmVocabSize() || s.Pad != 0 || s.EOS != 1 || s.UNK != 2 || s.BOS != -1 {
		t.Errorf("tokenizer: size %d pad %d eos %d unk %d bos %d", s.Size, s.Pad, s.EOS, s.UNK, s.BOS)
	}
	if !slices.Equal(s.Empty, []int{1}) {
		t.Errorf(`encode("") = %v, want [1] (eos)`, s.Empty)
	}
	if s.Decoded != "a cat walks on the grass, slowly!" || slices.Contains(s.IDs, 2) || s.IDs[len(s.IDs)-1] != 1 {
		t.Errorf("tokenizer: ids %v decode to %q", s.IDs, s.Decoded)
	}
}
