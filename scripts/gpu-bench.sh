#!/usr/bin/env bash
# gpu-bench.sh: one offline, full-size run of the production graph, timed per
# stage (docs/performance.md).
#
#   COMFYUI_DIR=/path/to/comfyui [WHEELS_DIR=wheels] scripts/gpu-bench.sh [flags]
#
#   --quick          480×480, 33 frames instead of 832×832, 81
#   --skip-weights   reuse the weights already in WORK_DIR
#   --no-compile     only the TORCH_COMPILE=0 run
#   --sage           one more run with COMFY_ATTENTION=sage (needs sageattention)
#   --cpu --tiny     the end-to-end tier's tiny models on ComfyUI's CPU mode
#                    (64×64, 5 frames, 2 steps): checks the script itself
#
# Environment: COMFYUI_DIR (required), COMFY_PYTHON (default
# $COMFYUI_DIR/venv/bin/python if present, else python3), WHEELS_DIR (wheels
# to install offline first), WORK_DIR (weights and logs, default
# /tmp/wan22-bench), WORKER_BIN and MKMODELS_BIN (default: built with go, or
# bin/ next to this script in a bundle), BUDGET_S (default 480: the compiled
# runs start only if the time spent so far leaves room), OUT (the JSON goes to
# $OUT/gpu-bench.json, else ./gpu-bench.json).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
quick=0 skip_weights=0 compile=1 sage=0 cpu=0 tiny=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --skip-weights) skip_weights=1 ;;
    --no-compile) compile=0 ;;
    --sage) sage=1 ;;
    --cpu) cpu=1 ;;
    --tiny) tiny=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu-bench: unknown flag $a (see --help)" >&2; exit 2 ;;
  esac
done
t_begin=$(date +%s.%N)
log() { printf '[gpu-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
since() { python3 -c "import sys,time; print(round(time.time()-float(sys.argv[1]),3))" "$1"; }

: "${COMFYUI_DIR:?set COMFYUI_DIR to a ComfyUI v0.3.64 working copy (docs/performance.md)}"
[ -f "$COMFYUI_DIR/main.py" ] || { echo "gpu-bench: $COMFYUI_DIR has no main.py" >&2; exit 2; }
if [ -z "${COMFY_PYTHON:-}" ]; then
  if [ -x "$COMFYUI_DIR/venv/bin/python" ]; then COMFY_PYTHON=$COMFYUI_DIR/venv/bin/python; else COMFY_PYTHON=python3; fi
fi
work=${WORK_DIR:-/tmp/wan22-bench}
mkdir -p "$work/logs" "$work/bin"
out_json=${OUT:+$OUT/gpu-bench.json}
out_json=${out_json:-./gpu-bench.json}

# 1. Python packages, offline.
if [ -n "${WHEELS_DIR:-}" ]; then
  log "installing wheels from $WHEELS_DIR"
  "$COMFY_PYTHON" -m pip install --no-index --find-links "$WHEELS_DIR" -r "$WHEELS_DIR/requirements.txt" >"$work/logs/pip.log" 2>&1 \
    || { tail -20 "$work/logs/pip.log" >&2; exit 1; }
fi

# 2. Binaries: given, in a bundle's bin/, or built here.
worker=${WORKER_BIN:-} mkmodels=${MKMODELS_BIN:-}
if [ -z "$worker" ] && [ ! -f "$root/go.mod" ] && [ -x "$root/bin/wan22-worker" ] && [ -x "$root/bin/mkmodels" ]; then  # a bundle
  worker=$root/bin/wan22-worker mkmodels=$root/bin/mkmodels
fi
if [ -z "$worker" ] || [ -z "$mkmodels" ]; then
  log "building the worker"
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/bin/wan22-worker" ./cmd/wan22-worker \
    && CGO_ENABLED=0 go build -trimpath -o "$work/bin/mkmodels" ./cmd/mkmodels)
  worker=${worker:-$work/bin/wan22-worker} mkmodels=${mkmodels:-$work/bin/mkmodels}
fi

# 3. Weights.
size=full; [ "$tiny" = 1 ] && size=tiny
models=$work/models-$size
weights_s=null
if [ "$skip_weights" = 1 ] && [ -f "$models/.complete" ]; then
  log "reusing the weights in $models"
else
  log "writing the $size weights to $models"
  t0=$(date +%s.%N)
  rm -rf "$models"
  full_flag=(); [ "$tiny" = 0 ] && full_flag=(--full)
  "$mkmodels" --dir "$models" "${full_flag[@]}" >&2
  touch "$models/.complete"
  weights_s=$(since "$t0")
  log "weights written in ${weights_s}s"
fi

# 4. ComfyUI's arguments: the trace hook, and an empty frontend if the package is absent.
cat >"$work/bench-paths.yaml" <<YAML
wan22_bench:
  custom_nodes: $here/gpu-bench
YAML
extra="--extra-model-paths-config $work/bench-paths.yaml"
if ! "$COMFY_PYTHON" -c "import comfyui_frontend_package" 2>/dev/null; then
  mkdir -p "$work/web"; extra="$extra --front-end-root $work/web"
fi

# 5. The job: the default options (832×832, 81 frames, 6 steps 3/3, cfg 1, the LoRA on both experts).
if [ "$tiny" = 1 ]; then w=64 len=5 steps=(--steps 2)
elif [ "$quick" = 1 ]; then w=480 len=33 steps=()
else w=832 len=81 steps=()
fi
img=$work/input.png
"$COMFY_PYTHON" -c "
from PIL import Image
im = Image.new('RGB', ($w, $w))
im.putdata([((x*255)//$w, (y*255)//$w, 128) for y in range($w) for x in range($w)])
im.save('$img')"

runs=()
run() { # label, env assignments...
  local label=$1; shift
  local trace=$work/logs/$label.trace.jsonl res=$work/logs/$label.result.json wlog=$work/logs/$label.worker.log
  rm -f "$trace"
  log "run $label ($*)"
  local t0; t0=$(date +%s.%N)
  if ! env "$@" WAN22_BENCH_TRACE="$trace" COMFYUI_DIR="$COMFYUI_DIR" COMFY_PYTHON="$COMFY_PYTHON" \
      MODELS_DIRS="$models" COMFY_EXTRA_ARGS="$extra" COMFY_START_TIMEOUT=15m LOG_FORMAT=json \
      COMFY_LOG_FILE="$work/logs/$label.comfyui.log" \
      "$worker" generate --image "$img" --prompt "a red fox runs through snow, cinematic" \
      --width "$w" --height "$w" --length "$len" "${steps[@]}" --seed 42 --id "bench-$label" \
      -o "$work/logs/$label.mp4" >"$res" 2>"$wlog"; then
    tail -30 "$wlog" >&2; cat "$res" >&2; return 1
  fi
  log "run $label took $(since "$t0")s"
  runs+=("$label")
}
base_env=(TORCH_COMPILE=0)
[ "$cpu" = 1 ] && base_env+=(COMFY_VRAM_MODE=cpu)
run eager "${base_env[@]}"
elapsed() { python3 -c "import time; print(int(time.time()-$t_begin))"; }
budget=${BUDGET_S:-480}
if [ "$cpu" = 0 ] && [ "$compile" = 1 ]; then
  if [ "$(elapsed)" -lt $((budget / 2)) ]; then
    run compiled-1 TORCH_COMPILE=1
    [ "$(elapsed)" -lt "$budget" ] && run compiled-2 TORCH_COMPILE=1
  else
    log "no time left in BUDGET_S=$budget for the compiled runs"
  fi
fi
if [ "$sage" = 1 ]; then
  if "$COMFY_PYTHON" -c "import sageattention" 2>/dev/null; then run sage TORCH_COMPILE=0 COMFY_ATTENTION=sage
  else log "sageattention is not installed: no sage run"; fi
fi

# 6. The table and the JSON.
commit=$(git -C "$COMFYUI_DIR" rev-parse HEAD 2>/dev/null || cat "$COMFYUI_DIR/COMFYUI_COMMIT" 2>/dev/null \
  || sed -n 's/^__version__ = "\(.*\)"/v\1 (no commit)/p' "$COMFYUI_DIR/comfyui_version.py")
mode=full; [ "$quick" = 1 ] && mode=quick; [ "$tiny" = 1 ] && mode=tiny
[ "$cpu" = 1 ] && mode="$mode-cpu"
"$COMFY_PYTHON" "$here/gpu-bench-report.py" --logs "$work/logs" --out "$out_json" --mode "$mode" \
  --width "$w" --length "$len" --weights-s "$weights_s" --comfyui-commit "$commit" "${runs[@]}"
log "wrote $out_json"
