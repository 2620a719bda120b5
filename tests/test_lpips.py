"""The LPIPS distance from weights files the user points to (renderer.worker.analysis.lpips_distance)
and the checked torch.save reader under it (torch_utils.torch_save). No real VGG16 weights can be
downloaded here, so the files are written by the test with VGG16's exact names and shapes (random
values), in both of torch.save's layouts; the formula is checked against a direct computation."""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from renderer.worker.analysis.distances import DistanceUnavailable, choose_distance
from renderer.worker.analysis.lpips_distance import LPIPS, PerceptualWeightsError, read_lpips_weights, read_vgg16
from renderer.worker.analysis.projection import ProjectionSettings, Projector
from renderer.worker.models import load_generator
from tests.official_pickle import legacy_storage_blob
from tests.perceptual_weights import VGG16_CFG, lin_state_dict, vgg16_state_dict, write_lin, write_vgg16
from torch_utils.torch_save import TorchSaveError, read_checked

@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lpips")
    files = {"vgg_legacy": folder / "vgg16-397923af.pth", "vgg_zip": folder / "vgg16-zip.pth",
             "lin": folder / "vgg.pth"}
    write_vgg16(files["vgg_legacy"], legacy=True)
    write_vgg16(files["vgg_zip"], legacy=False)
    write_lin(files["lin"])
    return files


DEMO = Path(__file__).resolve().parents[1] / "checkpoints" / "demo.safetensors"


@pytest.fixture(scope="module")
def demo():
    return load_generator(DEMO)


def _direct_lpips(sd: dict, lin: dict | None, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LPIPS computed straight from the definition, walking VGG16's configuration."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).reshape(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).reshape(1, 3, 1, 1)

    def taps(img):
        h, out, index = (img - shift) / scale, [], 0
        for item in VGG16_CFG + ["M"]:
            if item == "M":
                out.append(h)                      # the last ReLU of each stage: relu1_2 ... relu5_3
                h = F.max_pool2d(h, 2)
                index += 1
                continue
            h = F.relu(F.conv2d(h, sd[f"features.{index}.weight"], sd[f"features.{index}.bias"], padding=1))
            index += 2
        return out

    total = torch.zeros(x.shape[0])
    for k, (a, b) in enumerate(zip(taps(x), taps(y))):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = lin[f"lin{k}.model.1.weight"].reshape(1, -1, 1, 1) if lin is not None else 1.0
        total += ((a - b) ** 2 * w).sum(1).mean(dim=(1, 2))
    return total


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("layout", ["vgg_legacy", "vgg_zip"])
def test_lpips_matches_the_definition(layout, weights):
    net = LPIPS(read_vgg16(str(weights[layout])), read_lpips_weights(str(weights["lin"])))
    x, y = _images(2, 64, 0), _images(2, 64, 1)
    with torch.no_grad():
        ours = net(x, y)
        expected = _direct_lpips(vgg16_state_dict(), lin_state_dict(), x, y)
        plain = LPIPS(read_vgg16(str(weights[layout])), None)(x, y)
        expected_plain = _direct_lpips(vgg16_state_dict(), None, x, y)
    assert torch.allclose(ours, expected, rtol=1e-4) and torch.allclose(plain, expected_plain, rtol=1e-4)
    assert float(net(x, x).abs().max()) < 1e-6 and torch.allclose(net(y, x), ours, rtol=1e-5)
    assert not torch.allclose(ours, plain)                      # the linear weights count


def test_images_above_256_pixels_are_area_reduced_first(weights):
    net = LPIPS(read_vgg16(str(weights["vgg_legacy"])), None)
    x, y = _images(1, 512, 2), _images(1, 512, 3)
    with torch.no_grad():
        assert torch.allclose(net(x, y), net(F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)), rtol=1e-5)


def test_auto_uses_lpips_when_a_vgg16_file_is_given_and_says_when_it_is_uncalibrated(demo, weights):
    vgg, lin = str(weights["vgg_legacy"]), str(weights["lin"])
    assert choose_distance("auto", "demo", demo, vgg, lin).kind == "lpips"
    uncalibrated = choose_distance("lpips", "demo", demo, vgg)
    assert uncalibrated.kind == "lpips" and "uncalibrated" in uncalibrated.note
    with pytest.raises(DistanceUnavailable, match="needs torchvision's VGG16 weights"):
        choose_distance("lpips", "demo", demo)
    with pytest.raises(DistanceUnavailable, match="without the VGG16 weights"):
        choose_distance("auto", "demo", demo, "", lin)


def test_projection_with_lpips_converges(demo, weights):
    with torch.no_grad():
        w = demo.mapping(torch.randn(1, demo.z_dim, generator=torch.Generator().manual_seed(7)), None)
        target = demo.synthesis(w, noise_mode="const")
    pixels = ((target[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255)).to(torch.uint8).numpy()
    chosen = choose_distance("lpips", "demo", demo, str(weights["vgg_legacy"]), str(weights["lin"]))
    projector = Projector(demo, pixels, ProjectionSettings(steps=12, w_noise_factor=0.0, optimize_noise=False),
                          chosen.make)
    while not projector.finished:
        projector.step(4)
    assert projector.distances[-1] < projector.distances[0]


def test_the_project_command_takes_vgg_and_lpips_files(weights, tmp_path, capsys):
    from PIL import Image

    from renderer.worker.cli_project import project_main

    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "w.npy"
    assert project_main([str(DEMO), str(image), "--out", str(out), "--steps", "1", "--vgg",
                         str(weights["vgg_zip"]), "--lpips", str(weights["lin"])]) == 0
    assert "lpips distance" in capsys.readouterr().out and out.exists()
    assert project_main([str(DEMO), str(image), "--out", str(out), "--steps", "1", "--distance", "lpips"]) == 1
    assert "needs torchvision's VGG16 weights" in capsys.readouterr().err


# --- Files that are not VGG16 / LPIPS weights ----------------------------------------------------

class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_weights_files_that_are_not_vgg16_are_refused_with_the_reason(tmp_path, weights):
    sd = vgg16_state_dict()
    wrong = dict(sd, **{"features.10.weight": torch.zeros(256, 128, 1, 1)})
    missing = {k: v for k, v in sd.items() if not k.startswith("features.28")}
    nan = dict(sd, **{"features.0.bias": torch.full((64,), float("nan"))})
    cases = {"wrong.pth": (wrong, "features.10.weight has shape [256, 128, 1, 1], but VGG16's is [256, 128, 3, 3]"),
             "missing.pth": (missing, "lacks features.28.weight"),
             "nan.pth": (nan, "features.0.bias holds NaN"),
             "list.pth": ([1, 2, 3], "holds a list, not a state dict")}
    for name, (content, expected) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(PerceptualWeightsError, match=re.escape(expected)):
            read_vgg16(str(tmp_path / name))
    with pytest.raises(PerceptualWeightsError, match="does not hold LPIPS's five VGG layers"):
        read_lpips_weights(str(weights["vgg_legacy"]))


def test_code_in_a_weights_file_never_runs(tmp_path):
    marker = tmp_path / "ran"
    for zip_layout, refusal in ((True, "holds objects other than tensors"),
                                (False, r"refers to (os|posix)\.system, which a file of tensors never needs")):
        path = tmp_path / f"code-{zip_layout}.pth"
        torch.save({"features.0.weight": _Payload(marker)}, path, _use_new_zipfile_serialization=zip_layout)
        with pytest.raises(PerceptualWeightsError, match=refusal):
            read_vgg16(str(path))
    assert not marker.exists()


def test_a_torchscript_program_is_refused_before_torch_sees_it(tmp_path):
    path = tmp_path / "vgg16.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 3)), str(path))
    with pytest.raises(PerceptualWeightsError, match="TorchScript program"):
        read_vgg16(str(path))


def test_storages_larger_than_the_file_are_refused_before_anything_is_allocated(tmp_path):
    # A legacy file declaring 10^12 floats (4 TB) with 8 bytes of data.
    path = _write(tmp_path / "bomb.pth", legacy_storage_blob("FloatStorage", 10 ** 12, bytes(8)))
    with pytest.raises(TorchSaveError, match="declares a storage of 1,000,000,000,000 elements"):
        read_checked(path)
    # A zip archive whose tensor record is deflated: it would expand to 400 MB.
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(4)}, good)
    bomb = tmp_path / "deflated.pth"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            data = bytes(400 << 20) if "/data/" in info.filename else src.read(info)
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(TorchSaveError, match="compressed record"):
        read_checked(bomb)
    # Truncated, text, and a legacy header whose storage list disagrees with its objects.
    whole = io.BytesIO()
    torch.save({"w": torch.arange(100.0)}, whole, _use_new_zipfile_serialization=False)
    with pytest.raises(TorchSaveError, match="ends early|does not hold"):
        read_checked(_write(tmp_path / "short.pth", whole.getvalue()[:-40]))
    with pytest.raises(TorchSaveError, match="not a torch.save file"):
        read_checked(_write(tmp_path / "text.pth", b"weights, honestly"))
    assert torch.equal(read_checked(_write(tmp_path / "whole.pth", whole.getvalue()))["w"], torch.arange(100.0))


def test_a_named_pipe_is_refused_at_once(tmp_path):
    fifo = tmp_path / "vgg16.pth"
    os.mkfifo(fifo)
    outcome: list[str] = []

    def read():
        try:
            read_vgg16(str(fifo))
        except PerceptualWeightsError as e:
            outcome.append(str(e))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert outcome and "named pipe (FIFO)" in outcome[0]


def test_a_legacy_header_of_another_kind_is_refused(tmp_path):
    out = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, out, protocol=2)
    pickle.dump(1001, out, protocol=2)
    pickle.dump({"protocol_version": 1001}, out, protocol=2)
    pickle.dump(collections.OrderedDict(w=1), out, protocol=2)      # no storages at all ...
    pickle.dump(["0"], out, protocol=2)                              # ... but one listed
    with pytest.raises(TorchSaveError, match="lists storages other than those its objects use"):
        read_checked(_write(tmp_path / "odd.pth", out.getvalue()))
