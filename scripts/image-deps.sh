#!/usr/bin/env bash
# `make image-deps`: resolves docker/requirements.lock against the package index without installing anything
# (a dry run for Linux x86_64, Python 3.12), so that a pin that was yanked or vanished from the index fails
# here, before a release, and not in `docker build`. Exits 0 with a printed reason, skipping, when the index
# cannot be reached or no resolver is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

LOCK=${LOCK:-docker/requirements.lock}
INDEX=${UV_INDEX_URL:-${PIP_INDEX_URL:-https://pypi.org/simple}}
skip() { echo "image-deps: SKIPPED: $*"; exit 0; }

if command -v curl >/dev/null 2>&1; then
  curl -fsS -m 15 -o /dev/null "${INDEX%/}/pip/" 2>/dev/null || skip "the package index ${INDEX} is not reachable"
fi
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
if command -v uv >/dev/null 2>&1; then
  uv pip install --quiet --dry-run --no-cache --require-hashes --index-url "$INDEX" \
    --python-version 3.12 --python-platform x86_64-manylinux_2_28 --target "$target" -r "$LOCK"
elif python3 -m pip --version >/dev/null 2>&1; then
  # pip has no metadata-only dry run for these wheels: it downloads them (torch alone is ~900 MB).
  python3 -m pip install --quiet --dry-run --no-cache-dir --require-hashes --index-url "$INDEX" --no-deps \
    --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 --target "$target" -r "$LOCK"
else
  skip "neither uv nor pip is installed"
fi
echo "image-deps: every pin of $LOCK ($(grep -cE '^[A-Za-z0-9]' "$LOCK") packages) resolves on ${INDEX}"
