"""The trainer (training/): one step moves G and D, EMAs update, and a run snapshots, stops on
Ctrl+C and resumes from the same image count. Tiny networks on a tiny synthetic data set."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import quiet, tiny_config
from training import snapshots
from training.augment import random_translate, random_xflip, translate
from training.discriminator import Discriminator, minibatch_stddev
from training.quality import features, sample_quality
from training.config import PRESETS, TrainConfig
from training.train import Trainer, ema_beta, main, train, training_step, update_ema


pytestmark = pytest.mark.usefixtures("one_thread")


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_one_step_changes_G_and_D_and_keeps_losses_finite(tiny_data: Path, tmp_path: Path):
    trainer = Trainer(tiny_config(tiny_data), tmp_path / "run", log=quiet)
    nets = trainer.nets
    G0, D0, E0 = _params(nets.G), _params(nets.D), _params(nets.G_ema)
    w_avg0 = nets.G.mapping.w_avg.clone()
    magnitude0 = [layer.magnitude_ema.clone() for layer in nets.G.synthesis.layers()]

    losses = training_step(nets, trainer.data, trainer.cfg, trainer.progress, trainer.rng, trainer.device)

    assert set(losses) == {"G", "D_fake", "D_real", "R1"}  # step 0 is a regularised step
    assert all(math.isfinite(v) for v in losses.values())
    assert losses["R1"] > 0
    G1, D1 = _params(nets.G), _params(nets.D)
    changed_G = [k for k in G0 if not torch.equal(G0[k], G1[k])]
    changed_D = [k for k in D0 if not torch.equal(D0[k], D1[k])]
    assert len(changed_G) > len(G0) // 2 and len(changed_D) > len(D0) // 2
    # Running statistics: w_avg moves towards the batch's mean w, every magnitude_ema moves from 1.
    assert not torch.equal(nets.G.mapping.w_avg, w_avg0)
    moved = [not torch.equal(layer.magnitude_ema, m) for layer, m in zip(nets.G.synthesis.layers(), magnitude0)]
    assert all(moved)
    # G_ema took G's buffers and moved its parameters towards G.
    assert torch.equal(nets.G_ema.mapping.w_avg, nets.G.mapping.w_avg)
    assert any(not torch.equal(E0[k], v) for k, v in _params(nets.G_ema).items())
    assert trainer.progress.images_seen == trainer.cfg.batch and trainer.progress.steps == 1


def test_ema_is_a_moving_average_with_a_ramp():
    torch.manual_seed(0)
    G, G_ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    G.register_buffer("stat", torch.tensor([5.0]))
    G_ema.register_buffer("stat", torch.tensor([0.0]))
    expected = (G.weight + G_ema.weight).detach() / 2
    update_ema(G_ema, G, beta=0.5)
    assert torch.allclose(G_ema.weight, expected)
    assert G_ema.stat.item() == 5.0
    cfg = TrainConfig(batch=16, ema_kimg=10.0, ema_rampup=0.05)
    # After 1,000 images the ramp limits the half-life to 50 images; later it is ema_kimg.
    assert ema_beta(cfg, 1000) == pytest.approx(0.5 ** (16 / 50))
    assert ema_beta(cfg, 10 ** 7) == pytest.approx(0.5 ** (16 / 10000))


def test_translate_moves_whole_pixels_and_passes_gradients():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5).requires_grad_(True)
    shifted = translate(x, torch.tensor([[1, 0], [0, -2]]))
    assert torch.equal(shifted[0, 0, :, 1:], x[0, 0, :, :-1])  # right by one
    assert torch.equal(shifted[0, 0, :, 0], x[0, 0, :, 0])  # uncovered column repeats the edge
    assert torch.equal(shifted[1, 0, :-2, :], x[1, 0, 2:, :])  # up by two
    shifted.sum().backward()
    assert x.grad.sum().item() == x.numel()  # every output pixel came from exactly one input pixel
    rng = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 6, 6)
    assert torch.equal(random_translate(images, rng, p=0.0, max_shift=2), images)
    assert torch.equal(random_xflip(images, rng, p=1.0), images.flip(3))


def test_discriminator_scores_each_image_and_mbstd_handles_odd_batches():
    torch.manual_seed(0)
    D = Discriminator(img_resolution=16, channel_base=128, channel_max=16)
    images = torch.randn(6, 3, 16, 16)
    scores = D(images)
    assert scores.shape == (6, 1) and torch.isfinite(scores).all()
    x = torch.randn(6, 4, 4, 4)
    y = minibatch_stddev(x, group_size=4)  # 6 is not a multiple of 4: groups of 2
    assert y.shape == (6, 5, 4, 4)
    assert torch.equal(y[:, :4], x)
    same = minibatch_stddev(torch.ones(6, 4, 4, 4), group_size=4)  # no variation: sqrt(eps)
    assert torch.allclose(same[:, 4], torch.full_like(same[:, 4], 1e-4), atol=1e-5)


def test_quality_is_zero_for_the_data_itself_and_high_for_noise():
    rng = np.random.default_rng(0)
    data = torch.from_numpy(rng.integers(0, 256, size=(20, 16, 16, 3), dtype=np.uint8))
    real = features(data)
    same = sample_quality(real[:10], real)
    assert same.fidelity == pytest.approx(0.0, abs=1e-6)
    assert same.coverage > 0  # 10 samples cannot cover 20 distinct images
    noise = sample_quality(features(torch.full((10, 3, 16, 16), -1.0)), real)
    assert noise.fidelity > 0.3 and noise.chamfer > same.chamfer


def _interrupt_at(step: int):
    """An on_step callback that delivers a real SIGINT (as Ctrl+C would) after `step` steps."""
    def on_step(trainer: Trainer) -> None:
        if trainer.progress.steps == step:
            signal.raise_signal(signal.SIGINT)
    return on_step


def test_interrupt_saves_and_resume_continues_from_the_same_image_count(tiny_data: Path, tmp_path: Path):
    from renderer.worker.models import load_generator, resolve_model_path

    cfg = tiny_config(tiny_data, total_kimg=0.024, snapshot_kimg=1.0)  # 6 steps of 4 images
    run = tmp_path / "run"
    first = train(cfg, run, on_step=_interrupt_at(3), log=quiet)
    assert first.stopped_by_user and first.images_seen == 12 and first.steps == 3

    # The snapshot on the way out is complete, loadable and records the image count and quality.
    G = load_generator(resolve_model_path(run))
    meta = G.checkpoint_metadata
    assert json.loads(meta["images_seen"]) == 12
    assert json.loads(meta["config"])["g_num_layers"] == cfg.g_num_layers
    assert set(json.loads(meta["quality"])) >= {"chamfer", "fidelity", "coverage", "edge_fd"}
    assert float(meta["training_seconds"]) > 0
    assert (run / snapshots.grid_name(12)).is_file()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(FileExistsError):
        Trainer(cfg, run, log=quiet)  # a new run may not overwrite this one

    resumed = Trainer(cfg, run, resume=True, log=quiet)
    assert resumed.progress.images_seen == 12 and resumed.progress.steps == 3
    second = resumed.run()
    assert not second.stopped_by_user and second.images_seen == 24 and second.steps == 6

    # Resuming is exact: the same as an uninterrupted run of six steps.
    straight = tmp_path / "straight"
    train(cfg, straight, log=quiet)
    a = snapshots.read_state(run / snapshots.STATE_FILE)
    b = snapshots.read_state(straight / snapshots.STATE_FILE)
    for name in ("G", "D", "G_ema"):
        for key in b[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key} differs after resume"

    events = [(r["event"], r.get("images_seen")) for r in snapshots.read_log(run)]
    assert events == [("snapshot", 0), ("snapshot", 12), ("stop", 12), ("snapshot", 24), ("stop", 24)]
    assert snapshots.read_log(run)[2]["by_user"] is True


def test_resume_refuses_to_change_the_model_settings(tiny_data: Path, tmp_path: Path):
    assert main(["--data", str(tiny_data), "--run-dir", str(tmp_path / "run"), "--preset", "tiny",
                 "--steps", "1", "--threads", "1", "--no-malloc-tuning"]) == 0
    assert main(["--resume", str(tmp_path / "run"), "--steps", "1", "--kimg", "1", "--no-malloc-tuning"]) == 0
    state = snapshots.read_state(tmp_path / "run" / snapshots.STATE_FILE)
    assert state["progress"]["images_seen"] == 2 * PRESETS["tiny"]["batch"]
    assert json.loads((tmp_path / "run" / snapshots.CONFIG_FILE).read_text())["total_kimg"] == 1
    assert main(["--resume", str(tmp_path / "run"), "--batch", "8", "--no-malloc-tuning"]) == 2


def _saved_state(path: Path, state: dict) -> Path:
    torch.save(state, path)
    return path


def test_a_resume_state_is_read_only_as_torch_save_writes_it(tmp_path):
    """training-state.pt is also read for the projection's discriminator distance, from the run of a
    model the user opened: a regular, uncompressed torch.save archive whose records fit in the file."""
    import os
    import threading
    import zipfile

    good = _saved_state(tmp_path / "good.pt", {"D": {"w": torch.arange(6.0)}, "step": 3})
    state = snapshots.read_state(good)
    assert state["step"] == 3 and torch.equal(state["D"]["w"], torch.arange(6.0))

    # A small file whose tensor record is deflated: it would expand to 400 MB.
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if "/data/" in info.filename:
                data = bytes(400 << 20)
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(snapshots.UnreadableState, match="compressed record"):
        snapshots.read_state(bomb)

    with pytest.raises(snapshots.UnreadableState, match="not a torch.save file"):
        snapshots.read_state(_text(tmp_path / "text.pt", "not an archive"))

    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))
    with pytest.raises(snapshots.UnreadableState, match="holds objects other than tensors and plain values"):
        snapshots.read_state(_saved_state(tmp_path / "code.pt", {"D": Payload()}))

    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    outcome: list[str] = []
    reader = threading.Thread(target=lambda: outcome.append(_error_of(fifo)), daemon=True)
    reader.start()
    reader.join(10)
    assert outcome and "named pipe (FIFO)" in outcome[0]


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _error_of(path: Path) -> str:
    try:
        snapshots.read_state(path)
    except snapshots.UnreadableState as e:
        return str(e)
    return "read"
