# wan22-worker: build, test, lint, bench and release.
SHELL := /bin/bash
PKG := github.com/wan22-worker/wan22-worker
VERSION := $(shell cat VERSION 2>/dev/null || echo dev)
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT)
BIN := bin/wan22-worker
FUZZTIME ?= 5s

.PHONY: all build test test-unit fuzz lint bench e2e demo playground-screenshot clean patch minor major image-deps lock-python gpu-bench gpu-bundle

all: build

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/wan22-worker

## test: everything CI runs — lint, unit/contract/integration tests with the race detector, short fuzzing.
test: lint test-unit fuzz

## test-unit: every package's result as it finishes (go test -json through cmd/testreport), then
## "tests: N passed, N failed, N skipped"; fails when any test or package fails.
test-unit:
	@set -o pipefail; go build -o bin/testreport ./cmd/testreport && \
	  go test -json -race -count=1 ./... 2>&1 | bin/testreport

## fuzz: run every fuzz target briefly (FUZZTIME each).
fuzz:
	@set -e; for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

bench:
	go test -run '^$$' -bench . -benchmem ./...

## image-deps: resolve docker/requirements.lock against the package index without installing (a yanked or
## vanished pin fails here, not in docker build); skipped with a printed reason when the index is unreachable.
image-deps:
	./scripts/image-deps.sh

## lock-python: regenerate docker/requirements.lock from docker/requirements.in (scripts/lock-python.sh).
lock-python:
	./scripts/lock-python.sh

## e2e: the end-to-end tier against the real ComfyUI (needs COMFYUI_DIR; skips otherwise).
e2e:
	go test -tags e2e -count=1 -v -timeout 45m ./e2e/...

## gpu-bench: the full-size benchmark on a GPU machine (docs/performance.md); needs COMFYUI_DIR.
## GPU_BENCH_FLAGS passes flags: --quick, --skip-weights, --no-compile, --sage, --cpu --tiny.
gpu-bench:
	./scripts/gpu-bench.sh $(GPU_BENCH_FLAGS)

## gpu-bundle: dist/wan22-gpu-bench.tar.gz (< 60 MiB) for a GPU machine without network; needs COMFYUI_DIR.
gpu-bundle:
	./scripts/gpu-bench-bundle.sh

## demo: one job end to end without a GPU or ComfyUI: the worker's generate against the fake ComfyUI
## (cmd/fakecomfy), with the image of test_input.json; writes demo.mp4 (scripts/demo.sh).
demo:
	./scripts/demo.sh

## playground-screenshot: regenerate docs/playground.png, the screenshot the playground's browser test takes
## (needs chromium and ffmpeg; the test skips without chromium).
playground-screenshot:
	set -o pipefail; go test -count=1 -v -run '^TestPlayground$$' ./integration/ -args -update-screenshot | grep -E '^(---|ok|FAIL|\s+playground_test)'

clean:
	rm -rf bin

## patch | minor | major: cut a release (docs/releases.md): bump VERSION, date CHANGELOG.md's Unreleased section,
## commit "Release vX.Y.Z" and tag vX.Y.Z. Refuses on a dirty tree, an existing tag or an empty Unreleased section.
patch minor major:
	./scripts/release.sh $@
