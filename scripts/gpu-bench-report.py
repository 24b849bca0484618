"""Turns scripts/gpu-bench.sh's logs into one table and gpu-bench.json
(docs/performance.md explains every row)."""
import argparse
import json
import os
import statistics
import subprocess
import sys

# Dense FP8 / BF16 tensor peaks in FLOP/s (no sparsity), by GPU name.
PEAKS = [("H200", 1979e12, 989e12), ("H100 80GB HBM3", 1979e12, 989e12), ("H100 SXM", 1979e12, 989e12),
         ("H100 NVL", 1671e12, 835e12), ("H100 PCIe", 1513e12, 756e12), ("H100", 1513e12, 756e12)]
# One forward pass of a 14B expert at 832×832×81 (docs/performance.md); it scales with the tokens.
FLOP_832x81 = 4.03e15
TOKENS_832x81 = 21 * 52 * 52

LOADERS = {"UNETLoader", "LoraLoaderModelOnly", "CLIPLoader", "VAELoader"}
STAGES = [  # (key, node ids)
    ("text_encode", ("prompt", "negative")),
    ("vae_encode", ("image_to_video",)),
    ("decode", ("decode",)),
    ("video_write", ("video", "frames")),
]


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def system():
    info = {"gpu": None, "driver": None}
    q = sh("nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader")
    if q:
        name, _, drv = q.splitlines()[0].partition(",")
        info.update(gpu=name.strip(), driver=drv.strip())
    try:
        import torch
        info.update(torch=torch.__version__, cuda=torch.version.cuda)
    except ImportError:
        info.update(torch=None, cuda=None)
    return info


def peak(gpu):
    for key, fp8, bf16 in PEAKS:
        if gpu and key in gpu:
            return fp8, bf16
    return None, None


def run_stats(logs, label, width, length):
    trace = [json.loads(x) for x in open(os.path.join(logs, label + ".trace.jsonl"), encoding="utf-8") if x.strip()]
    result = json.load(open(os.path.join(logs, label + ".result.json"), encoding="utf-8"))
    first = {}
    for r in trace:
        first.setdefault(r["event"], r["t"])
    start = first["server_started"] - first["process_start"] if {"server_started", "process_start"} <= first.keys() else None
    # Each executing event starts a node; the next one ends it.
    exe = [r for r in trace if r["event"] == "executing"]
    spans = {}
    for a, b in zip(exe, exe[1:]):
        if a.get("node") is not None:
            spans[a["node"]] = b["t"] - a["t"]
    steps = {}
    for node in ("sampler_high", "sampler_low"):
        t0 = next((r["t"] for r in exe if r.get("node") == node), None)
        ts = [r["t"] for r in trace if r["event"] == "progress" and r.get("node") == node]
        if t0 is None or not ts:
            steps[node] = None
            continue
        d = [b - a for a, b in zip([t0] + ts, ts)]
        steps[node] = {"seconds": round(spans.get(node, ts[-1] - t0), 3), "steps": len(ts), "first_step": round(d[0], 3),
                       "s_per_step": round(statistics.median(d[1:]) if len(d) > 1 else d[0], 3)}
    loads = {n: round(s, 3) for n, s in spans.items() if n.startswith(("unet_", "lora_", "text_encoder", "vae"))
             and n != "vae_encode"}
    out = {"comfyui_start": round(start, 3) if start else None, "model_load": loads}
    for key, nodes in STAGES:
        got = [spans[n] for n in nodes if n in spans]
        out[key] = round(sum(got), 3) if got else None
    out["sampling_high"], out["sampling_low"] = steps["sampler_high"], steps["sampler_low"]
    out["total"] = round(result.get("output", result).get("timings_ms", {}).get("total", 0) / 1000, 3) \
        if isinstance(result, dict) else None
    peaks = [r.get("vram_peak") for r in trace if r.get("vram_peak") is not None]
    out["peak_vram_gib"] = round(max(peaks) / 2**30, 2) if peaks else None
    out["tokens"] = ((length - 1) // 4 + 1) * (width // 16) ** 2
    return out, result


def frames_vary(path):
    """Whether the MP4's frames are not all one flat picture (a NaN or inf
    anywhere in the models decodes to a uniform video). None if PyAV is
    missing."""
    try:
        import av
        import numpy as np
    except ImportError:
        return None
    with av.open(path) as c:
        frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    if not frames:
        return False
    stack = np.stack(frames)
    return bool(np.isfinite(stack).all() and stack.std() > 0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--length", type=int, required=True)
    ap.add_argument("--weights-s", default="null")
    ap.add_argument("--comfyui-commit", default="unknown")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    info = system()
    fp8, bf16 = peak(info["gpu"])
    doc = dict(info, comfyui_commit=a.comfyui_commit, mode=a.mode, width=a.width, height=a.width, frames=a.length,
               weights_s=json.loads(a.weights_s), fp8_peak_flops=fp8, bf16_peak_flops=bf16, runs={})
    bad = []
    for label in a.runs:
        st, result = run_stats(a.logs, label, a.width, a.length)
        # Quadratic attention makes FLOP grow a little faster than tokens; linear scaling is the floor's lower bound.
        flop = FLOP_832x81 * st["tokens"] / TOKENS_832x81
        n = sum(s["steps"] for s in (st["sampling_high"], st["sampling_low"]) if s)
        sampling = sum(s["seconds"] for s in (st["sampling_high"], st["sampling_low"]) if s)
        st["flop_per_forward"] = flop
        st["floor_s"] = round(n * flop / fp8, 3) if fp8 else None
        st["sampling_over_floor"] = round(sampling / st["floor_s"], 1) if st["floor_s"] else None
        st["bf16_floor_s"] = round(n * flop / bf16, 3) if bf16 else None
        out = result.get("output", result)
        if not out.get("sha256") or out.get("frames", 0) < 1:
            bad.append(f"{label}: no video in the result")
        else:
            st["frames_vary"] = frames_vary(os.path.join(a.logs, label + ".mp4"))
            if st["frames_vary"] is False:
                bad.append(f"{label}: the video is one flat picture (NaN or inf in the models?)")
        doc["runs"][label] = st
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"GPU {info['gpu']} | driver {info['driver']} | torch {info['torch']} | CUDA {info['cuda']} | "
          f"ComfyUI {a.comfyui_commit[:12] if len(a.comfyui_commit) == 40 else a.comfyui_commit} | {a.mode} {a.width}x{a.width}x{a.length} | weights {doc['weights_s']} s")
    labels = list(doc["runs"])
    rows = [("ComfyUI start (s)", lambda r: r["comfyui_start"])]
    files = sorted({k for r in doc["runs"].values() for k in r["model_load"]})
    rows += [(f"load {k} (s)", lambda r, k=k: r["model_load"].get(k)) for k in files]
    rows += [("text encode (s)", lambda r: r["text_encode"]), ("VAE encode (s)", lambda r: r["vae_encode"]),
             ("sampling high (s)", lambda r: (r["sampling_high"] or {}).get("seconds")),
             ("  high s/step (first)", lambda r: (r["sampling_high"] or {}).get("first_step")),
             ("  high s/step (steady)", lambda r: (r["sampling_high"] or {}).get("s_per_step")),
             ("sampling low (s)", lambda r: (r["sampling_low"] or {}).get("seconds")),
             ("  low s/step (first)", lambda r: (r["sampling_low"] or {}).get("first_step")),
             ("  low s/step (steady)", lambda r: (r["sampling_low"] or {}).get("s_per_step")),
             ("VAE decode (s)", lambda r: r["decode"]), ("video write (s)", lambda r: r["video_write"]),
             ("total job (s)", lambda r: r["total"]), ("peak VRAM (GiB)", lambda r: r["peak_vram_gib"]),
             ("fp8 floor (s)", lambda r: r["floor_s"]), ("sampling / floor", lambda r: r["sampling_over_floor"]),
             ("bf16 floor (s)", lambda r: r["bf16_floor_s"])]
    print(f"| {'stage':<24} | " + " | ".join(f"{x:>11}" for x in labels) + " |")
    print(f"|{'-' * 26}|" + "|".join("-" * 13 for _ in labels) + "|")
    for name, get in rows:
        print(f"| {name:<24} | " + " | ".join(f"{str(get(doc['runs'][x])):>11}" for x in labels) + " |")
    if bad:
        print("\n".join(bad), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
