"""`visualizer.py info` and `visualizer.py convert`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from renderer.worker import cli
from renderer.worker.cli import convert_main, info_main
from renderer.worker.models import load_generator
from tests.conftest import ROOT
from tests.official_pickle import Call, GlobalName, snapshot, write_official_pickle


@pytest.fixture(scope="module")
def sg2_pickle(reference, tmp_path_factory):
    return write_official_pickle(snapshot(reference("sg2_small").build()), tmp_path_factory.mktemp("cli") / "sg2.pkl")


def test_info_prints_the_stylegan3_layer_table(reference, tmp_path):
    ref = reference("sg3t_small")
    path = write_official_pickle(snapshot(ref.build()), tmp_path / "network-snapshot-000000.pkl")
    run = subprocess.run([sys.executable, "visualizer.py", "info", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "stylegan3-t" in out and "64x64" in out and "num_ws       16" in out
    assert f"{sum(p.numel() for p in ref.build().parameters()):,}" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    for layer in ref.layer_table["layers"]:
        row = rows[layer["name"]]
        w, h = layer["size"]
        assert f"{w}x{h}" in row and str(layer["channels"]) in row and f"{layer['sampling_rate']:g}" in row
        assert f"{layer['cutoff']:.3f}" in row
        if layer["half_width"] is not None:
            assert f"{layer['half_width']:.3f}" in row


def test_info_prints_the_stylegan2_blocks(sg2_pickle, capsys):
    assert info_main([str(sg2_pickle)]) == 0
    out = capsys.readouterr().out
    assert "stylegan2" in out and "noise" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "4x4" in lines["b4.const"] and "64" in lines["b4.const"]
    assert "64x64" in lines["b64.conv0"] and "64 -> 32" in lines["b64.conv0"] and "upsample" in lines["b64.conv0"]
    assert "32 -> 3" in lines["b64.torgb"]


def test_info_on_a_bad_file_is_an_error_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04garbage")
    assert info_main([str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {bad}") and "Traceback" not in captured.err


def test_convert_writes_a_native_file_that_loads(sg2_pickle, tmp_path, capsys):
    out = tmp_path / "sg2.safetensors"
    assert convert_main([str(sg2_pickle), str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "seed 3 renders identically" in printed and str(out) in printed
    original, converted = load_generator(sg2_pickle), load_generator(out)
    assert converted.checkpoint_metadata["converted_from"] == "sg2.pkl"
    z = torch.randn(1, original.z_dim)
    assert torch.equal(original(z, None), converted(z, None))


def test_convert_keeps_existing_files_unless_told(sg2_pickle, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"keep me")
    assert convert_main([str(sg2_pickle), str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert convert_main([str(sg2_pickle), str(tmp_path / "model.pkl")]) == 1
    assert ".safetensors" in capsys.readouterr().err
    assert convert_main([str(sg2_pickle), str(out), "--overwrite"]) == 0
    assert load_generator(out).family == "stylegan2"


def test_convert_refuses_hostile_input_and_writes_nothing(tmp_path, capsys):
    marker = tmp_path / "marker"
    evil = write_official_pickle({"G_ema": Call(GlobalName("os", "system"), (f"touch '{marker}'",))}, tmp_path / "evil.pkl")
    out = tmp_path / "evil.safetensors"
    assert convert_main([str(evil), str(out)]) == 1
    assert "os.system" in capsys.readouterr().err
    assert not out.exists() and not marker.exists()


def test_convert_removes_an_output_that_renders_differently(sg2_pickle, tmp_path, monkeypatch, capsys):
    real_load = cli.load_generator

    def load_then_damage(path):
        G = real_load(path)
        if str(path).endswith(".safetensors"):
            with torch.no_grad():
                G.synthesis.b64.torgb.bias.add_(0.5)
        return G

    monkeypatch.setattr(cli, "load_generator", load_then_damage)
    out = tmp_path / "damaged.safetensors"
    assert convert_main([str(sg2_pickle), str(out)]) == 1
    assert "renders seed 0 differently" in capsys.readouterr().err
    assert not out.exists()
