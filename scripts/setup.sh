#!/usr/bin/env bash
# Installs everything tunesmith needs: Debian's FluidSynth library and a virtual
# environment with the CPU build of PyTorch and the package itself.
# Idempotent: re-running installs only what is missing.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# Debian packages: FluidSynth (rendering), PostgreSQL (the store's tests run against a
# real server, started by the tests in a temporary directory) and Chromium (the studio's
# browser tests drive it through Playwright; no browser is downloaded).
MISSING=""
ldconfig -p 2>/dev/null | grep -q libfluidsynth.so || MISSING="$MISSING libfluidsynth3"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || MISSING="$MISSING postgresql"
OPTIONAL=""
command -v chromium >/dev/null 2>&1 || OPTIONAL="chromium"
if [ -n "$MISSING" ]; then
    echo "setup: installing$MISSING (Debian)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
fi
if [ -n "$OPTIONAL" ]; then
    echo "setup: installing $OPTIONAL (Debian; for the studio's browser tests)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    { [ -n "$MISSING" ] || $SUDO apt-get update -qq; } && \
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $OPTIONAL >/dev/null || \
        echo "setup: $OPTIONAL could not be installed; the browser tests will be skipped"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "setup: installing PyTorch (CPU build)"
    # The pinned CPU build; a plain 'torch' requirement would pull a multi-GB CUDA build.
    $PIP install -q "torch==2.13.0" || $PIP install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
echo "setup: installing tunesmith and its dependencies"
$PIP install -q -e ".[dev]"
if ! "$VENV/bin/python" -c "import basic_pitch" 2>/dev/null; then
    # basic-pitch asks for TensorFlow on Linux; tunesmith runs its ONNX model with onnxruntime
    # (a pyproject dependency), so the package goes in without its dependencies.
    echo "setup: installing basic-pitch (audio transcription; ONNX weights inside the package)"
    $PIP install -q --no-deps "basic-pitch==0.4.0"
fi
