"""Generator files of other projects (tests/data/compat, see its README): stylegan2-ada-pytorch and
stylegan3-fun snapshots, a legacy TensorFlow StyleGAN2 pickle, protocol 5 and a custom StyleGAN2
resample filter. Each loads through the restricted unpickler and renders the official images, on
both op paths; `info` says what it is; `convert` writes it as a native checkpoint."""

from __future__ import annotations

import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.worker.cli import convert_main, info_main
from renderer.worker.models import ModelLoadError, load_generator, model_info
from tests.conftest import COMPAT_DIR, EXTRA_REFERENCE_DIR, ROOT
from tests.official_pickle import (
    Call, EasyDictValue, GlobalName, TFNetworkValue, dumps, snapshot, to_persistent, write_official_pickle,
)
from torch_utils.ops import paths

# name -> (source project, kind, pickle protocol, family label)
FILES = {
    "ada_paper256_snapshot": ("NVlabs/stylegan2-ada-pytorch", "training snapshot", 3, "stylegan2"),
    "ada_auto_cond3_snapshot": ("NVlabs/stylegan2-ada-pytorch", "training snapshot", 4, "stylegan2"),
    "fun_sg3_t_snapshot": ("PDillis/stylegan3-fun", "training snapshot", 4, "stylegan3-t"),
    "fun_sg2_snapshot": ("PDillis/stylegan3-fun", "training snapshot", 4, "stylegan2"),
    "tf_sg2_configf_like": ("NVlabs/stylegan2", "TensorFlow network, converted on load", 3, "stylegan2"),
    "sg3_t_protocol5": ("NVlabs/stylegan3", "training snapshot", 5, "stylegan3-t"),
    "sg3repo_sg2_resample121_snapshot": ("NVlabs/stylegan3", "training snapshot", 4, "stylegan2"),
}
OP_PATHS = ["reference", "cpu"]
REL_TOL = 1e-4   # of max(1, max |image|): some StyleGAN2 outputs reach several hundred


@pytest.fixture(scope="module")
def compat_files(tmp_path_factory) -> dict[str, Path]:
    """The vendored files, decompressed."""
    folder = tmp_path_factory.mktemp("compat")
    out = {}
    for name in FILES:
        out[name] = folder / f"{name}.pkl"
        out[name].write_bytes(lzma.decompress((COMPAT_DIR / f"{name}.pkl.xz").read_bytes()))
    return out


@pytest.fixture(scope="module")
def loaded(compat_files):
    cache: dict[str, torch.nn.Module] = {}

    def get(name: str) -> torch.nn.Module:
        if name not in cache:
            cache[name] = load_generator(compat_files[name])
        return cache[name]

    return get


def max_relative_difference(G: torch.nn.Module, expected: np.lib.npyio.NpzFile) -> float:
    """Largest |ours - official| over both seeds and psis, over max(1, max |official image|)."""
    z, c = torch.from_numpy(expected["z"]), torch.from_numpy(expected["c"])
    worst = 0.0
    for psi, images in zip(expected["psis"], expected["images"]):
        with torch.no_grad():
            ours = G(z, c, truncation_psi=float(psi), noise_mode="const", force_fp32=True).numpy()
        assert ours.shape == images.shape
        worst = max(worst, float(np.abs(ours - images).max()) / max(1.0, float(np.abs(images).max())))
    return worst


@pytest.mark.parametrize("op_path", OP_PATHS)
@pytest.mark.parametrize("name", FILES)
def test_renders_the_official_images(name, op_path, loaded):
    expected = np.load(COMPAT_DIR / f"{name}_expected.npz")
    G = loaded(name)
    with paths.selected(op_path):
        assert max_relative_difference(G, expected) <= REL_TOL


@pytest.mark.parametrize("name", FILES)
def test_info_says_what_the_file_is(name, compat_files, loaded, capsys):
    source, kind, protocol, family = FILES[name]
    info = model_info(loaded(name), compat_files[name])
    assert (info.source.startswith(source), info.kind, info.pickle_protocol, info.family) == (True, kind, protocol, family)
    assert info_main([str(compat_files[name])]) == 0
    lines = {line.split(None, 1)[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert source in lines["source"] and kind in lines["source"] and f"protocol {protocol}" in lines["source"]
    assert family in lines["family"]


def test_info_from_the_command_line(compat_files):
    run = subprocess.run([sys.executable, "visualizer.py", "info", str(compat_files["ada_auto_cond3_snapshot"])],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "source       NVlabs/stylegan2-ada-pytorch: training snapshot, pickle protocol 4\n" in run.stdout
    assert "(conditional)" in run.stdout


def test_ada_defaults_and_nested_arguments(loaded):
    """stylegan2-ada-pytorch's synthesis_kwargs merged: its file records num_fp16_res 4, conv_clamp 256."""
    G = loaded("ada_paper256_snapshot")
    assert G.synthesis.b32.conv1.conv_clamp == 256 and G.synthesis.num_fp16_res == 4
    assert G.mapping.num_layers == 8 and "synthesis_kwargs" not in G.init_kwargs


def test_ada_files_that_lack_arguments_get_its_defaults(reference, tmp_path):
    """stylegan2-ada-pytorch's defaults (num_fp16_res 0, conv_clamp None, w_avg_beta 0.995), not stylegan3's."""
    G = reference("sg2_small").build()
    record = to_persistent(G)
    kwargs = dict(record.state["_init_kwargs"])
    kwargs.pop("fused_modconv_default")
    synthesis = EasyDictValue(channel_base=kwargs.pop("channel_base"), channel_max=kwargs.pop("channel_max"))
    record.state["_init_kwargs"] = EasyDictValue(kwargs, synthesis_kwargs=synthesis)
    path = write_official_pickle(record, tmp_path / "ada.pkl")
    loaded = load_generator(path)
    assert model_info(loaded, path).source == "NVlabs/stylegan2-ada-pytorch"
    assert loaded.synthesis.b64.conv1.conv_clamp is None and loaded.synthesis.num_fp16_res == 0
    assert loaded.mapping.w_avg_beta == 0.995
    assert G.synthesis.b64.conv1.conv_clamp == 256 and G.mapping.w_avg_beta == 0.998   # stylegan3's, for contrast


def test_custom_resample_filter_is_kept_per_layer(loaded):
    """[1, 2, 1] where the official block uses it, the default 4 taps in conv1 as the file stores them."""
    G = loaded("sg3repo_sg2_resample121_snapshot")
    assert G.synthesis.b8.resample_filter.shape == (3, 3) and G.synthesis.b8.conv0.resample_filter.shape == (3, 3)
    assert G.synthesis.b8.conv1.resample_filter.shape == (4, 4)


def test_fun_training_only_arguments_are_ignored(loaded):
    G = loaded("fun_sg3_t_snapshot")
    assert "freeze_layers" not in G.init_kwargs["mapping_kwargs"]


@pytest.mark.parametrize("name", ["tf_sg2_configf_like", "ada_auto_cond3_snapshot", "sg3repo_sg2_resample121_snapshot"])
def test_convert_writes_a_native_checkpoint(name, compat_files, tmp_path, capsys):
    out = tmp_path / f"{name}.safetensors"
    assert convert_main([str(compat_files[name]), str(out)]) == 0
    assert "renders identically" in capsys.readouterr().out
    native = load_generator(out)
    info = model_info(native, out)
    assert info.kind.startswith("native checkpoint, converted from a") and info.source.startswith(FILES[name][0])
    assert max_relative_difference(native, np.load(COMPAT_DIR / f"{name}_expected.npz")) <= REL_TOL


EXTRA = sorted(EXTRA_REFERENCE_DIR.glob("compat/*.pkl")) if EXTRA_REFERENCE_DIR else []


@pytest.mark.skipif(not EXTRA, reason="extra cases: the full official files in ../shared/reference/compat")
@pytest.mark.parametrize("path", EXTRA, ids=[p.stem for p in EXTRA])
def test_full_official_files(path, loaded):
    """The complete files (G and D with their weights) load to the same generator as the trimmed ones."""
    G = load_generator(path)
    expected = np.load(path.with_name(f"{path.stem}_expected.npz"))
    assert max_relative_difference(G, expected) <= REL_TOL
    if path.stem in FILES:
        ours, trimmed = G.state_dict(), loaded(path.stem).state_dict()
        assert ours.keys() == trimmed.keys() and all(torch.equal(ours[k], trimmed[k]) for k in ours)


# --- Messages for files that are recognised but not supported ------------------------------------

def test_unknown_argument_names_the_argument_the_project_and_what_is_supported(reference, tmp_path):
    G = reference("sg3t_small").build()
    record = to_persistent(G)
    record.state["_init_kwargs"]["mapping_kwargs"] = EasyDictValue(num_layers=2, freeze_layers=0, mapping_dropout=0.1)
    path = write_official_pickle(snapshot(G) | {"G_ema": record}, tmp_path / "fork.pkl")
    with pytest.raises(ModelLoadError) as err:
        load_generator(path)
    message = str(err.value)
    assert message.startswith(f"{path}: its generator records the argument mapping_kwargs.mapping_dropout = 0.1")
    assert "(the file appears to come from PDillis/stylegan3-fun or a fork of it)" in message
    assert "supports the generator arguments of NVlabs/stylegan3" in message and "\n" not in message


def test_recognised_but_unsupported_files(tmp_path):
    """Two files this tool recognises and does not read: the messages say what they are and what is
    supported, in one sentence a user can act on."""
    xl = tmp_path / "stylegan_xl.pkl"   # dill writes classes by value through its own globals
    xl.write_bytes(dumps({"G_ema": Call(GlobalName("dill._dill", "_create_type"), ("Generator", (), {}))}))
    v1 = tmp_path / "karras2019stylegan-ffhq-1024x1024.pkl"   # TensorFlow StyleGAN: Gs built by G_style
    state = {"version": 3, "name": "Gs", "static_kwargs": {"resolution": 1024}, "components": {},
             "build_module_src": "# TensorFlow source, never needed\n", "build_func_name": "G_style",
             "variables": [("dlatent_avg", np.zeros(512, np.float32))]}
    v1.write_bytes(dumps((TFNetworkValue(dict(state, name="G")), TFNetworkValue(dict(state, name="D")),
                          TFNetworkValue(state)), protocol=3))
    messages = []
    for path in (xl, v1):
        with pytest.raises(ModelLoadError) as err:
            load_generator(path)
        messages.append(str(err.value))
    assert messages[0] == (
        f"{xl}: it was saved with dill (it refers to dill._dill._create_type), as StyleGAN-XL and other projects "
        "save their networks, and holds network code of another architecture; this tool reads network pickles of "
        "NVlabs/stylegan3, NVlabs/stylegan2-ada-pytorch and PDillis/stylegan3-fun (StyleGAN3 and StyleGAN2 "
        "generators), TensorFlow StyleGAN2 / StyleGAN2-ADA pickles, and .safetensors files written by "
        "`visualizer.py convert`")
    assert messages[1] == (
        f"{v1}: it is a TensorFlow StyleGAN generator of the first version (G_style), which this tool does not "
        "convert; it reads network pickles of NVlabs/stylegan3, NVlabs/stylegan2-ada-pytorch and "
        "PDillis/stylegan3-fun (StyleGAN3 and StyleGAN2 generators), TensorFlow StyleGAN2 / StyleGAN2-ADA pickles, "
        "and .safetensors files written by `visualizer.py convert`")
