"""Loading generators: official-layout snapshots and bare pickles, the native format, run directories."""

from __future__ import annotations

import collections
import json
import os
import struct

import pytest
import torch

from renderer.worker.models import (
    ModelLoadError, load_generator, load_official_pickle, model_info, resolve_model_path, save_generator,
)
from renderer.worker.model_records import module_tree
from tests.official_pickle import Persistent, snapshot, to_persistent, write_official_pickle
from torch_utils.persistence import PersistentObject

NETWORKS = ["sg3t_small", "sg2_small"]


def render(G, ref, psi: float = 0.7) -> torch.Tensor:
    z = torch.from_numpy(ref["z"][:1])
    c = torch.from_numpy(ref["c"][:1])
    with torch.no_grad():
        return G(z, c, truncation_psi=psi, noise_mode="const")


def same_network(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Same class, constructor arguments and tensors: the same function (cheaper than rendering)."""
    sa, sb = a.state_dict(), b.state_dict()
    return (type(a) is type(b) and json.dumps(a.init_kwargs, sort_keys=True) == json.dumps(b.init_kwargs, sort_keys=True)
            and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa))


def perturbed_copy(ref) -> torch.nn.Module:
    """The same architecture with different weights (stands for the snapshot's G next to G_ema)."""
    G = ref.build()
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return G


@pytest.mark.parametrize("name", NETWORKS)
def test_snapshot_pickle_loads_G_ema_and_renders_like_the_source(name, reference, tmp_path):
    ref = reference(name)
    G_ema, G = ref.build(), perturbed_copy(ref)
    path = write_official_pickle(snapshot(G, G_ema), tmp_path / "network-snapshot-000100.pkl")

    loaded = load_generator(path)

    assert loaded.family == ref.family
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert loaded.source_path == str(path) and loaded.untrained is False
    expected = render(G_ema, ref)
    assert torch.equal(render(loaded, ref), expected)
    assert torch.allclose(expected, torch.from_numpy(ref["img_psi07"][:1]), atol=1e-4)
    assert same_network(loaded, G_ema) and not same_network(loaded, G)


@pytest.mark.parametrize("name", NETWORKS + ["sg3r_small", "sg3t_small_cond", "sg2_small_clamp"])
def test_bare_generator_pickle_loads(name, reference, tmp_path):
    ref = reference(name)
    G = ref.build()
    path = write_official_pickle(to_persistent(G), tmp_path / "generator.pkl")
    loaded = load_generator(path)
    assert same_network(loaded, G)
    assert model_info(loaded, path).family == {"sg3r": "stylegan3-r", "sg3t": "stylegan3-t"}.get(name[:4], "stylegan2")
    assert loaded.c_dim == ref.init_kwargs["c_dim"]
    if name == "sg2_small":  # rendering the StyleGAN3 network on the CPU is slow; the snapshot test does it
        assert torch.equal(render(loaded, ref), render(G, ref))


@pytest.mark.parametrize("module_src", [None, "", "print('hello')\n", "class SynthesisBlock:\n    pass\n"],
                         ids=["omitted", "empty", "arbitrary", "names-the-other-family"])
def test_module_src_does_not_matter(module_src, reference, tmp_path):
    ref = reference("sg3t_small")
    G = ref.build()
    path = write_official_pickle(snapshot(G, module_src=module_src), tmp_path / "snapshot.pkl")
    loaded = load_generator(path)
    assert loaded.family == "stylegan3"
    assert same_network(loaded, G)


def test_protocol_3_snapshots_load(reference, tmp_path):
    """Snapshots written under Python 3.7 (StyleGAN2-ADA) use protocol 3, where sets are builtins.set."""
    ref = reference("sg2_small")
    G = ref.build()
    path = write_official_pickle(snapshot(G), tmp_path / "py37.pkl", protocol=3)
    assert b"builtins\nset" in path.read_bytes()
    assert same_network(load_generator(path), G)


def test_positional_init_args_are_understood(reference, tmp_path):
    ref = reference("sg2_small")
    G = ref.build()
    record = to_persistent(G)
    kwargs = dict(record.state["_init_kwargs"])
    record.state["_init_args"] = tuple(kwargs.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"))
    record.state["_init_kwargs"] = kwargs
    path = write_official_pickle({"G": record, "G_ema": record}, tmp_path / "old.pkl")
    assert same_network(load_generator(path), G)


def test_extras_never_make_loading_fail(reference, tmp_path):
    ref = reference("sg2_small")
    G = ref.build()
    content = snapshot(G)
    content["D"] = Persistent("SomeForkDiscriminator", {"_modules": {}, "anything": [1, 2.5, "x"]})
    content["augment_pipe"] = None
    content["progress"] = {"cur_nimg": 123, "extra": Persistent("Whatever", {})}
    path = write_official_pickle(content, tmp_path / "snapshot.pkl")
    assert same_network(load_generator(path), G)
    record = load_official_pickle(path)
    assert record["training_set_kwargs"]["resolution"] == 64
    assert record["D"].class_name == "SomeForkDiscriminator"


@pytest.mark.parametrize("damage", ["missing", "unexpected", "shape"])
def test_tensors_must_match_the_architecture(damage, reference, tmp_path):
    G = reference("sg3t_small").build()
    content = snapshot(G)
    layer = content["G_ema"].child("synthesis.L3_36_64")
    if damage == "missing":
        del layer.state["_buffers"]["magnitude_ema"]
    elif damage == "unexpected":
        layer.state["_buffers"]["extra_buffer"] = torch.zeros(3)
    else:
        layer.state["_parameters"]["bias"] = torch.nn.Parameter(torch.zeros(7))
    path = write_official_pickle(content, tmp_path / "damaged.pkl")
    with pytest.raises(ModelLoadError) as err:
        load_generator(path)
    message = str(err.value)
    assert str(path) in message and damage.replace("shape", "wrong shape") in message
    assert {"missing": "synthesis.L3_36_64.magnitude_ema", "unexpected": "synthesis.L3_36_64.extra_buffer",
            "shape": "synthesis.L3_36_64.bias [7]"}[damage] in message


@pytest.mark.parametrize("name", NETWORKS)
def test_native_round_trip(name, reference, tmp_path):
    ref = reference(name)
    G = ref.build()
    path = save_generator(G, tmp_path / "model.safetensors", metadata={"untrained": "true", "kimg": 12})

    loaded = load_generator(path)

    assert same_network(loaded, G)
    if name == "sg2_small":
        assert torch.equal(render(loaded, ref), render(G, ref))
    assert loaded.untrained is True and loaded.checkpoint_metadata["kimg"] == "12"
    assert json.loads(json.dumps(loaded.init_kwargs)) == json.loads(json.dumps(G.init_kwargs))
    info = model_info(loaded, path)
    assert info.untrained and info.snapshot == str(path)
    assert info.trained_kimg == 12.0  # the number a training snapshot records, read back
    assert info.num_params == sum(p.numel() for p in G.parameters())
    assert (info.family, info.has_input_transform, info.has_noise) == (
        ("stylegan3-t", True, False) if name.startswith("sg3") else ("stylegan2", False, True))
    assert (info.img_resolution, info.z_dim, info.num_ws) == (64, 64, G.num_ws)


def test_native_checkpoint_of_a_converted_pickle_matches(reference, tmp_path):
    ref = reference("sg3t_small")
    pkl = write_official_pickle(snapshot(ref.build()), tmp_path / "a.pkl")
    from_pickle = load_generator(pkl)
    native = load_generator(save_generator(from_pickle, tmp_path / "a.safetensors"))
    assert same_network(native, from_pickle)
    assert native.untrained is False
    assert model_info(native, "a").trained_kimg is None  # nothing recorded: nothing claimed


def test_save_needs_constructor_arguments(reference, tmp_path):
    G = reference("sg3t_small").build()
    del G.init_kwargs
    with pytest.raises(ValueError, match="constructor arguments"):
        save_generator(G, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="reserved"):
        save_generator(reference("sg2_small").build(), tmp_path / "x.safetensors", metadata={"family": "other"})
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_the_old_file_untouched(reference, tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"the user's previous checkpoint")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("renderer.worker.models.os.fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_generator(reference("sg2_small").build(), path)
    assert path.read_bytes() == b"the user's previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_write_goes_through_a_tmp_file_in_the_same_directory(reference, tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr("renderer.worker.models.os.replace", spy)
    path = save_generator(reference("sg2_small").build(), tmp_path / "m.safetensors")
    [(src, dst)] = renames
    assert src.endswith(".tmp") and os.path.dirname(src) == str(tmp_path) and dst == str(path)


def test_truncated_or_foreign_native_files_are_refused(reference, tmp_path):
    good = save_generator(reference("sg2_small").build(), tmp_path / "good.safetensors")
    data = good.read_bytes()
    for cut in (0, 5, 100, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError, match=str(bad)):
            load_generator(bad)
    import safetensors.torch
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(safetensors.torch.save({"w": torch.zeros(2)}, metadata={"format": "pt"}))
    with pytest.raises(ModelLoadError, match="not a generator checkpoint"):
        load_generator(foreign)


def test_run_directory_resolves_to_newest_complete_snapshot(reference, tmp_path):
    G = reference("sg2_small").build()
    complete = write_official_pickle(snapshot(G), tmp_path / "network-snapshot-000100.pkl").read_bytes()
    save_generator(G, tmp_path / "network-snapshot-000200.safetensors")
    (tmp_path / "network-snapshot-000300.pkl").write_bytes(complete[: len(complete) // 2])  # still being written
    (tmp_path / "network-snapshot-000400.pkl.tmp").write_bytes(complete)
    (tmp_path / ".network-snapshot-000500.safetensors.123-abcd.tmp").write_bytes(b"partial")
    (tmp_path / "network-snapshot-000250.safetensors").write_bytes(struct.pack("<Q", 1 << 60) + b"{}")  # cut header
    (tmp_path / "network-snapshot-000600.pkl.bak").write_bytes(complete)
    (tmp_path / "log.txt").write_text("kimg 600")

    assert resolve_model_path(tmp_path) == tmp_path / "network-snapshot-000200.safetensors"
    (tmp_path / "network-snapshot-000300.pkl").write_bytes(complete)
    assert resolve_model_path(tmp_path) == tmp_path / "network-snapshot-000300.pkl"
    assert load_generator(tmp_path).source_path == str(tmp_path / "network-snapshot-000300.pkl")
    assert resolve_model_path(tmp_path / "log.txt") == tmp_path / "log.txt"  # a file is taken as is


def test_run_directory_without_snapshots_and_missing_paths(tmp_path):
    (tmp_path / "network-snapshot-000100.pkl.tmp").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="no complete network-snapshot"):
        load_generator(tmp_path)
    with pytest.raises(ModelLoadError, match="no such file"):
        load_generator(tmp_path / "nope.pkl")


def test_state_dicts_from_records_skip_non_persistent_buffers(reference, tmp_path):
    record = to_persistent(reference("sg2_small").build())
    record.state["_buffers"] = collections.OrderedDict(record.state["_buffers"], scratch=torch.zeros(1))
    record.state["_non_persistent_buffers_set"] = {"scratch"}
    loaded = load_official_pickle(write_official_pickle(record, tmp_path / "g.pkl"))
    assert isinstance(loaded, PersistentObject)
    tensors = module_tree(loaded).state_dict()
    assert "scratch" not in tensors and "mapping.w_avg" in tensors
