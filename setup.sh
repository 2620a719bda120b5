#!/usr/bin/env bash
# Create .venv/ and install everything the visualizer needs.
#   ./setup.sh           runtime only
#   ./setup.sh --test    also the test requirements and the virtual screen (Xvfb) the GUI tests use
# TORCH_SPEC overrides the torch requirement, e.g. TORCH_SPEC="torch==2.13.0 --index-url <CUDA wheel index>".
set -euo pipefail
cd "$(dirname "$0")"

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# torch first, on its own, so that nothing else can pull a different build.
# shellcheck disable=SC2086
pip install ${TORCH_SPEC:-torch==2.13.0}
if [ "$want_tests" = 1 ]; then
    pip install -r requirements-dev.txt
else
    pip install -r requirements.txt
fi

if [ "$want_tests" = 1 ] && ! command -v Xvfb >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "Installing Xvfb (virtual screen for the GUI tests) with apt-get ..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends xvfb xdotool >/dev/null
fi
echo "setup done: .venv ready"
