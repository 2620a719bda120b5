"""The project's corpus of hostile and broken inputs, generated (nothing opaque is committed).

Each Case writes one input into its own folder: a model file (given to `info`, `render` and
`load_generator`), a W file (given to `render --w` and `read_w_file`), or a list of `render`
arguments. `expect` is a regular expression that the one-line refusal must match; None marks a
file that is merely odd and must load (or render) cleanly. Cases that try to run code aim at
the file `marker` in their folder, which must never appear.

    python -m tests.hostile_corpus DIR     writes the corpus into DIR and lists it
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import re
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import safetensors.torch
import torch

from renderer.worker.models import save_generator
from renderer.worker.networks import build_generator
from tests.official_pickle import (
    Call, GlobalName, TFNetworkValue, code_payloads, dumps, legacy_storage_blob, short_str, snapshot, stack_global,
    to_persistent,
)

MICRO_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                    mapping_kwargs=dict(num_layers=2))
MICRO_NUM_WS, MICRO_W_DIM = 6, 8
P4 = b"\x80\x04"
REFUSED_CODE = r"refers to {}, which a network pickle never needs \(refused: loading it could run code\)"


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    kind: str                               # "model", "w" or "args"
    expect: str | None                      # regex the refusal must match; None: loads cleanly
    make: Callable[[Path, Path], Any]       # (case folder, marker) -> file path, or render arguments


CASES: list[Case] = []


def case(group: str, expect: str | None, kind: str = "model") -> Callable:
    def register(make: Callable[[Path, Path], Any]) -> Callable:
        CASES.append(Case(make.__name__, group, kind, expect, make))
        return make
    return register


def micro_generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_generator("stylegan2", MICRO_KWARGS).eval()


def write_model(folder: Path, content: Any, name: str = "model.pkl", protocol: int = 4) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else dumps(content, protocol))
    return path


def micro_snapshot() -> dict:
    return snapshot(micro_generator())


def with_kwargs(**changes: Any) -> dict:
    """A snapshot whose G_ema records other constructor arguments (its tensors unchanged)."""
    content = micro_snapshot()
    kwargs = content["G_ema"].state["_init_kwargs"]
    for key, value in changes.items():
        kwargs[key] = value
    return content


def in_layer(payload: Any) -> dict:
    """A snapshot with `payload` as a buffer deep inside a synthesis layer."""
    content = micro_snapshot()
    content["G_ema"].child("synthesis.b8.conv0").state["_buffers"]["noise_const"] = payload
    return content


def in_kwargs(value: Any) -> dict:
    return with_kwargs(extra_argument=value)


# --- Code execution ------------------------------------------------------------------------------

def _payload_case(global_name: str, where: str) -> None:
    def make(folder: Path, marker: Path) -> Path:
        payload = code_payloads(marker)[global_name]
        content = payload if where == "top" else in_layer(payload)
        return write_model(folder, content, protocol=2 if global_name.startswith("__builtin__") else 4)
    make.__name__ = "_".join(["code", *re.findall(r"[A-Za-z0-9]+", global_name.lower()), where])
    case("code execution", REFUSED_CODE.format(re.escape(global_name)))(make)


for _global in ("os.system", "posix.system", "builtins.eval", "builtins.exec", "builtins.open", "__builtin__.eval",
                "subprocess.Popen", "builtins.getattr", "pickle.loads", "torch.load", "copyreg._reconstructor"):
    _payload_case(_global, "layer")
_payload_case("os.system", "top")


@case("code execution", None)
def code_in_module_src_is_never_run(folder, marker):
    """Merely odd: the source text the official loader would execute is ignored."""
    return write_model(folder, snapshot(micro_generator(), module_src=f"import os\nos.system('touch {marker}')\n"))


@case("code execution", "refused to load: tensor data refers to os.system")
def code_in_a_storage_header(folder, marker):
    blob = legacy_storage_blob("FloatStorage", 1, b"\0" * 4)
    evil = blob.replace(b"ctorch\nFloatStorage\n", b"cos\nsystem\n", 1)
    return write_model(folder, in_layer(Call(GlobalName("torch.storage", "_load_from_bytes"), (evil,))))


# --- numpy state: memory safety --------------------------------------------------------------------

def _dtype(code: str, state: tuple) -> Call:
    return Call(GlobalName("numpy", "dtype"), (code, False, True), state)


PLAIN_F8 = (3, "<", None, None, None, -1, -1, 0)


@case("numpy state", r"numpy data of type 'V8'; only plain numbers")
def numpy_void_dtype_with_object_field(folder, marker):
    """The segfault of issue 14: a void dtype whose field is an object, read by tolist()."""
    field = _dtype("O8", (3, "|", None, None, None, -1, -1, 63))
    dtype = _dtype("V8", (3, "|", None, ("f0",), {"f0": (field, 0)}, 8, 1, 0))
    scalar = Call(GlobalName("numpy._core.multiarray", "scalar"), (dtype, b"A" * 8))
    return write_model(folder, in_kwargs(scalar))


@case("numpy state", r"numpy dtype carries fields, sizes or flags that plain numbers never have")
def numpy_field_offset_past_the_buffer(folder, marker):
    dtype = _dtype("f8", (3, "|", None, ("a",), {"a": (_dtype("f8", PLAIN_F8), 100_000)}, 8, 1, 0))
    return write_model(folder, in_kwargs(Call(GlobalName("numpy._core.multiarray", "scalar"), (dtype, b"\0" * 8))))


@case("numpy state", r"numpy data of type 'O8'")
def numpy_object_array(folder, marker):
    array = Call(GlobalName("numpy._core.multiarray", "_reconstruct"), (GlobalName("numpy", "ndarray"), (0,), b"b"),
                 (1, (1,), _dtype("O8", (3, "|", None, None, None, -1, -1, 63)), False, [code_payloads(marker)["os.system"]]))
    return write_model(folder, in_kwargs(array))


@case("numpy state", r"numpy array of shape \[1000000\] and type float64 needs 8,000,000 bytes but carries 8")
def numpy_array_shorter_than_its_shape(folder, marker):
    array = Call(GlobalName("numpy.core.multiarray", "_reconstruct"), (GlobalName("numpy", "ndarray"), (0,), b"b"),
                 (1, (1_000_000,), _dtype("f8", PLAIN_F8), False, b"\0" * 8))
    return write_model(folder, in_kwargs(array))


@case("memory bomb", r"numpy data of type 'V2000000000'")
def numpy_ten_void_scalars_of_2gb(folder, marker):
    dtype = _dtype("V2000000000", (3, "|", None, None, None, 2_000_000_000, 1, 0))
    scalars = [Call(GlobalName("numpy._core.multiarray", "scalar"), (dtype, b"")) for _ in range(10)]
    return write_model(folder, in_kwargs(scalars))


@case("protocol 5 _frombuffer", r"needs 80,000 bytes but carries 8")
def frombuffer_lying_length(folder, marker):
    array = Call(GlobalName("numpy._core.numeric", "_frombuffer"), (bytearray(8), _dtype("f8", PLAIN_F8), (10_000,), "C"))
    return write_model(folder, in_kwargs(array), protocol=5)


@case("protocol 5 _frombuffer", r"numpy data of a type other than plain numbers")
def frombuffer_lying_dtype(folder, marker):
    array = Call(GlobalName("numpy.core.numeric", "_frombuffer"), (bytearray(8), "f8", (1,), "C"))
    return write_model(folder, in_kwargs(array), protocol=5)


@case("protocol 5 _frombuffer", r"numpy data of type 'O8'")
def frombuffer_object_dtype(folder, marker):
    array = Call(GlobalName("numpy._core.numeric", "_frombuffer"),
                 (bytearray(8), _dtype("O8", (3, "|", None, None, None, -1, -1, 63)), (1,), "C"))
    return write_model(folder, in_kwargs(array), protocol=5)


@case("protocol 5 _frombuffer", r"out-of-band buffers")
def frombuffer_out_of_band(folder, marker):
    return write_model(folder, P4.replace(b"\x04", b"\x05") + pickle.NEXT_BUFFER + pickle.STOP)


# --- protocol 2 globals ---------------------------------------------------------------------------

@case("protocol 2 _codecs.encode", r"_codecs.encode is used other than for bytes in latin-1")
def codecs_encode_other_codec(folder, marker):
    return write_model(folder, in_layer(Call(GlobalName("_codecs", "encode"), ("abc", "rot13"))), protocol=2)


@case("protocol 2 _codecs.encode", r"_codecs.encode is used other than for bytes in latin-1")
def codecs_encode_of_bytes(folder, marker):
    return write_model(folder, in_layer(Call(GlobalName("_codecs", "encode"), (b"abc", "latin1"))), protocol=2)


@case("protocol 2 _codecs.encode", r"text that is not latin-1 bytes")
def codecs_encode_not_latin1(folder, marker):
    return write_model(folder, in_layer(Call(GlobalName("_codecs", "encode"), ("\u20ac" * 10, "latin1"))), protocol=2)


@case("protocol 2 set", r"a set is built from a str")
def set_of_a_string(folder, marker):
    return write_model(folder, in_layer(Call(GlobalName("__builtin__", "set"), ("x" * 100_000,))), protocol=2)


@case("protocol 2 set", r"holds a Python set, not a network")
def set_huge(folder, marker):
    """A set of 200,000 items from a 1 MB file: read (linear in the file), and not a network."""
    items = b"".join(pickle.BININT + struct.pack("<i", i) for i in range(200_000))
    return write_model(folder, b"\x80\x02" + b"c__builtin__\nset\n" + pickle.MARK + pickle.MARK + items
                       + pickle.LIST + pickle.TUPLE + pickle.REDUCE + pickle.STOP)


# --- Memory bombs ---------------------------------------------------------------------------------

@case("memory bomb", r"describe a network of more than \d+ MB, but the file holds only 0\.\d MB of tensors")
def bomb_z_dim_16384(folder, marker):
    """Issue 14: a small pickle whose generator records z_dim = w_dim = 16384."""
    content = with_kwargs(z_dim=16384, w_dim=16384)
    return write_model(folder, content)


@case("memory bomb", r"describe a network of more than \d+ MB, but the file holds only")
def bomb_native_init_kwargs(folder, marker):
    path = save_generator(micro_generator(), folder / "model.safetensors")
    data = path.read_bytes()
    return _native_with_kwargs(folder, data, {**MICRO_KWARGS, "z_dim": 16384, "w_dim": 16384})


@case("memory bomb", r"z_dim = 60000, but it must be an integer from 1 to 16384")
def bomb_native_z_dim_60000(folder, marker):
    data = save_generator(micro_generator(), folder / "model.safetensors").read_bytes()
    return _native_with_kwargs(folder, data, {**MICRO_KWARGS, "z_dim": 60000})


@case("memory bomb", r"tensor data in torch's zip layout")
def bomb_deflated_storage_ten_times(folder, marker):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data/0", bytes(128 << 20))
    blob = buffer.getvalue()   # one blob, decoded by ten separate calls
    storages = [Call(GlobalName("torch.storage", "_load_from_bytes"), (blob,)) for _ in range(10)]
    return write_model(folder, in_kwargs(storages))


@case("memory bomb", r"a tensor declares 1000000000000 elements but its data holds only")
def bomb_storage_declares_more(folder, marker):
    storage = Call(GlobalName("torch.storage", "_load_from_bytes"), (legacy_storage_blob("FloatStorage", 10 ** 12, b"\0" * 16),))
    return write_model(folder, in_layer(storage))


@case("memory bomb", r"reaches past the end of its data \(1000000000 of 4 elements\)")
def bomb_stride_zero_view(folder, marker):
    storage = Call(GlobalName("torch.storage", "_load_from_bytes"), (legacy_storage_blob("FloatStorage", 4, b"\0" * 16),))
    tensor = Call(GlobalName("torch._utils", "_rebuild_tensor_v2"), (storage, 0, (10 ** 9,), (0,), False, collections.OrderedDict()))
    return write_model(folder, in_layer(tensor))


@case("memory bomb", r"more than 20,000 values")
def bomb_shared_reference_fan_out(folder, marker):
    """Issue 14: shared references in the arguments, 10^9 numbers when expanded (a 13 KB file)."""
    leaves = [0.5] * 1000
    return write_model(folder, in_kwargs([[leaves] * 1000] * 1000))


@case("memory bomb", r"values nested more than 16 levels deep")
def bomb_shared_reference_dag(folder, marker):
    """Lists that share their halves, 2^60 leaves when expanded."""
    node: Any = [1.0]
    for _ in range(60):
        node = [node, node]
    return write_model(folder, in_kwargs(node))


@case("memory bomb", r"more than 250,000 pickle operations")
def bomb_opcode_flood(folder, marker):
    return write_model(folder, P4 + (pickle.EMPTY_SET + pickle.POP) * 150_000 + pickle.NONE + pickle.STOP)


@case("memory bomb", r"more than 250,000 pickle operations")
def bomb_memo_flood(folder, marker):
    return write_model(folder, P4 + pickle.NONE + pickle.MEMOIZE * 300_000 + pickle.STOP)


@case("memory bomb", r"the file ends early")
def bomb_huge_length_field(folder, marker):
    return write_model(folder, P4 + pickle.BINBYTES8 + struct.pack("<Q", 1 << 60) + b"abc" + pickle.STOP)


@case("memory bomb", r"the file ends early")
def bomb_huge_frame(folder, marker):
    return write_model(folder, P4 + pickle.FRAME + struct.pack("<Q", 1 << 62) + b"K\x01.")


@case("memory bomb", r"its \.safetensors header claims 1,152,921,504,606,846,976 bytes")
def bomb_native_header_length(folder, marker):
    path = folder / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    return path


# --- Malformed records (issue 14, item 4) -----------------------------------------------------------

@case("malformed record", r"_modules of module \(top\) is a list instead of a dict")
def record_modules_as_a_list(folder, marker):
    content = micro_snapshot()
    content["G_ema"].state["_modules"] = list(content["G_ema"].state["_modules"].values())
    return write_model(folder, content)


@case("malformed record", r"a child of module \(top\) is named 7, which no network module or tensor is")
def record_int_keys(folder, marker):
    content = micro_snapshot()
    modules = content["G_ema"].state["_modules"]
    content["G_ema"].state["_modules"] = collections.OrderedDict((7 if k == "mapping" else k, v) for k, v in modules.items())
    return write_model(folder, content)


@case("malformed record", r"_init_kwargs of module \(top\) is a list instead of a dict")
def record_init_kwargs_not_a_dict(folder, marker):
    content = micro_snapshot()
    content["G_ema"].state["_init_kwargs"] = [1, 2, 3]
    return write_model(folder, content)


@case("malformed record", r"positional constructor arguments of module \(top\) are of type int, not a list")
def record_init_args_an_int(folder, marker):
    content = micro_snapshot()
    content["G_ema"].state["_init_args"] = 5
    return write_model(folder, content)


@case("malformed record", r"z_dim = -5, but it must be an integer from 1 to 16384")
def record_negative_z_dim(folder, marker):
    return write_model(folder, with_kwargs(z_dim=-5))


@case("malformed record", r"img_resolution = 63, but it must be an integer from 4 to 16384, a power of two")
def record_resolution_not_power_of_two(folder, marker):
    return write_model(folder, with_kwargs(img_resolution=63))


@case("malformed record", r"channel_base = '256', but it must be an integer")
def record_string_for_a_number(folder, marker):
    return write_model(folder, with_kwargs(channel_base="256"))


@case("malformed record", r"values nested more than 16 levels deep")
def record_cyclic_list(folder, marker):
    cycle: list = []
    cycle.append(cycle)
    return write_model(folder, in_kwargs(cycle))


@case("malformed record", r"values nested more than 16 levels deep")
def record_100k_deep_list(folder, marker):
    sentinel = "a list nested 100,000 levels deep goes here"
    data = dumps(in_kwargs(sentinel), protocol=3)   # no frames: the stream can be spliced
    encoded = sentinel.encode()
    deep = pickle.EMPTY_LIST * 100_000 + pickle.APPEND * 99_999   # pushes one list, as the string did
    return write_model(folder, data.replace(pickle.BINUNICODE + struct.pack("<I", len(encoded)) + encoded, deep, 1))


@case("malformed record", r"synthesis\.b8\.conv0\.weight is a str, not a tensor")
def record_tensor_as_a_string(folder, marker):
    content = micro_snapshot()
    content["G_ema"].child("synthesis.b8.conv0").state["_parameters"]["weight"] = "weights"
    return write_model(folder, content)


@case("malformed record", r"appears twice in the module tree")
def record_module_twice(folder, marker):
    content = micro_snapshot()
    mapping = content["G_ema"].child("mapping")
    content["G_ema"].child("synthesis").state["_modules"]["b4"] = mapping
    content["G_ema"].child("synthesis").state["_modules"]["b8"] = mapping
    return write_model(folder, content)


@case("malformed record", r"nest more than 32 levels deep")
def record_modules_nested_deeply(folder, marker):
    content = micro_snapshot()
    chain = content["G_ema"].child("synthesis.b16.torgb")
    for _ in range(40):
        inner = to_persistent(torch.nn.Identity())
        chain.state["_modules"]["deeper"] = inner
        chain = inner
    return write_model(folder, content)


@case("malformed record", r"its tensors do not fit a stylegan2 generator .*wrong shape: synthesis\.b8\.conv0\.bias \[7\]")
def record_tensor_of_the_wrong_shape(folder, marker):
    content = micro_snapshot()
    content["G_ema"].child("synthesis.b8.conv0").state["_parameters"]["bias"] = torch.nn.Parameter(torch.zeros(7))
    return write_model(folder, content)


@case("malformed record", r"only 'class' objects are supported")
def record_persistent_of_another_type(folder, marker):
    content = micro_snapshot()
    content["G_ema"].kind = "module"
    return write_model(folder, content)


@case("malformed record", r"a persistent object's description is a list, not a dict")
def record_meta_not_a_dict(folder, marker):
    return write_model(folder, {"G_ema": Call(GlobalName("torch_utils.persistence", "_reconstruct_persistent_obj"),
                                              ([1, 2],))})


@case("malformed record", r"the pickle holds a Discriminator, not a generator")
def record_discriminator_only(folder, marker):
    from tests.official_pickle import fake_discriminator

    return write_model(folder, fake_discriminator(16))


@case("malformed record", r"checkpoint's constructor arguments are unreadable \(not readable JSON\)")
def native_deeply_nested_json(folder, marker):
    data = save_generator(micro_generator(), folder / "model.safetensors").read_bytes()
    return _native_with_kwargs(folder, data, None, raw="[" * 100_000 + "]" * 100_000)


@case("malformed record", r"z_dim = -5, but it must be an integer from 1 to 16384")
def native_negative_z_dim(folder, marker):
    data = save_generator(micro_generator(), folder / "model.safetensors").read_bytes()
    return _native_with_kwargs(folder, data, {**MICRO_KWARGS, "z_dim": -5})


@case("malformed record", r"not real numbers: mapping\.w_avg \(bool\)")
def native_boolean_tensor(folder, marker):
    tensors = {k: v.contiguous() for k, v in micro_generator().state_dict().items()}
    tensors["mapping.w_avg"] = torch.zeros(8, dtype=torch.bool)
    path = folder / "model.safetensors"
    path.write_bytes(safetensors.torch.save(tensors, metadata=_native_metadata(MICRO_KWARGS)))
    return path


@case("malformed record", r"no complete network-snapshot-NNNNNN\.pkl or \.safetensors in this directory")
def run_directory_with_header_list(folder, marker):
    run = folder / "run"
    run.mkdir()
    header = b"[]"
    (run / "network-snapshot-000100.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    return run


# --- Other kinds of files -------------------------------------------------------------------------

@case("other file", r"the file is empty")
def file_empty(folder, marker):
    return write_model(folder, b"")


@case("other file", r"the file ends early")
def file_truncated_snapshot(folder, marker):
    data = dumps(micro_snapshot())
    return write_model(folder, data[: len(data) // 2])


@case("other file", r"not a network pickle|the file ends early|refused to load")
def file_random_bytes(folder, marker):
    return write_model(folder, b"\x80\x04" + np.random.RandomState(1).bytes(4000))


@case("other file", r"not a network pickle")
def file_text(folder, marker):
    return write_model(folder, b"these are not the weights you are looking for\n")


@case("other file", r"this is a zip archive \(e\.g\. a torch\.save checkpoint\)")
def file_torch_save(folder, marker):
    path = folder / "model.pkl"
    torch.save(micro_generator().state_dict(), path)
    return path


@case("other file", r"holds a Python list, not a network")
def file_pickled_list(folder, marker):
    return write_model(folder, pickle.dumps([1, 2, 3], protocol=4))


@case("other file", r"a pickled dict without a 'G_ema' network \(keys: 'G', 'D'\)")
def file_dict_without_g_ema(folder, marker):
    return write_model(folder, pickle.dumps({"G": 1, "D": 2}, protocol=4))


@case("other file", r"persistent ids")
def file_persistent_id(folder, marker):
    return write_model(folder, P4 + short_str("id") + pickle.BINPERSID + pickle.STOP)


@case("other file", r"INST/OBJ opcodes")
def file_inst_opcode(folder, marker):
    return write_model(folder, b"(icollections\nOrderedDict\n.")


@case("other file", r"extension codes")
def file_extension_code(folder, marker):
    return write_model(folder, P4 + pickle.EXT1 + b"\x01" + pickle.STOP)


@case("other file", r"sets the state of a function")
def file_build_on_our_function(folder, marker):
    return write_model(folder, P4 + stack_global("torch_utils.persistence", "_reconstruct_persistent_obj")
                       + pickle.EMPTY_DICT + pickle.BUILD + pickle.STOP)


@case("other file", r"creates an object of \w+ unexpectedly")
def file_newobj_ndarray(folder, marker):
    return write_model(folder, P4 + stack_global("numpy", "ndarray") + pickle.EMPTY_TUPLE + pickle.NEWOBJ + pickle.STOP)


@case("recognised, unsupported", r"saved with dill \(it refers to dill\._dill\._create_type\), as StyleGAN-XL")
def file_stylegan_xl_dill(folder, marker):
    return write_model(folder, {"G_ema": Call(GlobalName("dill._dill", "_create_type"), ("Generator", (), {}))})


@case("recognised, unsupported", r"holds whole torch modules \(torch\.nn\.modules\.sparse\.Embedding\)")
def file_plain_torch_modules(folder, marker):
    return write_model(folder, in_layer(Call(GlobalName("torch.nn.modules.sparse", "Embedding"), (10, 4))))


@case("recognised, unsupported", r"unknown architecture \(SuperresGenerator")
def file_unknown_architecture(folder, marker):
    content = micro_snapshot()
    content["G_ema"].class_name = "SuperresGenerator"
    return write_model(folder, content)


def _tf_state(**changes: Any) -> dict:
    state = {"version": 4, "name": "Gs", "static_kwargs": {"resolution": 16, "latent_size": 8, "dlatent_size": 8},
             "components": {}, "build_module_src": "# TensorFlow source\n", "build_func_name": "G_main",
             "variables": [("dlatent_avg", np.zeros(8, np.float32))]}
    state.update(changes)
    return state


@case("recognised, unsupported", r"TensorFlow StyleGAN generator of the first version \(G_style\)")
def tf_stylegan1(folder, marker):
    return write_model(folder, (TFNetworkValue(_tf_state()),) * 2 + (TFNetworkValue(_tf_state(build_func_name="G_style")),),
                       protocol=3)


@case("TensorFlow record", r"records the argument 'fmap_decay', which the official conversion")
def tf_unknown_argument(folder, marker):
    state = _tf_state(static_kwargs={"resolution": 16, "fmap_decay": 1.0})
    return write_model(folder, (TFNetworkValue(state),) * 3, protocol=3)


@case("TensorFlow record", r"lacks the variable \S+ that \S+ is made from")
def tf_missing_variable(folder, marker):
    state = _tf_state(static_kwargs={"resolution": 16, "latent_size": 8, "dlatent_size": 8, "fmap_base": 64,
                                     "fmap_max": 16})
    return write_model(folder, (TFNetworkValue(state),) * 3, protocol=3)


@case("TensorFlow record", r"components nest too deeply")
def tf_cyclic_components(folder, marker):
    network = TFNetworkValue(_tf_state())
    network.state["components"] = {"mapping": network}
    return write_model(folder, (network,) * 3, protocol=3)


@case("TensorFlow record", r"TensorFlow variable is not a \(name, numeric array\) pair")
def tf_variable_not_a_pair(folder, marker):
    return write_model(folder, (TFNetworkValue(_tf_state(variables=[("x", "not an array")])),) * 3, protocol=3)


# --- Hangs: not a regular file --------------------------------------------------------------------

@case("not a regular file", r"is a named pipe \(FIFO\), not a model file")
def fifo_model(folder, marker):
    path = folder / "model.pkl"
    os.mkfifo(path)
    return path


@case("not a regular file", r"is a named pipe \(FIFO\), not a model file")
def fifo_native(folder, marker):
    path = folder / "model.safetensors"
    os.mkfifo(path)
    return path


@case("not a regular file", r"is a device, not a model file")
def device_named_like_a_model(folder, marker):
    path = folder / "zero.pkl"
    path.symlink_to("/dev/zero")
    return path


@case("not a regular file", r"no complete network-snapshot")
def fifo_snapshot_in_a_run_directory(folder, marker):
    run = folder / "run"
    run.mkdir()
    os.mkfifo(run / "network-snapshot-000100.pkl")
    return run


# --- W files --------------------------------------------------------------------------------------

def _w(dtype: Any = np.float32, shape: tuple = (MICRO_NUM_WS, MICRO_W_DIM)) -> np.ndarray:
    return np.random.RandomState(2).randn(*shape).astype(dtype)


def _npy(folder: Path, array: np.ndarray, name: str = "w.npy") -> Path:
    np.save(folder / name, array, allow_pickle=array.dtype.hasobject)
    return folder / name


def _npy_header(folder: Path, header: dict, data: bytes, name: str = "w.npy") -> Path:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    (folder / name).write_bytes(buffer.getvalue() + data)
    return folder / name


for _dtype_name, _kind in (("int32", "integers"), ("bool", "booleans"), ("complex64", "complex numbers")):
    def _make(folder, marker, dtype=_dtype_name):
        return _npy(folder, _w(dtype))
    _make.__name__ = f"w_{_dtype_name}"
    case("W file", rf"is of type \S+ \({_kind}\); W must be floating point", kind="w")(_make)


@case("W file", None, kind="w")
def w_float16_converts_exactly(folder, marker):
    return _npy(folder, _w(np.float16))


@case("W file", None, kind="w")
def w_big_endian_converts_exactly(folder, marker):
    return _npy(folder, _w(">f4"))


@case("W file", r"of type \|O \(not numbers\)", kind="w")
def w_object_array_with_code(folder, marker):
    payload = dumps(code_payloads(marker)["os.system"])
    return _npy_header(folder, {"descr": "|O", "fortran_order": False, "shape": (MICRO_NUM_WS, MICRO_W_DIM)}, payload)


@case("W file", r"has shape \[100000, 100000\]; this model needs", kind="w")
def w_header_claims_40gb(folder, marker):
    return _npy_header(folder, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)}, b"\0" * 64)


@case("W file", r"has shape \[16384, 16384\]; this model needs", kind="w")
def w_1gb_file_of_the_wrong_shape(folder, marker):
    path = _npy_header(folder, {"descr": "<f4", "fortran_order": False, "shape": (16384, 16384)}, b"")
    with open(path, "r+b") as f:
        f.truncate(1 << 30)   # sparse: takes no disk space
    return path


@case("W file", r"ends early: its header promises 192 bytes of data", kind="w")
def w_truncated(folder, marker):
    path = _npy(folder, _w())
    path.write_bytes(path.read_bytes()[:-10])
    return path


@case("W file", r"holding a\.npy, b\.npy; expected a single array", kind="w")
def w_npz_of_two_arrays(folder, marker):
    np.savez(folder / "w.npz", a=_w(), b=_w())
    return folder / "w.npz"


@case("W file", None, kind="w")
def w_npz_as_the_projector_writes(folder, marker):
    np.savez(folder / "projected_w.npz", w=_w()[None])
    return folder / "projected_w.npz"


@case("W file", None, kind="w")
def w_npz_deflated_with_a_long_tail(folder, marker):
    buffer = io.BytesIO()
    np.save(buffer, _w())
    with zipfile.ZipFile(folder / "w.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("w.npy", "w", force_zip64=True) as member:
            member.write(buffer.getvalue())
            for _ in range(64):
                member.write(bytes(1 << 20))
    return folder / "w.npz"


@case("W file", r"NaN or infinite values", kind="w")
def w_nan(folder, marker):
    w = _w()
    w[0, 0] = np.nan
    return _npy(folder, w)


@case("W file", r"neither a \.npy nor a \.npz file", kind="w")
def w_text(folder, marker):
    (folder / "w.npy").write_text("0.1 0.2 0.3\n")
    return folder / "w.npy"


@case("W file", r"named pipe \(FIFO\), not a regular file", kind="w")
def w_fifo(folder, marker):
    os.mkfifo(folder / "w.npy")
    return folder / "w.npy"


@case("W file", r"is a directory, not a regular file", kind="w")
def w_directory(folder, marker):
    (folder / "w.npy").mkdir()
    return folder / "w.npy"


# --- render arguments -----------------------------------------------------------------------------

def _args_case(name: str, argv: list[str], expect: str | None) -> None:
    def make(folder: Path, marker: Path) -> list[str]:
        return argv
    make.__name__ = f"args_{name}"
    case("render argument", expect, kind="args")(make)


for _name, _argv, _option in [
    ("psi_1e308", ["--psi", "1e308"], "--psi"), ("psi_eq_1e30", ["--psi=1e30"], "--psi"),
    ("psi_nan", ["--psi", "nan"], "--psi"), ("seed_negative", ["--seed", "-1"], "--seed"),
    ("seed_2_40", ["--seed", str(2 ** 40)], "--seed"), ("translate_1e9", ["--translate", "1e9", "0"], "--translate"),
    ("rotate_1e20", ["--rotate", "1e20"], "--rotate"), ("gain_1e6", ["--gain-db", "1e6"], "--gain-db"),
    ("fft_beta_inf", ["--fft-beta", "inf"], "--fft-beta"), ("class_negative", ["--class", "-3"], "--class"),
    ("cutoff_negative", ["--cutoff", "-1"], "--cutoff"), ("channel_huge", ["--channel", "1e12"], "--channel"),
]:
    _args_case(_name, _argv, rf"argument {_option}: ")
_args_case("layer_unknown", ["--layer", "L" * 5000], r"This model has no layer 'LLLL")


@case("render argument", None, kind="args")
def args_out_is_a_directory(folder, marker):
    """Merely odd: the frame is written into the directory, not beside it."""
    (folder / "frames").mkdir()
    return ["--seed", "3", "--out", str(folder / "frames")]


# --- Native checkpoints with other metadata -------------------------------------------------------

def _native_metadata(kwargs: dict | None, raw: str | None = None) -> dict[str, str]:
    return {"format": "stylegan-visualizer-generator", "format_version": "1", "family": "stylegan2",
            "init_kwargs": raw if raw is not None else json.dumps(kwargs)}


def _native_with_kwargs(folder: Path, data: bytes, kwargs: dict | None, raw: str | None = None) -> Path:
    tensors = safetensors.torch.load(data)
    path = folder / "model.safetensors"
    path.write_bytes(safetensors.torch.save(tensors, metadata=_native_metadata(kwargs, raw)))
    return path


def write_corpus(root: Path) -> list[tuple[Case, Any]]:
    """Every case written under `root` (one folder each): (case, file path or render arguments)."""
    out = []
    for c in CASES:
        folder = root / c.name
        folder.mkdir(parents=True)
        out.append((c, c.make(folder, folder / "marker")))
    return out


if __name__ == "__main__":
    for c, made in write_corpus(Path(sys.argv[1])):
        print(f"{c.group:28s} {c.kind:5s} {c.name:45s} {made}")
