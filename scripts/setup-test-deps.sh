#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian/Ubuntu machine (run as
# root): ffmpeg/ffprobe, chromium (the playground's browser test), and the Go
# modules. Idempotent: skips what is present.
# With "--then CMD...", runs CMD after setting up.
set -euo pipefail

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
if [ "${#need_apt[@]}" -gt 0 ]; then
  # Quiet: no debconf prompts or warnings; apt's output is shown only when it fails.
  export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
  echo "setup: installing ${need_apt[*]}" >&2
  apt_log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${need_apt[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    echo "setup: apt-get failed (output above)" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

command -v go >/dev/null 2>&1 || { echo "setup: Go 1.26 or newer is required (https://go.dev/dl/)" >&2; exit 1; }
go mod download

if [ "${1:-}" = "--then" ]; then
  shift
  exec "$@"
fi
