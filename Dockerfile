# wan22-worker: the RunPod Serverless image. One command builds it:
#
#   docker build -t wan22-worker .
#
# Optional: --build-arg COMMIT="$(git rev-parse --short=12 HEAD)" stamps the commit into the binary and the
# image labels. Every version below is a build ARG with a default, so a pin can be changed without editing this
# file; internal/deploycheck checks statically that every base image is pinned by tag and digest, every pip
# install is pinned, every git source is pinned to a commit, and every ARG has a default.
#
# No model weights are baked in by default: they live on the RunPod network volume, mounted at /runpod-volume
# (docs/deployment.md; `wan22-worker models pull --dir /runpod-volume/models` fills it), or come from RunPod's
# cached models. --build-arg BAKE_MODELS=1 bakes them into the image instead (about 36 GB more; docs/deployment.md,
# "Cold start").
#
# Custom nodes: only ComfyUI-VideoHelperSuite (VHS_VideoCombine). ComfyUI_essentials is NOT needed: the worker
# resizes, crops and pads the input image itself (in Go), so ImageResize+ never appears in the graph.
# WanImageToVideo is a core ComfyUI node (no "ComfyUI-WAN" package exists or is needed).

# Base images, pinned by tag and by digest. Refresh a digest with
#   docker buildx imagetools inspect golang:1.26.8-bookworm
# The Go image matches go.mod's `go 1.26.8`, so the build never downloads another toolchain.
ARG GO_IMAGE=golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04@sha256:ac55d124da4882b497f732d8dfd9a702d5447a5f29d08d56da6f64f0a1eb34bc

# ---------------------------------------------------------------------------------------------------------------
# Stage 1: the Go worker, a static binary (no cgo, reproducible paths), stamped like `make build`.
FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN go mod download
COPY VERSION ./
COPY cmd ./cmd
COPY internal ./internal
# The local API serves docs/openapi.json, embedded by the tiny docs package.
COPY docs/openapi.go docs/openapi.json ./docs/
# `doctor` compares ComfyUI's installed Python packages with the lock, embedded by the docker package.
COPY docker/lock.go docker/requirements.lock ./docker/
# WORKER_VERSION labels the image; scripts/release.sh keeps it equal to the VERSION file, and the build refuses
# a mismatch so that the label and the binary can never disagree.
ARG WORKER_VERSION=0.1.0
ARG COMMIT=unknown
RUN version="$(cat VERSION)"; \
    if [ "${version}" != "${WORKER_VERSION}" ]; then \
      echo "VERSION says ${version} but WORKER_VERSION is ${WORKER_VERSION}: run scripts/release.sh, or pass --build-arg WORKER_VERSION=${version}" >&2; \
      exit 1; \
    fi; \
    go build -trimpath \
      -ldflags "-s -w -X github.com/wan22-worker/wan22-worker/internal/version.Version=${version} -X github.com/wan22-worker/wan22-worker/internal/version.Commit=${COMMIT}" \
      -o /out/wan22-worker ./cmd/wan22-worker \
    && /out/wan22-worker version

# ---------------------------------------------------------------------------------------------------------------
# Stage 2: the runtime. CUDA 12.8 (Blackwell/RTX 5090 needs >= 12.8), Python 3.12 venv, PyTorch cu128, ComfyUI.
FROM ${CUDA_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# System packages. Ubuntu's archive is not version-pinned on purpose: a noble package only receives security and
# bug fixes, and a pinned apt version disappears from the archive when it is superseded (the build would break).
#  - python3.12-dev, gcc, libc6-dev: torch.compile (TORCH_COMPILE=1, the default) runs Triton, which compiles a
#    small C launcher for its kernels at run time with the system C compiler against Python.h; without them the
#    first compiled job fails with "Failed to find C compiler". Inductor's GPU path needs nothing else: Triton
#    ships its own ptxas, and the CUDA libraries come with the torch wheels.
#  - ffmpeg: VideoHelperSuite encodes H.264 with it (checked below for libx264).
#  - libtcmalloc-minimal4t64: tcmalloc for the Python process (less fragmentation with large tensors), preloaded
#    through LD_PRELOAD below at the exact path this package installs (amd64; RunPod's GPUs are amd64 hosts).
#    The Go worker is static, so the preload affects only ComfyUI's Python.
ARG DEBIAN_FRONTEND=noninteractive
ARG TCMALLOC_LIB=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
      ca-certificates git \
      python3.12 python3.12-venv python3.12-dev gcc libc6-dev \
      ffmpeg libglib2.0-0t64 libtcmalloc-minimal4t64 \
    && rm -rf /var/lib/apt/lists/* \
    && test -e "${TCMALLOC_LIB}" \
    && encoders="$(ffmpeg -hide_banner -encoders)" \
    && [[ "${encoders}" == *libx264* ]]

# Python: a venv, so nothing fights Ubuntu's own Python packages.
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:${PATH}
ARG PIP_VERSION=25.2
ARG PIP_NO_CACHE_DIR=1
ARG PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3.12 -m venv /opt/venv \
    && pip install "pip==${PIP_VERSION}"

# Every Python package of the image (PyTorch 2.8.0 for CUDA 12.8, xformers, ComfyUI's and VideoHelperSuite's
# requirements and all their dependencies) comes from docker/requirements.lock: exact versions with the sha256 of
# every file, generated by scripts/lock-python.sh (docs/deployment.md, "The locked Python environment"). pip's
# --require-hashes refuses any package or file the lock does not name, so the image is the same every time it
# is built. All from PyPI: there the Linux x86_64 torch 2.8.0 wheel is the CUDA 12.8 build (its CUDA libraries
# are the nvidia-*-cu12 12.8 wheels of the lock). VideoHelperSuite asks for opencv-python; the lock holds the
# headless build, which provides the same cv2 module without X11/OpenGL libraries.
# The ARGs below are not choices: they are checked against the lock (internal/deploycheck) and label the image.
ARG TORCH_VERSION=2.8.0
ARG TORCH_CUDA_VERSION=12.8
ARG XFORMERS_VERSION=0.0.32.post2
COPY docker/requirements.lock /opt/wan22/requirements.lock
RUN pip install --require-hashes --only-binary=:all: -r /opt/wan22/requirements.lock \
    && python -c "import torch; v = torch.__version__.split('+')[0]; assert v == '${TORCH_VERSION}', v; assert torch.version.cuda == '${TORCH_CUDA_VERSION}', torch.version.cuda" \
    && python -c "import xformers, cv2" \
    && pip freeze > /opt/wan22/pip-freeze.txt

# ComfyUI, by release tag, and the tag's commit verified (a moved tag fails the build instead of changing it).
ARG COMFYUI_REPO=https://github.com/Comfy-Org/ComfyUI.git
ARG COMFYUI_VERSION=v0.3.64
ARG COMFYUI_COMMIT=637221995f7424a561bd825de3e61ea117dfe1e3
RUN git clone --depth 1 --branch "${COMFYUI_VERSION}" "${COMFYUI_REPO}" /comfyui \
    && got="$(git -C /comfyui rev-parse HEAD)" \
    && if [ "${got}" != "${COMFYUI_COMMIT}" ]; then \
      echo "ComfyUI ${COMFYUI_VERSION} resolved to ${got}, expected ${COMFYUI_COMMIT}" >&2; exit 1; \
    fi

# ComfyUI-VideoHelperSuite (VHS_VideoCombine: H.264 MP4 with CRF control), fetched by commit.
ARG VHS_REPO=https://github.com/Kosinkadink/ComfyUI-VideoHelperSuite.git
ARG VHS_COMMIT=4ee72c065db22c9d96c2427954dc69e7b908444b
RUN mkdir -p /comfyui/custom_nodes/ComfyUI-VideoHelperSuite \
    && cd /comfyui/custom_nodes/ComfyUI-VideoHelperSuite \
    && git init -q \
    && git fetch -q --depth 1 "${VHS_REPO}" "${VHS_COMMIT}" \
    && git checkout -q --detach FETCH_HEAD \
    && got="$(git rev-parse HEAD)" \
    && if [ "${got}" != "${VHS_COMMIT}" ]; then \
      echo "VideoHelperSuite resolved to ${got}, expected ${VHS_COMMIT}" >&2; exit 1; \
    fi

# Smoke test at build time: ComfyUI imports itself and its custom nodes on the CPU and exits. A custom node that
# fails to import fails the build (ComfyUI itself only logs "IMPORT FAILED"). --build-arg SMOKE_TEST=0 skips it.
ARG SMOKE_TEST=1
RUN if [ "${SMOKE_TEST}" = "1" ]; then \
      cd /comfyui || exit 1; \
      if ! out="$(python main.py --cpu --quick-test-for-ci --disable-api-nodes 2>&1)"; then \
        echo "${out}"; echo "ComfyUI failed its start-up test" >&2; exit 1; \
      fi; \
      if [[ "${out}" == *"IMPORT FAILED"* ]]; then \
        echo "${out}"; echo "a custom node failed to import" >&2; exit 1; \
      fi; \
      rm -rf /comfyui/user /comfyui/temp; \
    fi

# The worker.
COPY --from=build /out/wan22-worker /usr/local/bin/wan22-worker

# Optional: the profile's model files baked into the image's own models folder, downloaded and SHA-256-checked
# by the worker itself, for starts that need neither a network volume nor a cached model (FlashBoot-style):
#   docker build --build-arg BAKE_MODELS=1 -t wan22-worker:baked .
# HF_ENDPOINT may point at a mirror. The image grows by about 36 GB.
ARG BAKE_MODELS=0
ARG HF_ENDPOINT=https://huggingface.co
RUN if [ "${BAKE_MODELS}" = "1" ]; then \
      HF_ENDPOINT="${HF_ENDPOINT}" wan22-worker models pull --dir /comfyui/models --layout comfy --parallel 2; \
    fi

# Defaults the worker reads (docs/configuration.md). MODELS_DIRS lists the network volume first, then the image's
# own (empty) models folder; each may use ComfyUI's folder names or the original ones (unet, clip).
ENV COMFYUI_DIR=/comfyui \
    COMFY_PYTHON=/opt/venv/bin/python \
    COMFY_LOG_FILE=/comfyui/comfyui.log \
    MODELS_DIRS=/runpod-volume/models:/comfyui/models \
    PYTHONUNBUFFERED=1 \
    VHS_FORCE_FFMPEG_PATH=/usr/bin/ffmpeg \
    LD_PRELOAD=${TCMALLOC_LIB}

ARG WORKER_VERSION=0.1.0
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="wan22-worker" \
      org.opencontainers.image.description="RunPod Serverless worker: image + prompt to MP4 with WAN 2.2 image-to-video 14B on ComfyUI" \
      org.opencontainers.image.version="${WORKER_VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.base.name="nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04" \
      wan22-worker.comfyui.version="${COMFYUI_VERSION}" \
      wan22-worker.comfyui.commit="${COMFYUI_COMMIT}" \
      wan22-worker.videohelpersuite.commit="${VHS_COMMIT}" \
      wan22-worker.torch.version="${TORCH_VERSION}" \
      wan22-worker.xformers.version="${XFORMERS_VERSION}"

# The local API's port (`serve --api`); RunPod Serverless itself needs no port.
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/wan22-worker"]
CMD ["serve"]
