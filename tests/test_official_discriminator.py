"""The D of official training snapshots, rebuilt for the projection's discriminator distance
(renderer.worker.networks.discriminator, renderer.worker.official_discriminator): its names and
shapes are the official files' own, it computes what this project's separately written training
discriminator computes on the same weights, it is checked like the generator, and a projection on
an official snapshot uses it."""

from __future__ import annotations

import lzma
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.worker.analysis.d_distance import DiscriminatorDistance, NoDiscriminator
from renderer.worker.analysis.distances import choose_distance
from renderer.worker.analysis.projection import ProjectionSettings, Projector
from renderer.worker.models import load_generator
from renderer.worker.networks.discriminator import Conv2dLayer, Discriminator
from renderer.worker.official_discriminator import rebuild_discriminator
from tests.conftest import COMPAT_DIR
from tests.official_pickle import dumps, to_persistent
from torch_utils.persistence import read_pickle
from training.discriminator import Discriminator as TrainingDiscriminator

PYTORCH_SNAPSHOTS = ("ada_paper256_snapshot", "ada_auto_cond3_snapshot", "fun_sg3_t_snapshot", "fun_sg2_snapshot",
                     "sg3_t_protocol5", "sg3repo_sg2_resample121_snapshot")
WITH_D = ("ada_paper256_snapshot", "ada_auto_cond3_snapshot", "tf_sg2_configf_like")   # tests/data keeps D's data


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("official_d")
    out = {}
    for name in PYTORCH_SNAPSHOTS + ("tf_sg2_configf_like",):
        out[name] = folder / f"{name}.pkl"
        out[name].write_bytes(lzma.decompress((COMPAT_DIR / f"{name}.pkl.xz").read_bytes()))
    return out


def _record_tensors(path) -> dict[str, torch.Tensor]:
    from renderer.worker.model_records import module_tree
    return module_tree(read_pickle(path).content["D"]).state_dict()


@pytest.mark.parametrize("name", PYTORCH_SNAPSHOTS)
def test_every_tensor_of_the_files_d_has_its_place(name, snapshots):
    stored = _record_tensors(snapshots[name])
    D = rebuild_discriminator(read_pickle(snapshots[name]).content)
    ours = D.state_dict()
    assert set(ours) == set(stored)
    for key, t in stored.items():
        assert torch.equal(ours[key], t.float()), key
    assert not any(p.requires_grad for p in D.parameters()) and not D.training


def _training_d_with_the_weights_of(D: Discriminator) -> TrainingDiscriminator:
    """This project's own training discriminator (written separately, with its own names) holding the
    official D's weights."""
    blocks = D.blocks()
    T = TrainingDiscriminator(img_resolution=D.img_resolution, img_channels=D.img_channels,
                              channel_base=blocks[0].conv0.in_channels * D.img_resolution,
                              channel_max=max(b.conv1.out_channels for b in blocks), mbstd_group_size=4)
    names = {"from_rgb": f"b{D.img_resolution}.fromrgb", "conv": "b4.conv", "fc": "b4.fc", "out": "b4.out"}
    for i, res in enumerate(D.block_resolutions):
        names[f"blocks.{i}"] = f"b{res}"
    theirs = D.state_dict()
    mapped = {}
    for key in T.state_dict():
        if key.endswith("blur"):
            mapped[key] = T.state_dict()[key]
            continue
        prefix = next(p for p in sorted(names, key=len, reverse=True) if key.startswith(p + "."))
        mapped[key] = theirs[names[prefix] + key[len(prefix):]]
    T.load_state_dict(mapped)
    return T.eval()


def test_it_computes_what_the_training_discriminator_computes_on_the_same_weights(snapshots):
    D = rebuild_discriminator(read_pickle(snapshots["ada_paper256_snapshot"]).content)
    T = _training_d_with_the_weights_of(D)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        ours, theirs = D(images), T(images)
        features = D.stage_features(images)
    assert ours.shape == (4, 1)
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5), (ours, theirs)
    assert max(float(f.abs().max()) for f in features) < 256     # far from the clamp: the two must agree
    assert float((ours - ours.mean()).abs().max()) > 1e-4        # the images are told apart


def test_convolutions_clamp_at_conv_clamp_times_their_gain():
    torch.manual_seed(0)
    layer = Conv2dLayer(4, 8, 3, activation="lrelu", down=2, conv_clamp=2.0)
    x = torch.randn(1, 4, 8, 8) * 100
    with torch.no_grad():
        y, y_half = layer(x), layer(x, gain=0.5)
    assert y.shape == (1, 8, 4, 4)
    assert float(y.max()) == pytest.approx(2.0) and float(y.min()) == pytest.approx(-2.0)
    assert float(y_half.abs().max()) == pytest.approx(1.0)


def test_a_conditional_d_projects_onto_its_class_embedding(snapshots):
    D = rebuild_discriminator(read_pickle(snapshots["ada_auto_cond3_snapshot"]).content)
    assert D.c_dim == 3 and len([n for n in D.mapping.state_dict() if n.endswith("weight")]) == 9   # embed + 8 fc
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        per_class = [D(images, torch.eye(3)[[k] * 3]) for k in range(3)]
        cmap = D.mapping(None, torch.eye(3)[[0] * 3])
        x = None
        img = images
        for block in D.blocks():
            x, img = block(x, img)
        out = D.b4.out(D.b4.fc(D.b4.conv(D.b4.mbstd(x)).flatten(1)))
    expected = (out * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])
    assert torch.allclose(per_class[0], expected, atol=1e-5)
    assert not torch.allclose(per_class[0], per_class[1])


def test_auto_chooses_the_files_d(snapshots):
    for name in WITH_D:
        G = load_generator(snapshots[name])
        chosen = choose_distance("auto", str(snapshots[name]), G)
        assert (chosen.kind, chosen.note) == ("discriminator", ""), name


def test_a_tensorflow_d_is_converted_as_the_official_conversion_maps_it(snapshots):
    """Every variable has its place, and the layouts are right: D's first two layers computed straight
    from the TensorFlow variables (NHWC images, [kh, kw, in, out] kernels, a cross-correlation) agree."""
    from renderer.worker.tf_conversion import variables_of

    content = read_pickle(snapshots["tf_sg2_configf_like"]).content
    variables = variables_of(content[1])
    D = rebuild_discriminator(content)
    assert len(D.state_dict()) - sum(n.endswith("resample_filter") for n in D.state_dict()) == len(variables)
    assert (D.img_resolution, D.b4.out.out_features) == (32, 1)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)       # NHWC, as TensorFlow

    def lrelu(v):
        return np.where(v > 0, v, 0.2 * v) * np.sqrt(2)

    w, b = variables["32x32/FromRGB/weight"], variables["32x32/FromRGB/bias"]
    y = lrelu(np.einsum("nhwi,io->nhwo", x, w[0, 0]) / np.sqrt(3) + b)
    w0, b0 = variables["32x32/Conv0/weight"], variables["32x32/Conv0/bias"]
    padded = np.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)))
    z = sum(np.einsum("nhwi,io->nhwo", padded[:, dy:dy + 32, dx:dx + 32], w0[dy, dx])
            for dy in range(3) for dx in range(3))
    z = lrelu(z / np.sqrt(32 * 9) + b0)
    with torch.no_grad():
        ours_y = D.b32.fromrgb(torch.from_numpy(x).permute(0, 3, 1, 2))
        ours_z = D.b32.conv0(ours_y)
    assert np.allclose(ours_y.permute(0, 2, 3, 1).numpy(), y, atol=1e-4)
    assert np.allclose(ours_z.permute(0, 2, 3, 1).numpy(), z, atol=1e-4)


def _tf_value(net):
    from tests.official_pickle import TFNetworkValue

    state = dict(net.state)
    state["components"] = {k: _tf_value(v) for k, v in (state.get("components") or {}).items()}
    return TFNetworkValue(state)


TF_BROKEN = {
    "an argument the conversion does not know": (lambda st: st["static_kwargs"].update(fmap_decay=1.0),
                                                 "records the argument 'fmap_decay'"),
    "a conditional D": (lambda st: st["static_kwargs"].update(label_size=3), "is conditional"),
    "a missing variable": (lambda st: st.update(variables=[v for v in st["variables"] if v[0] != "8x8/Skip/weight"]),
                           "lacks the variable 8x8/Skip/weight"),
    "a variable nothing takes": (lambda st: st["variables"].append(("2x2/Extra/weight", np.zeros(3, np.float32))),
                                 "does not place \\(2x2/Extra/weight"),
    "another network": (lambda st: st.update(build_func_name="D_basic"), "built by 'D_basic'"),
}


@pytest.mark.parametrize("case", list(TF_BROKEN))
def test_a_tensorflow_d_that_cannot_be_converted_is_named(case, snapshots, tmp_path):
    change, expected = TF_BROKEN[case]
    G, D, Gs = read_pickle(snapshots["tf_sg2_configf_like"]).content
    D.state["variables"] = list(D.state["variables"])
    D.state["static_kwargs"] = dict(D.state["static_kwargs"])
    change(D.state)
    path = tmp_path / "tf.pkl"
    path.write_bytes(dumps((_tf_value(G), _tf_value(D), _tf_value(Gs)), protocol=3))
    loaded = load_generator(path)
    with pytest.raises(NoDiscriminator, match=expected):
        choose_distance("discriminator", str(path), loaded)
    assert choose_distance("auto", str(path), loaded).kind == "pixels"


def test_the_snapshots_d_makes_a_distance_that_is_zero_at_the_target(snapshots):
    path = snapshots["ada_paper256_snapshot"]
    G = load_generator(path)
    make = choose_distance("discriminator", str(path), G).make
    with torch.no_grad():
        images = G(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)), None, noise_mode="const")
        distance = make(images[:1])
        assert isinstance(distance, DiscriminatorDistance)
        near = images[:1] + 0.05 * torch.randn(images[:1].shape, generator=torch.Generator().manual_seed(4))
        at, close, far = (float(distance(x)[0]) for x in (images[:1], near, images[1:]))
        features = float(distance.feature_distance(near)[0])
    assert abs(at) < 1e-5 and 0 < close < far and features > 0


def test_projecting_into_an_official_snapshot_uses_its_d(snapshots):
    path = snapshots["ada_paper256_snapshot"]
    G = load_generator(path)
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(5)), None)
        target = G.synthesis(w, noise_mode="const")
    pixels = ((target[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255)).to(torch.uint8).numpy()
    chosen = choose_distance("auto", str(path), G)
    projector = Projector(G, pixels, ProjectionSettings(steps=25, w_noise_factor=0.0, optimize_noise=False),
                          chosen.make)
    while not projector.finished:
        projector.step(5)
    assert chosen.kind == "discriminator"
    assert projector.distances[-1] < 0.7 * projector.distances[0]


def test_the_project_command_says_it_uses_the_snapshots_d(snapshots, tmp_path, capsys):
    from PIL import Image

    from renderer.worker.cli_project import project_main

    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "w.npy"
    assert project_main([str(snapshots["ada_paper256_snapshot"]), str(image), "--out", str(out), "--steps", "2"]) == 0
    assert "discriminator distance" in capsys.readouterr().out and np.load(out).shape[1] == 32
    assert project_main([str(snapshots["tf_sg2_configf_like"]), str(image), "--out", str(out), "--steps", "1"]) == 0
    assert "discriminator distance" in capsys.readouterr().out
    assert project_main([str(snapshots["tf_sg2_configf_like"]), str(image), "--out", str(out), "--steps", "1",
                         "--distance", "pixels"]) == 0
    assert "pixels distance" in capsys.readouterr().out


# --- A D that cannot be used: the reason, and "auto" goes on with pixels ---------------------------

def _micro_d(**changes) -> Discriminator:
    torch.manual_seed(0)
    kwargs = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, conv_clamp=256,
                  epilogue_kwargs=dict(mbstd_group_size=4))
    D = Discriminator(**kwargs)
    D.init_kwargs = {**kwargs, **changes}
    return D


def _snapshot_with(tmp_path, D_record) -> Path:
    from tests.hostile_corpus import micro_snapshot

    content = micro_snapshot()
    if D_record is None:
        del content["D"]
    else:
        content["D"] = D_record
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(dumps(content))
    return path


def _broken_shape():
    record = to_persistent(_micro_d())
    record.child("b16.conv0").state["_parameters"]["weight"] = torch.zeros(16, 16, 3, 1)
    return record


BROKEN = {
    "no D": (lambda: None, "holds no discriminator network 'D'"),
    "an unknown argument": (lambda: to_persistent(_micro_d(use_sigmoid=True)), "use_sigmoid = True, which the official"),
    "an architecture it does not have": (lambda: to_persistent(_micro_d(architecture="dense")),
                                         "architecture = 'dense', but it must be one of"),
    "a network far larger than the file": (lambda: to_persistent(_micro_d(channel_base=1 << 24, channel_max=16384)),
                                           "describe a network of more than"),
    "a tensor of the wrong shape": (_broken_shape, "wrong shape: b16.conv0.weight"),
    "a minibatch deviation that splits no channels evenly": (
        lambda: to_persistent(_micro_d(epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=3))),
        "mbstd_num_channels = 3 does not divide the 16 channels"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_d_that_cannot_be_used_is_named_and_auto_uses_pixels(case, tmp_path):
    make, expected = BROKEN[case]
    path = _snapshot_with(tmp_path, make())
    G = load_generator(path)
    with pytest.raises(NoDiscriminator, match=expected):
        choose_distance("discriminator", str(path), G)
    chosen = choose_distance("auto", str(path), G)
    assert chosen.kind == "pixels" and expected.split(",")[0].split(":")[0] in chosen.note


def test_a_sound_micro_d_in_a_written_snapshot_is_rebuilt(tmp_path):
    D = _micro_d()
    path = _snapshot_with(tmp_path, to_persistent(D))
    rebuilt = rebuild_discriminator(read_pickle(path).content)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(rebuilt(images), D.eval()(images), atol=1e-6)
