#!/usr/bin/env bash
# Runs one job end to end without a GPU or ComfyUI: builds the worker and the
# fake ComfyUI (cmd/fakecomfy), starts the fake on a free loopback port, runs
#   wan22-worker generate --image <the PNG of test_input.json> ... -o demo.mp4
# against it (COMFY_URL), prints the result JSON and stops the fake.
# The fake runs the real request sequence (upload, /prompt, websocket
# progress, /history, /view) and encodes a real H.264 MP4 of the image with
# ffmpeg, which is installed first when missing (scripts/setup-test-deps.sh,
# as root on Debian/Ubuntu).
#
#   scripts/demo.sh            (or: make demo)
#   DEMO_OUT=clip.mp4 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${DEMO_OUT:-demo.mp4}
BIN=bin

log() { echo "demo: $*" >&2; }

if ! command -v ffmpeg >/dev/null 2>&1; then
  log "ffmpeg is missing; installing the test dependencies"
  ./scripts/setup-test-deps.sh
fi
command -v go >/dev/null 2>&1 || { log "Go 1.26 or newer is required (https://go.dev/dl/)"; exit 1; }

log "building $BIN/wan22-worker (as make build does: stamped with VERSION and the commit) and $BIN/fakecomfy"
mkdir -p "$BIN"
if command -v make >/dev/null 2>&1; then
  make --no-print-directory build >&2
else
  pkg=github.com/wan22-worker/wan22-worker
  version=$(cat VERSION 2>/dev/null || echo dev)
  commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $pkg/internal/version.Version=$version -X $pkg/internal/version.Commit=$commit" \
    -o "$BIN/wan22-worker" ./cmd/wan22-worker
fi
CGO_ENABLED=0 go build -trimpath -o "$BIN/fakecomfy" ./cmd/fakecomfy
log "$("$BIN/wan22-worker" version 2>&1 | head -n 1)"

work=$(mktemp -d "${TMPDIR:-/tmp}/wan22-demo.XXXXXX")
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then
    kill "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The job of test_input.json: its prompt, and its image (base64 on one line).
json_string() { sed -n "s/^[[:space:]]*\"$1\":[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" test_input.json | head -n 1; }
prompt=$(json_string prompt)
json_string image | base64 -d >"$work/input.png"
if [ -z "$prompt" ] || [ ! -s "$work/input.png" ]; then
  log "could not read the prompt and image of test_input.json"
  exit 1
fi

# Port 0: the kernel picks a free port; the fake logs the URL it listens on.
"$BIN/fakecomfy" --addr 127.0.0.1:0 --dir "$work/comfyui" --step-delay 100ms >"$work/fakecomfy.log" 2>&1 &
fake_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/.*msg="fake ComfyUI listening" url=\([^ ]*\).*/\1/p' "$work/fakecomfy.log")
  [ -n "$url" ] && break
  kill -0 "$fake_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  log "the fake ComfyUI did not start; its log:"
  cat "$work/fakecomfy.log" >&2
  exit 1
fi
log "fake ComfyUI at $url"

log "wan22-worker generate -o $OUT (progress below, result JSON on stdout)"
COMFY_URL=$url "$BIN/wan22-worker" generate \
  --image "$work/input.png" --prompt "$prompt" --seed 123456 -o "$OUT"
log "wrote $OUT ($(wc -c <"$OUT") bytes)"
