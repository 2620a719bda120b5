"""`visualizer.py render` inputs: every numeric option bounded with a one-line message, --out as
a directory, --w, --position, --state; and torch's CPU out-of-memory error recognised by the renderer."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from renderer.protocol import RenderArgs
from renderer.worker import render as render_module
from renderer.worker.cli_render import render_main
from renderer.worker.render import Renderer, _is_out_of_memory


@pytest.mark.parametrize("argv, option", [
    (["--psi", "1e308"], "--psi"), (["--psi=1e30"], "--psi"), (["--psi", "nan"], "--psi"), (["--psi", "-inf"], "--psi"),
    (["--seed", "-1"], "--seed"), (["--seed", str(2 ** 40)], "--seed"), (["--seed", "1.5"], "--seed"),
    (["--cutoff", "-2"], "--cutoff"), (["--class", "-3"], "--class"), (["--noise-seed", "1e9"], "--noise-seed"),
    (["--channel", "999999999"], "--channel"), (["--gain-db", "1e6"], "--gain-db"),
    (["--fft-range-db", "0"], "--fft-range-db"), (["--fft-beta", "inf"], "--fft-beta"),
    (["--translate", "1e9", "0"], "--translate"), (["--rotate", "-1e20"], "--rotate"),
    (["--position", "1e9", "0"], "--position"), (["--mix-rows", "2,x"], "--mix-rows"),
    (["--mix-rows", "3--1"], "--mix-rows"), (["--mix-seed", "-4"], "--mix-seed"),
])
def test_absurd_numbers_are_refused_in_one_line(argv, option, micro_sg2_model, tmp_path, capsys):
    out = tmp_path / "frame.png"
    assert render_main([str(micro_sg2_model), *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: argument {option}") and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_bounds_let_ordinary_values_through(micro_sg2_model, tmp_path, capsys):
    out = tmp_path / "frame.png"
    assert render_main([str(micro_sg2_model), "--seed", str(2 ** 32 - 1), "--psi", "-1.5", "--gain-db", "6",
                        "--fft", "--fft-beta", "4", "--out", str(out)]) == 0, capsys.readouterr().err
    assert out.exists()


def test_out_directory_gets_a_file_inside_it(micro_sg2_model, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    assert render_main([str(micro_sg2_model), "--seed", "3", "--out", str(folder)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["seed0003.json", "seed0003.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]   # no frames.png beside it


def test_w_file_renders_that_w(micro_sg2_model, tmp_path, capsys):
    seed_png, w_png, w_path = tmp_path / "seed.png", tmp_path / "w.png", tmp_path / "w.npy"
    result = Renderer().render(RenderArgs(model=str(micro_sg2_model), latent=((5, 1.0),)))
    np.save(w_path, result.w)
    assert render_main([str(micro_sg2_model), "--seed", "5", "--out", str(seed_png)]) == 0
    assert render_main([str(micro_sg2_model), "--w", str(w_path), "--out", str(w_png)]) == 0
    assert np.array_equal(np.asarray(Image.open(seed_png)), np.asarray(Image.open(w_png)))
    np.save(w_path, result.w.astype(np.int16))
    capsys.readouterr()
    assert render_main([str(micro_sg2_model), "--w", str(w_path), "--out", str(w_png)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "W in w.npy is of type <i2 (integers); W must be floating point" in err


def test_torch_cpu_out_of_memory_is_recognised(micro_sg2_model, monkeypatch):
    try:
        torch.empty(2 ** 45, dtype=torch.uint8)
    except RuntimeError as e:
        cpu_error = e
    assert "DefaultCPUAllocator" in str(cpu_error) and _is_out_of_memory(cpu_error)
    assert not _is_out_of_memory(RuntimeError("shape mismatch"))

    released = []
    monkeypatch.setattr(render_module, "release_free_memory", lambda: released.append(1))

    def synthesize(*args, **kwargs):
        raise cpu_error

    renderer = Renderer()
    monkeypatch.setattr(renderer, "_synthesize", synthesize)
    result = renderer.render(RenderArgs(model=str(micro_sg2_model)))
    assert result.error.startswith("Out of memory on cpu while rendering") and released


def test_a_whole_position_is_that_seed_and_a_state_file_renders_its_frame(micro_sg2_model, tmp_path, capsys):
    model = tmp_path / "model.safetensors"
    shutil.copy(micro_sg2_model, model)
    seed_png, position_png, again = tmp_path / "seed.png", tmp_path / "position.png", tmp_path / "again"
    assert render_main([str(model), "--seed", "205", "--psi", "0.6", "--out", str(seed_png)]) == 0
    assert render_main([str(model), "--position", "5", "2", "--psi", "0.6", "--out",
                        str(position_png)]) == 0, capsys.readouterr().err
    pixels = np.asarray(Image.open(seed_png))
    assert np.array_equal(pixels, np.asarray(Image.open(position_png)))
    again.mkdir()
    assert render_main(["--state", str(position_png.with_suffix(".json")), "--out", str(again)]) == 0
    assert np.array_equal(pixels, np.asarray(Image.open(again / "position.png")))
    moved = model.rename(tmp_path / "moved.safetensors")
    capsys.readouterr()
    assert render_main(["--state", str(position_png), "--out", str(again / "missing.png")]) == 1
    assert "model.safetensors" in capsys.readouterr().err
    assert render_main([str(moved), "--state", str(position_png), "--out", str(again / "moved.png")]) == 0
    assert np.array_equal(pixels, np.asarray(Image.open(again / "moved.png")))


def test_render_without_a_model_or_with_a_foreign_png_says_so(tmp_path, capsys):
    assert render_main(["--out", str(tmp_path / "x.png")]) == 2
    assert "give a MODEL" in capsys.readouterr().err
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "plain.png")
    assert render_main(["--state", str(tmp_path / "plain.png"), "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plain.png" in err and "not saved by this visualizer" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.png"]
