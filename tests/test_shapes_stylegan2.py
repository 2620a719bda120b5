"""StyleGAN2 networks built from the official configurations (reference/shapes_sg2_*.json) have
exactly the official state-dict entries and synthesis layer table; the other architectures run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from renderer.worker.networks.stylegan2 import Generator
from tests.conftest import REFERENCE_DIR

SHAPE_FILES = sorted(REFERENCE_DIR.glob("shapes_sg2_*.json")) or [REFERENCE_DIR / "shapes_sg2_1024.json"]


def load_config(path: Path) -> dict:
    if not path.exists():
        pytest.skip(f"{path} not found (set VIZ_REFERENCE_DIR)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module", params=SHAPE_FILES, ids=lambda p: p.stem)
def config_and_network(request) -> tuple[dict, Generator]:
    config = load_config(request.param)
    with torch.no_grad():
        G = Generator(**config["persistence_init_kwargs"])
    return config, G


def test_state_dict_names_shapes_dtypes(config_and_network):
    config, G = config_and_network
    parameters = {name for name, _ in G.named_parameters()}
    buffers = {name for name, _ in G.named_buffers()}
    ours = [
        (name, list(t.shape), str(t.dtype).removeprefix("torch."), "parameter" if name in parameters else "buffer")
        for name, t in G.state_dict().items()
    ]
    expected = [(e["name"], e["shape"], e["dtype"], e["kind"]) for e in config["state_dict"]]
    assert [o[0] for o in ours] == [e[0] for e in expected]  # same names, same order
    assert ours == expected
    assert len(ours) == config["num_state_dict_entries"]
    assert sum(p.numel() for p in G.parameters()) == config["num_parameters"]
    assert not buffers & parameters


def test_synthesis_layer_table(config_and_network):
    config, G = config_and_network
    table = config["synthesis_layers"]
    summary = table["synthesis"]
    assert G.num_ws == G.synthesis.num_ws == summary["num_ws"]
    assert G.synthesis.block_resolutions == summary["block_resolutions"]
    assert G.synthesis.num_fp16_res == summary["num_fp16_res"]

    modules = dict(G.named_modules())
    for layer in table["layers"]:
        module = modules[layer["module"]]
        block = modules[layer["module"].rsplit(".", 1)[0]]
        assert block.architecture == summary["architecture"]
        assert block.use_fp16 == layer["block_use_fp16"], layer["name"]
        assert module.conv_clamp == layer["conv_clamp"], layer["name"]
        assert module.in_channels == layer["in_channels"], layer["name"]
        assert module.out_channels == layer["channels"], layer["name"]
        assert block.resolution == layer["size"][0] == layer["size"][1], layer["name"]
        if "up" in layer:
            assert module.up == layer["up"]
            assert module.kernel_size == layer["kernel_size"]
            assert module.padding == layer["padding"]
            assert module.use_noise == layer["use_noise"]
            assert module.activation == layer["activation"]
            assert module.resolution == layer["size"][0]
    layer_modules = {layer["module"] for layer in table["layers"]}
    ours = {name for name, m in modules.items() if name.count(".") == 2 and name.split(".")[2] in ("conv0", "conv1", "torgb")}
    assert ours == layer_modules


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_architectures_run(architecture):
    G = Generator(z_dim=16, c_dim=3, w_dim=16, img_resolution=16, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, architecture=architecture, channel_base=256, channel_max=16)
    names = set(G.state_dict())
    has_rgb = {res: f"synthesis.b{res}.torgb.weight" in names for res in G.synthesis.block_resolutions}
    assert has_rgb == {4: architecture == "skip", 8: architecture == "skip", 16: True}
    assert ("synthesis.b8.skip.weight" in names) == (architecture == "resnet")
    assert G.num_ws == 1 + 2 + 2 + 1  # one row per conv layer, plus one for the last to-RGB

    z = torch.randn([2, 16])
    c = torch.eye(3)[[0, 2]]
    with torch.no_grad():
        img = G.eval()(z, c)
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    assert not torch.allclose(img[0], img[1])


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="architecture"):
        Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, architecture="unet")
