#!/usr/bin/env bash
# gpu-bench-bundle.sh: pack everything scripts/gpu-bench.sh needs on a GPU
# machine without network into one archive under 60 MiB (docs/performance.md):
#
#   COMFYUI_DIR=/path/to/comfyui make gpu-bundle      # writes dist/wan22-gpu-bench.tar.gz
#
# It packs the ComfyUI working copy COMFYUI_DIR points at (it never fetches
# ComfyUI: without .git, venv, models, tests or custom nodes), the wheels
# that ComfyUI needs and such a machine lacks (downloaded from PyPI into
# WHEELS_DIR unless they are there already), the worker and mkmodels
# binaries, and the bench scripts. BUNDLE_VHS=1 also packs
# custom_nodes/ComfyUI-VideoHelperSuite (it loads only where opencv and
# ffmpeg are installed: their wheels alone are over the limit).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
: "${COMFYUI_DIR:?set COMFYUI_DIR to a ComfyUI v0.3.64 working copy}"
[ -f "$COMFYUI_DIR/main.py" ] || { echo "gpu-bench-bundle: $COMFYUI_DIR has no main.py" >&2; exit 2; }
wheels=${WHEELS_DIR:-$root/dist/wheels}
out=${BUNDLE:-$root/dist/wan22-gpu-bench.tar.gz}
limit=$((60 << 20))

# The packages ComfyUI v0.3.64 cannot start without that a machine with
# torch 2.11, numpy, safetensors, aiohttp, einops, transformers,
# sentencepiece, pillow, scipy, psutil, pyyaml and tqdm lacks.
requirements=(torchsde==0.2.6 trampoline==0.1.2 av==15.1.0 torchvision==0.26.0)
mkdir -p "$wheels"
printf '%s\n' "${requirements[@]}" >"$wheels/requirements.txt"
missing=0
for r in "${requirements[@]}"; do
  compgen -G "$wheels/${r%%==*}-${r##*==}-*.whl" >/dev/null || missing=1
done
if [ "$missing" = 1 ]; then
  python3 -m pip download --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.12 \
    --no-deps -d "$wheels" "${requirements[@]}"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b=$stage/wan22-gpu-bench
mkdir -p "$b/bin" "$b/scripts" "$b/wheels"
(cd "$root" && make -s build BIN="$b/bin/wan22-worker" \
  && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$b/bin/mkmodels" ./cmd/mkmodels)
cp "$root/scripts/gpu-bench.sh" "$root/scripts/gpu-bench-report.py" "$b/scripts/"
cp -r "$root/scripts/gpu-bench" "$b/scripts/"
find "$b/scripts" -name __pycache__ -prune -exec rm -rf {} +
for r in "${requirements[@]}"; do cp "$wheels/${r%%==*}-${r##*==}-"*.whl "$b/wheels/"; done
cp "$wheels/requirements.txt" "$b/wheels/"

excludes=(--exclude=./.git --exclude=./venv --exclude=./models --exclude=./output --exclude=./input
  --exclude=./temp --exclude=./user --exclude=./tests --exclude=./tests-unit --exclude=./custom_nodes
  --exclude=__pycache__ --exclude='*.pyc' --exclude=./.github)
mkdir -p "$b/comfyui/custom_nodes"
tar -C "$COMFYUI_DIR" "${excludes[@]}" -cf - . | tar -C "$b/comfyui" -xf -
vhs=$COMFYUI_DIR/custom_nodes/ComfyUI-VideoHelperSuite
if [ "${BUNDLE_VHS:-0}" = 1 ] && [ -d "$vhs" ]; then
  tar -C "$COMFYUI_DIR/custom_nodes" --exclude=.git --exclude=__pycache__ -cf - ComfyUI-VideoHelperSuite | tar -C "$b/comfyui/custom_nodes" -xf -
fi
git -C "$COMFYUI_DIR" rev-parse HEAD >"$b/comfyui/COMFYUI_COMMIT" 2>/dev/null || echo unknown >"$b/comfyui/COMFYUI_COMMIT"

mkdir -p "$(dirname "$out")"
tar -C "$stage" -czf "$out" wan22-gpu-bench
size=$(stat -c %s "$out")
echo "$out: $size bytes ($((size >> 20)) MiB; limit 60 MiB)"
du -sh "$b"/* | sed 's|'"$b"'/||'
if [ "$size" -gt "$limit" ]; then
  echo "gpu-bench-bundle: the bundle is over 60 MiB" >&2
  exit 1
fi
