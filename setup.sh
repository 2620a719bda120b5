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

# Debian packages the tests need: Xvfb (virtual screen for the GUI tests), xdotool, and the Noto
# colour emoji font (one of the two sources of the training data set).
if [ "$want_tests" = 1 ]; then
    missing=""
    command -v Xvfb >/dev/null 2>&1 || missing="$missing xvfb"
    command -v xdotool >/dev/null 2>&1 || missing="$missing xdotool"
    [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing="$missing fonts-noto-color-emoji"
    if [ -n "$missing" ]; then
        sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        echo "Installing with apt-get:$missing"
        $sudo apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi
echo "setup done: .venv ready"
