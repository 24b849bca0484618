#!/usr/bin/env bash
# The test command of the README and of CI: installs what the tests need on a
# fresh Debian/Ubuntu machine, as root (ffmpeg, the shell linter, Go modules;
# scripts/setup-test-deps.sh), starts a real S3-compatible server on loopback
# for the delivery tests (scripts/s3-test-server.sh, stopped on exit), then
# runs `make test`: gofmt and go vet, every test with the race detector, and
# a short run of each fuzz target; before that, `make image-deps` (the Python
# lock resolves on the package index; skipped with a reason when it is
# unreachable).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-test-deps.sh
eval "$(scripts/s3-test-server.sh start)"
trap 'scripts/s3-test-server.sh stop' EXIT
make image-deps
make test
