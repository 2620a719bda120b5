"""Hostile and broken files: refused with a clear message, and nothing in them ever runs."""

from __future__ import annotations

import collections
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.worker.model_records import module_tree
from renderer.worker.models import ModelLoadError, load_generator
from tests.official_pickle import (
    Call, GlobalName, code_payloads, dumps, legacy_storage_blob, short_str, snapshot, stack_global, to_persistent,
    write_official_pickle,
)
from torch_utils import persistence
from torch_utils.persistence import load_pickle


PAYLOAD_NAMES = list(code_payloads(Path("x")))


def placed(payload, where: str, G: torch.nn.Module):
    """The payload at the top of the file, as G_ema, or deep inside a network's state."""
    if where == "top":
        return payload
    if where == "G_ema":
        return {"G": None, "G_ema": payload}
    content = snapshot(G)
    content["G_ema"].child("synthesis.b8.conv0").state["_buffers"]["noise_const"] = payload
    return content


@pytest.fixture(scope="module")
def small_sg2(reference):
    return reference("sg2_small").build()


@pytest.mark.parametrize("where", ["top", "G_ema", "inside-a-layer"])
@pytest.mark.parametrize("global_name", PAYLOAD_NAMES)
def test_hostile_globals_are_refused_and_nothing_runs(global_name, where, tmp_path, small_sg2):
    marker = tmp_path / "marker"
    path = write_official_pickle(placed(code_payloads(marker)[global_name], where, small_sg2), tmp_path / "evil.pkl")
    with pytest.raises(ModelLoadError) as err:
        load_generator(path)
    message = str(err.value)
    assert str(path) in message and f"refers to {global_name}," in message and "refused" in message
    assert not marker.exists()


def test_the_payloads_are_live(tmp_path):
    """Control: an ordinary unpickler does run these payloads (so the test above can fail)."""
    for name in ("builtins.exec", "builtins.open"):
        marker = tmp_path / f"marker-{name}"
        obj = pickle.loads(dumps(code_payloads(marker)[name]))
        if hasattr(obj, "close"):
            obj.close()
        assert marker.exists(), name


def test_module_src_is_never_executed(tmp_path, reference):
    marker = tmp_path / "marker"
    module_src = f"open({str(marker)!r}, 'w').write('ran')\nimport os\nos.system('touch {marker}')\n"
    ref = reference("sg2_small")
    path = write_official_pickle(snapshot(ref.build(), module_src=module_src), tmp_path / "snapshot.pkl")
    G = load_generator(path)
    assert G.family == "stylegan2"
    assert not marker.exists()
    assert isinstance(load_pickle(path)["G_ema"], persistence.PersistentObject)


def test_build_cannot_change_our_functions(tmp_path):
    stream = (b"\x80\x04" + stack_global("torch_utils.persistence", "_reconstruct_persistent_obj")
              + pickle.NONE + pickle.EMPTY_DICT + short_str("__defaults__") + pickle.BININT1 + b"\x01"
              + pickle.TUPLE1 + pickle.SETITEM + pickle.TUPLE2 + pickle.BUILD + pickle.STOP)
    path = tmp_path / "build.pkl"
    path.write_bytes(stream)
    with pytest.raises(ModelLoadError, match="sets the state of a function"):
        load_pickle(path)
    assert persistence._reconstruct_persistent_obj.__defaults__ is None


@pytest.mark.parametrize("stream, expected", [
    (b"\x80\x04" + stack_global("numpy", "ndarray") + pickle.MARK + pickle.LONG1 + b"\x06\x00\x00\x00\x00\x00\x01"
     + pickle.TUPLE + pickle.TUPLE1 + pickle.NEWOBJ + pickle.STOP, "creates an object"),
    (b"\x80\x04" + stack_global("numpy", "ndarray") + pickle.MARK + pickle.LONG1 + b"\x06\x00\x00\x00\x00\x00\x01"
     + pickle.TUPLE + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP, "numpy.ndarray directly"),
    (b"\x80\x04" + stack_global("numpy._core.multiarray", "_reconstruct") + stack_global("numpy", "ndarray")
     + pickle.LONG1 + b"\x06\x00\x00\x00\x00\x00\x01" + pickle.TUPLE1 + short_str("b") + pickle.TUPLE3 + pickle.REDUCE
     + pickle.STOP, "unusual way"),
    (b"\x80\x04" + short_str("id") + pickle.BINPERSID + pickle.STOP, "persistent ids"),
    (b"(icollections\nOrderedDict\n.", "INST/OBJ"),
    (b"\x80\x04" + pickle.BINBYTES8 + struct.pack("<Q", 1 << 60) + b"abc" + pickle.STOP, "ends early"),
    (b"\x80\x04" + pickle.FRAME + struct.pack("<Q", 1 << 62) + b"K\x01.", "ends early"),
], ids=["newobj-ndarray", "reduce-ndarray", "huge-reconstruct", "persistent-id", "inst", "huge-bytes", "huge-frame"])
def test_whitelisted_globals_cannot_be_abused(stream, expected, tmp_path):
    path = tmp_path / "abuse.pkl"
    path.write_bytes(stream)
    with pytest.raises(ModelLoadError, match=expected):
        load_pickle(path)


def test_tensors_that_claim_more_data_than_they_hold(tmp_path):
    rebuild = GlobalName("torch._utils", "_rebuild_tensor_v2")
    storage = Call(GlobalName("torch.storage", "_load_from_bytes"),
                   (legacy_storage_blob("FloatStorage", 4, np.arange(4, dtype=np.float32).tobytes()),))
    good = Call(rebuild, (storage, 0, (2, 2), (2, 1), False, collections.OrderedDict()))
    cases = {
        "good": good,
        "huge-storage": Call(GlobalName("torch.storage", "_load_from_bytes"),
                             (legacy_storage_blob("FloatStorage", 10 ** 12, b"\x00" * 16),)),
        "huge-view": Call(rebuild, (storage, 0, (10 ** 9,), (1,), False, collections.OrderedDict())),
        "out-of-bounds": Call(rebuild, (storage, 0, (100,), (1,), False, collections.OrderedDict())),
        "offset": Call(rebuild, (storage, 1, (2, 2), (2, 1), False, collections.OrderedDict())),
        "not-a-storage": Call(rebuild, ("storage", 0, (1,), (1,), False, collections.OrderedDict())),
        "hooks": Call(rebuild, (storage, 0, (4,), (1,), False, collections.OrderedDict(h=1))),
    }
    path = tmp_path / "good.pkl"
    path.write_bytes(dumps(cases.pop("good")))
    assert torch.equal(load_pickle(path), torch.arange(4.0).reshape(2, 2))
    expected = {"huge-storage": "declares 1000000000000 elements", "huge-view": "reaches past the end of its data",
                "out-of-bounds": "reaches past the end", "offset": r"\(5 of 4 elements\)", "not-a-storage": "not a storage", "hooks": "backward hooks"}
    for name, payload in cases.items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(dumps(payload))
        with pytest.raises(ModelLoadError, match=expected[name]):
            load_pickle(path)


FLOAT64_STATE = (3, "<", None, None, None, -1, -1, 0)  # what numpy's dtype reduction writes for float64


def test_both_numpy_module_names_decode(tmp_path):
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        dtype = Call(GlobalName("numpy", "dtype"), ("f8", False, True), FLOAT64_STATE)
        path = tmp_path / "scalar.pkl"
        path.write_bytes(dumps(Call(GlobalName(module, "scalar"), (dtype, struct.pack("<d", 1.5)))))
        value = load_pickle(path)
        assert isinstance(value, np.float64) and value == 1.5


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pkl"
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=f"{path}: the file is empty"):
        load_generator(path)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(seed, tmp_path):
    path = tmp_path / "random.pkl"
    path.write_bytes(np.random.RandomState(seed).bytes(2000))
    with pytest.raises(ModelLoadError) as err:
        load_generator(path)
    assert str(path) in str(err.value)
    assert "network pickle" in str(err.value) or "ends early" in str(err.value) or "refused" in str(err.value)


def test_truncated_snapshots(tmp_path, small_sg2):
    data = dumps(snapshot(small_sg2))
    for cut in (1, 2, 11, 100, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.pkl"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError, match=f"{path}: the file ends early"):
            load_generator(path)


def test_files_of_other_kinds(tmp_path, small_sg2):
    text = tmp_path / "notes.pkl"
    text.write_text("these are not the weights you are looking for\n")
    archive = tmp_path / "checkpoint.pt"
    torch.save(small_sg2.state_dict(), archive)
    plain_zip = tmp_path / "models.zip"
    with zipfile.ZipFile(plain_zip, "w") as z:
        z.writestr("a.txt", "x")
    for path, expected in ((text, "not a network pickle"), (archive, "zip archive"), (plain_zip, "zip archive")):
        with pytest.raises(ModelLoadError, match=expected) as err:
            load_generator(path)
        assert str(path) in str(err.value)


@pytest.mark.parametrize("content, expected", [
    ([1, 2, 3], "holds a Python list, not a network"),
    ({"G": 1, "D": 2}, "without a 'G_ema' network \\(keys: 'G', 'D'\\)"),
    ({"G_ema": "generator"}, "without a 'G_ema' network"),
    (42, "holds a Python int"),
])
def test_pickles_of_the_wrong_kind(content, expected, tmp_path):
    path = tmp_path / "wrong.pkl"
    path.write_bytes(pickle.dumps(content, protocol=4))
    with pytest.raises(ModelLoadError, match=expected):
        load_generator(path)


def test_unknown_architectures(tmp_path, small_sg2):
    renamed = to_persistent(small_sg2)
    renamed.class_name = "SuperresGenerator"
    other_synthesis = to_persistent(small_sg2)
    other_synthesis.child("synthesis").class_name = "SynthesisNetworkXL"
    no_blocks = to_persistent(small_sg2)
    modules = no_blocks.child("synthesis").state["_modules"]
    no_blocks.child("synthesis").state["_modules"] = collections.OrderedDict(
        (f"block{i}", m) for i, m in enumerate(modules.values()))
    for name, record in (("renamed", renamed), ("other", other_synthesis), ("no-blocks", no_blocks)):
        path = write_official_pickle({"G_ema": record}, tmp_path / f"{name}.pkl")
        with pytest.raises(ModelLoadError, match="unknown architecture.*this tool reads network pickles of NVlabs"):
            load_generator(path)


def test_persistent_objects_of_another_type(tmp_path, small_sg2):
    record = to_persistent(small_sg2)
    record.kind = "module"
    path = write_official_pickle({"G_ema": record}, tmp_path / "module.pkl")
    with pytest.raises(ModelLoadError, match="only 'class' objects"):
        load_generator(path)


def test_no_module_named_in_the_file_gets_imported(tmp_path):
    """Refusing a global must not import its module (importing can run code)."""
    name = "viz_test_module_that_must_not_be_imported"
    path = tmp_path / "import.pkl"
    path.write_bytes(dumps(Call(GlobalName(name, "anything"), ())))
    with pytest.raises(ModelLoadError, match=name):
        load_pickle(path)
    assert name not in sys.modules


def test_easydict_becomes_a_plain_dict(tmp_path, small_sg2):
    content = load_pickle(write_official_pickle(snapshot(small_sg2), tmp_path / "s.pkl"))
    kwargs = content["training_set_kwargs"]
    assert type(kwargs) is persistence.EasyDict and isinstance(kwargs, dict) and kwargs["max_size"] == 1000
    assert isinstance(module_tree(content["G_ema"]).init_kwargs["mapping_kwargs"], dict)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_values_and_bytes_of_every_protocol(protocol, tmp_path):
    """What numpy's own reduction and Python's pickler write: protocol 2 spells bytes as
    _codecs.encode and sets as __builtin__.set, protocol 5 arrays as _frombuffer (the hostile
    forms of each are in tests/hostile_corpus.py)."""
    values = {"float": np.float64(1.5), "flag": np.bool_(True), "ints": np.arange(6, dtype=np.int64).reshape(2, 3),
              "floats": np.linspace(0, 1, 5, dtype=np.float32), "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
              "big_endian": np.arange(3, dtype=">f4"), "bytes": b"\x00\xff\x80" * 3, "set": {1, 2}}
    path = tmp_path / "values.pkl"
    path.write_bytes(pickle.dumps(values, protocol=protocol))
    data = path.read_bytes()
    if protocol == 2:
        assert b"_codecs\nencode" in data and b"__builtin__\nset" in data
    if protocol == 5:
        assert b"_frombuffer" in data
    loaded = load_pickle(path)
    assert loaded.keys() == values.keys()
    for key, value in values.items():
        if isinstance(value, np.ndarray):
            assert loaded[key].dtype == value.dtype.newbyteorder("=") and np.array_equal(loaded[key], value), key
        else:
            assert loaded[key] == value and type(loaded[key]) is type(value), key
