"""The Analysis section and the equivariance readout in the real app on a virtual screen (Xvfb), driven
by a script of clicks (viz/script.py): the per-layer spectra are plotted for every layer, the readout
shows three finite numbers for the tiny StyleGAN3 model, the error image appears for a transform, and
the GUI process still never imports torch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.test_gui import run_gui

JOB_TIMEOUT = 200


@pytest.fixture(scope="module")
def analysis_session(xdisplay, tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gui_analysis")
    d = lambda name: str(tmp / f"{name}.json")  # noqa: E731
    steps = [
        {"wait": "frame"}, {"dump": d("start")},
        {"click": "Layers"},                       # fold it away so the plots fit on screen
        {"click": "Analysis"}, {"click": "Per-layer spectra"},
        {"wait": "analysis", "timeout": JOB_TIMEOUT}, {"frames": 3}, {"dump": d("layers")},
        {"set": "analysis.layer_name", "value": "L2_36_64"}, {"scroll_to": "##filter plot"}, {"frames": 2},
        {"dump": d("filters")}, {"save_gui": str(tmp / "analysis.png")},
        {"click": "Analysis"},
        {"click": "Equivariance"},
        {"set": "equivariance.translate", "value": [0.11, -0.04]}, {"set": "equivariance.rotate", "value": 0.02},
        {"wait": "frame"},
        {"click": "Error image"}, {"wait": "analysis", "timeout": JOB_TIMEOUT}, {"frames": 3},
        {"dump": d("readout")}, {"save_gui": str(tmp / "readout.png")},
        {"click": "Error image"}, {"frames": 3}, {"dump": d("error_image_off")},
        {"key": "right"}, {"wait": "frame"}, {"frames": 3}, {"dump": d("next_seed")},
        {"quit": 0},
    ]
    proc = run_gui([str(tiny_model)], tmp, steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def _state(path: Path) -> dict:
    return json.loads(path.read_text())


def test_per_layer_spectra_are_plotted_for_every_layer(analysis_session):
    start = _state(analysis_session / "start.json")
    state = _state(analysis_session / "layers.json")
    analysis = state["analysis"]
    assert start["analysis"]["layers_analysed"] == 0 and start["analysis"]["bars_plotted"] == 0
    # The input and every synthesis layer: the renderer's list minus its "output" entry.
    expected = len([name for name in state["layers"] if name != "output"])
    assert analysis["error"] is None
    assert analysis["layers_analysed"] == expected and analysis["bars_plotted"] == expected
    assert analysis["profile_points"] > 10 and analysis["profile_layer"] in state["layers"]
    assert analysis["filter_curves"] == 0              # the output (ToRGB) layer does not resample


def test_a_resampling_layer_shows_its_up_and_down_filter_responses(analysis_session):
    analysis = _state(analysis_session / "filters.json")["analysis"]
    assert analysis["profile_layer"] == "L2_36_64"
    assert analysis["filter_curves"] == 2


def test_equivariance_readout_shows_three_finite_numbers(analysis_session):
    state = _state(analysis_session / "readout.json")
    assert state["equivariance_error"] is None
    values = state["equivariance_readout"]
    assert values is not None and len(values) == 3
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert state["equivariance_error_image"] is True


def test_the_readout_is_of_an_earlier_latent_only_when_the_latent_moved(analysis_session):
    assert _state(analysis_session / "readout.json")["equivariance_readout_stale"] is False
    off = _state(analysis_session / "error_image_off.json")
    assert off["equivariance_error_image"] is True and off["equivariance_readout_stale"] is False
    assert _state(analysis_session / "next_seed.json")["equivariance_readout_stale"] is True


def test_analysis_keeps_torch_out_of_the_gui_and_draws_something(analysis_session):
    from PIL import Image

    state = _state(analysis_session / "readout.json")
    assert state["torch_imported"] is False
    with Image.open(analysis_session / "analysis.png") as shot:
        pixels = np.asarray(shot.convert("RGB"))
    assert pixels.std() > 10
