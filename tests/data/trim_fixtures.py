"""Writes tests/data/ from the shared reference data: the fixtures the test suite needs, trimmed.

    python tests/data/trim_fixtures.py ../shared/reference

reference/: every `shapes_*.json` as is; every reference `.npz` with the synthesis-layer hooks cut
to their first HOOK_CHANNELS channels (the parity tests compare `ours[:, :C]` with what is stored)
and, for `sg3t_small_identity`, only the tensors that differ from `sg3t_small` (`weights_from`).

compat/: each official file of another project with its official images. The generator the images
come from (G_ema, or Gs of a TensorFlow pickle) is kept byte for byte, and so is D in the files of
KEEP_DISCRIMINATOR (the projection's discriminator distance is tested on them); the data of every
other tensor in the file (G, and D elsewhere) is replaced by zeros of the same length, so the file keeps its exact
layout (opcodes, globals, protocol, sizes) and compresses to the size of the kept generator. The
result is stored xz-compressed; tests decompress it to a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import pickletools
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from renderer.worker.model_records import TENSORFLOW, find_generator, module_tree  # noqa: E402
from renderer.worker.tf_conversion import variables_of  # noqa: E402
from torch_utils.persistence import read_pickle  # noqa: E402
from torch_utils.pickle_torch import declared_storage  # noqa: E402

HOOK_CHANNELS = 4
KEEP_DISCRIMINATOR = ("ada_paper256_snapshot", "ada_auto_cond3_snapshot", "tf_sg2_configf_like")
SHARED_WEIGHTS = {"sg3t_small_identity": "sg3t_small"}
_BYTES_OPS = {"BINBYTES": 4, "SHORT_BINBYTES": 1, "BINBYTES8": 8, "BYTEARRAY8": 8}
OUT = ROOT / "tests" / "data"


def trim_reference(src: Path) -> None:
    out = OUT / "reference"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("shapes_*.json")):
        shutil.copyfile(path, out / path.name)
    for path in sorted(src.glob("*.npz")):
        data = dict(np.load(path))
        base = SHARED_WEIGHTS.get(path.stem)
        if base is not None:
            base_data = np.load(src / f"{base}.npz")
            data = {k: v for k, v in data.items()
                    if not (k.startswith("sd/") and np.array_equal(v, base_data[k]))}
            data["weights_from"] = np.array(base)
        for key, value in data.items():
            if key.startswith("hook/") and value.ndim == 4:
                data[key] = np.ascontiguousarray(value[:, :HOOK_CHANNELS])
        np.savez_compressed(out / path.name, **data)


def _kept_data(path: Path) -> set[str]:
    """Hashes of the raw data of the generator whose images the expected file holds (and of D for the
    files of KEEP_DISCRIMINATOR)."""
    content = read_pickle(path).content
    found = find_generator(content)
    if found.kind == TENSORFLOW:
        arrays = [np.ascontiguousarray(a).tobytes() for a in variables_of(found.record).values()]
    else:
        arrays = [t.contiguous().numpy().tobytes() for t in module_tree(found.record).state_dict().values()]
    if path.stem in KEEP_DISCRIMINATOR and found.kind == TENSORFLOW:
        arrays += [np.ascontiguousarray(a).tobytes() for a in variables_of(content[1]).values()]
    elif path.stem in KEEP_DISCRIMINATOR:
        arrays += [t.contiguous().numpy().tobytes() for t in module_tree(content["D"]).state_dict().values()]
    return {hashlib.sha1(a).hexdigest() for a in arrays}


def _zeroed_others(data: bytes, keep: set[str]) -> bytes:
    out = bytearray(data)
    for op, arg, pos in pickletools.genops(data):
        if op.name not in _BYTES_OPS or len(arg) < 256:
            continue
        start = pos + 1 + _BYTES_OPS[op.name]
        payload = bytes(arg)
        try:  # a torch storage blob: header pickles, then the raw data at its end
            dtype, numel = declared_storage(payload)
            nbytes = numel * dtype.itemsize
        except Exception:  # not a storage blob: the payload is raw array data (TensorFlow variables)
            nbytes = len(payload)
        if hashlib.sha1(payload[len(payload) - nbytes:]).hexdigest() not in keep:
            end = start + len(payload)
            out[end - nbytes:end] = bytes(nbytes)
    return bytes(out)


def trim_compat(src: Path) -> None:
    out = OUT / "compat"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "README.md", out / "README.official.md")
    for path in sorted(src.glob("*.pkl")):
        trimmed = _zeroed_others(path.read_bytes(), _kept_data(path))
        (out / f"{path.name}.xz").write_bytes(lzma.compress(trimmed, preset=9 | lzma.PRESET_EXTREME))
        shutil.copyfile(path.with_name(f"{path.stem}_expected.npz"), out / f"{path.stem}_expected.npz")


if __name__ == "__main__":
    reference = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "reference")
    trim_reference(reference)
    trim_compat(reference / "compat")
    print(json.dumps({p.name: p.stat().st_size for p in sorted(OUT.rglob("*")) if p.is_file()}, indent=1))
