"""The shipped demo model (checkpoints/demo.safetensors), its card and grid, and training.release,
which promotes a training snapshot to them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from renderer.worker.models import ModelLoadError, load_generator, model_info, save_generator
from renderer.worker.networks import build_generator
from tests.conftest import ROOT, quiet, tiny_config
from training import release, snapshots
from training.dataset import load_images
from training.quality import QualityReference
from renderer.worker.latents import seed_images
from training.train import Trainer, train

SHIPPED = ROOT / "checkpoints" / "demo.safetensors"
CARD = ROOT / "checkpoints" / "DEMO_MODEL.md"
GRID = ROOT / "docs" / "demo_grid.png"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def shipped():
    return load_generator(SHIPPED)


def _min_pairwise_rms(images: torch.Tensor) -> float:
    flat = images.flatten(1).double()
    d = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    return float(d[~torch.eye(len(flat), dtype=torch.bool)].min())


def test_shipped_model_is_trained_and_renders_16_distinct_finite_seeds(shipped):
    info = model_info(shipped, SHIPPED)
    assert not info.untrained, "checkpoints/demo.safetensors is still the untrained placeholder"
    assert info.trained_kimg is not None and info.trained_kimg > 0
    images = seed_images(shipped, range(16), CPU)
    assert images.shape == (16, 3, 64, 64)
    assert torch.isfinite(images).all()
    # Every pair of seeds differs visibly (RMS over pixels, on the [-1, 1] scale).
    assert _min_pairwise_rms(images.clamp(-1, 1)) > 0.02


def test_shipped_model_is_much_closer_to_its_data_than_the_same_network_untrained(shipped, emoji_dataset):
    images, _ = load_images(emoji_dataset)
    reference = QualityReference(torch.from_numpy(images))
    seeds = range(128)  # what the trainer measures at every snapshot
    trained = reference.measure(seed_images(shipped, seeds, CPU))
    torch.manual_seed(0)
    untrained_G = build_generator("stylegan3", shipped.init_kwargs).eval().requires_grad_(False)
    untrained = reference.measure(seed_images(untrained_G, seeds, CPU))
    assert trained.chamfer < 0.7 * untrained.chamfer, (trained, untrained)
    assert trained.edge_fd < 0.5 * untrained.edge_fd, (trained, untrained)
    # The numbers on the card, in the checkpoint and in the run's log are reproducible from the weights.
    recorded = json.loads(shipped.checkpoint_metadata["quality"])
    assert trained.chamfer == pytest.approx(recorded["chamfer"], abs=2e-3)
    images_seen = json.loads(shipped.checkpoint_metadata["images_seen"])
    logged = [r for r in snapshots.read_log(ROOT / "checkpoints" / "demo-run")
              if r.get("event") == "snapshot" and r["images_seen"] == images_seen]
    assert logged and trained.edge_fd == pytest.approx(logged[-1]["edge_fd"], rel=0.02)
    assert f"{logged[-1]['edge_fd']:.4f}" in CARD.read_text(encoding="utf-8")


def test_card_and_grid_describe_the_shipped_weights(shipped):
    metadata = shipped.checkpoint_metadata
    card = CARD.read_text(encoding="utf-8")
    assert f"{float(metadata['kimg']):.1f} thousand" in card
    assert f"{json.loads(metadata['quality'])['chamfer']:.4f}" in card
    assert "CC-BY 4.0" in card and "Apache License 2.0" in card
    grid = np.asarray(Image.open(GRID).convert("RGB")).astype(np.float64)
    assert grid.shape == (8 * 64, 8 * 64, 3)
    expected = seed_images(shipped, range(64), CPU)
    for k in (0, 9, 63):
        row, col = divmod(k, 8)
        tile = grid[row * 64:(row + 1) * 64, col * 64:(col + 1) * 64]
        pixels = (expected[k].permute(1, 2, 0).numpy() * 127.5 + 128).clip(0, 255)
        assert np.abs(tile - pixels).mean() < 1.0, f"docs/demo_grid.png seed {k} is not this checkpoint's"


def test_release_promotes_a_snapshot_with_card_grid_and_curve(tiny_data: Path, tmp_path: Path):
    run = tmp_path / "run"
    result = train(tiny_config(tiny_data, snapshot_kimg=0.004), run, max_steps=2, log=quiet)
    out = release.release(result.last_snapshot, tmp_path / "checkpoints", tmp_path / "docs")

    promoted = load_generator(out.checkpoint)
    snapshot = load_generator(result.last_snapshot)
    assert all(torch.equal(a, b) for a, b in zip(promoted.state_dict().values(), snapshot.state_dict().values()))
    assert promoted.checkpoint_metadata["description"] == release.DESCRIPTION
    assert model_info(promoted, out.checkpoint).trained_kimg == pytest.approx(0.008)
    card = out.card.read_text(encoding="utf-8")
    quality = json.loads(snapshot.checkpoint_metadata["quality"])
    assert "0.0 thousand (2 steps)" in card and f"{quality['chamfer']:.4f}" in card
    assert f"{quality['edge_fd']:.4f}" in card
    assert Image.open(out.grid).size == (8 * 16, 8 * 16)  # the tiny preset's 16 px, 8x8 seeds
    assert out.curve is not None and Image.open(out.curve).size[0] > 600  # three snapshots: a curve


def test_card_reports_adaptive_augmentation_when_the_run_used_it(tiny_data: Path, tmp_path: Path):
    cfg = tiny_config(tiny_data, snapshot_kimg=1.0, ada_target=0.6)
    trainer = Trainer(cfg, tmp_path / "run", log=quiet)
    trainer.run(max_steps=2)
    trainer.progress.ada_p = 0.37  # where the controller might stand later in a run
    path, _ = trainer.snapshot()
    assert json.loads(load_generator(path).checkpoint_metadata["ada_p"]) == 0.37
    card = release.release(path, tmp_path / "checkpoints", tmp_path / "docs").card.read_text("utf-8")
    assert "adaptive discriminator augmentation" in card and "p at this snapshot 0.37" in card
    assert "D calls 60% of the real images real" in card
    assert "--ada-target" not in card  # no advice to switch on what is on


def test_release_adds_the_run_notes_to_the_card(tiny_data: Path, tmp_path: Path):
    result = train(tiny_config(tiny_data), tmp_path / "run", max_steps=1, log=quiet)
    notes = tmp_path / "notes.md"
    notes.write_text("A tried change and what it did.\n", encoding="utf-8")
    assert release.main([str(result.last_snapshot), "--checkpoints-dir", str(tmp_path / "c"), "--docs-dir",
                         str(tmp_path / "d"), "--notes", str(notes)]) == 0
    card = (tmp_path / "c" / "DEMO_MODEL.md").read_text(encoding="utf-8")
    assert "## Notes on the run\n\nA tried change and what it did.\n" in card
    assert card.index("## Notes on the run") < card.index("## Licence")
    assert release.main([str(result.last_snapshot), "--checkpoints-dir", str(tmp_path / "c"),
                         "--notes", str(tmp_path / "missing.md")]) == 2


def test_release_refuses_an_untrained_file(tmp_path: Path):
    G = build_generator("stylegan3", dict(z_dim=8, w_dim=8, c_dim=0, img_resolution=16, img_channels=3,
                                          channel_base=128, channel_max=8, num_layers=4, margin_size=2))
    path = save_generator(G.eval(), tmp_path / "untrained.safetensors")
    with pytest.raises(ModelLoadError, match="not a training snapshot"):
        release.release(path, tmp_path / "checkpoints", tmp_path / "docs")
    assert not (tmp_path / "checkpoints").exists()
    assert release.main([str(tmp_path / "missing.safetensors"), "--checkpoints-dir", str(tmp_path)]) == 2
