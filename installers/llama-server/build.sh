#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` from the llama.cpp sources vendored in the pinned
# llama-cpp-python sdist, into a cache folder; reused when the binary is already there.
#
# Usage: installers/llama-server/build.sh [CACHE_DIR]   (default: ~/.cache/cocoon-provider/llama-server)
# Prints the path of the built binary on stdout (progress goes to stderr).
# Env: PYTHON (default: python3, must have pip), JOBS (default: nproc), CMAKE_ARGS (extra flags,
#      e.g. -DGGML_CUDA=ON for a CUDA build).
set -euo pipefail

VERSION="0.3.36"
SDIST="llama_cpp_python-${VERSION}.tar.gz"
# The sdist is pinned by hash so the build is reproducible and tamper-evident.
SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"

CACHE_DIR="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/cocoon-provider/llama-server}"
PYTHON="${PYTHON:-python3}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
FLAVOUR="$(printf '%s' "${CMAKE_ARGS:-}" | sha256sum | cut -c1-12)"
PREFIX="${CACHE_DIR}/${VERSION}-${FLAVOUR}"
BINARY="${PREFIX}/bin/llama-server"

if [[ -x "${BINARY}" ]]; then
    echo "${BINARY}"
    exit 0
fi

mkdir -p "${CACHE_DIR}"
WORK="$(mktemp -d "${CACHE_DIR}/build.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT

if [[ ! -f "${CACHE_DIR}/${SDIST}" ]]; then
    echo "downloading ${SDIST}" >&2
    "${PYTHON}" -m pip download --quiet --no-binary :all: --no-deps \
        "llama-cpp-python==${VERSION}" -d "${WORK}" >&2
    mv "${WORK}/${SDIST}" "${CACHE_DIR}/${SDIST}"
fi
echo "${SDIST_SHA256}  ${CACHE_DIR}/${SDIST}" | sha256sum --check --quiet - >&2

tar -xzf "${CACHE_DIR}/${SDIST}" -C "${WORK}"
SRC="${WORK}/llama_cpp_python-${VERSION}/vendor/llama.cpp"

echo "configuring llama.cpp (${SRC})" >&2
# shellcheck disable=SC2086  # CMAKE_ARGS is a list of flags on purpose
cmake -S "${SRC}" -B "${WORK}/build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF ${CMAKE_ARGS:-} >&2
echo "building llama-server with ${JOBS} jobs" >&2
cmake --build "${WORK}/build" --target llama-server -j "${JOBS}" >&2

mkdir -p "${PREFIX}.tmp/bin"
install -m 0755 "${WORK}/build/bin/llama-server" "${PREFIX}.tmp/bin/llama-server"
rm -rf "${PREFIX}"
mv "${PREFIX}.tmp" "${PREFIX}"
echo "${BINARY}"
