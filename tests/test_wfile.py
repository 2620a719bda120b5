"""W files (renderer.worker.wfile): the formats users hold, and every kind of file that must be
refused with a sentence, before its data is read."""

from __future__ import annotations

import io
import os
import pickle
import threading
import zipfile

import numpy as np
import pytest

from renderer.worker import wfile
from renderer.worker.wfile import WFileError, read_w_file
from tests.official_pickle import Call, GlobalName, dumps

NUM_WS, W_DIM = 10, 8


@pytest.fixture
def w() -> np.ndarray:
    return np.random.RandomState(0).randn(NUM_WS, W_DIM).astype(np.float32)


def npy(path, array: np.ndarray):
    np.save(path, array, allow_pickle=False)
    return path


def npy_with_header(path, header: dict, data: bytes):
    """A .npy file with exactly this header (written by numpy's own header writer) and data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    path.write_bytes(buffer.getvalue() + data)
    return path


def test_the_formats_users_hold(w, tmp_path):
    assert np.array_equal(read_w_file(npy(tmp_path / "a.npy", w), NUM_WS, W_DIM), w)
    assert np.array_equal(read_w_file(npy(tmp_path / "b.npy", w[None]), NUM_WS, W_DIM), w)
    broadcast = read_w_file(npy(tmp_path / "c.npy", w[0]), NUM_WS, W_DIM)
    assert broadcast.shape == (NUM_WS, W_DIM) and np.array_equal(broadcast, np.tile(w[0], (NUM_WS, 1)))
    np.savez(tmp_path / "projected_w.npz", w=w[None])     # as the official projector writes it
    assert np.array_equal(read_w_file(tmp_path / "projected_w.npz", NUM_WS, W_DIM), w)
    np.savez_compressed(tmp_path / "other.npz", latent=w)   # a single array of another name
    assert np.array_equal(read_w_file(tmp_path / "other.npz", NUM_WS, W_DIM), w)
    assert np.array_equal(read_w_file(npy(tmp_path / "f.npy", np.asfortranarray(w)), NUM_WS, W_DIM), w)


def test_exact_conversions(w, tmp_path):
    half = w.astype(np.float16)
    assert np.array_equal(read_w_file(npy(tmp_path / "h.npy", half), NUM_WS, W_DIM), half.astype(np.float32))
    big_endian = w.astype(">f4")
    got = read_w_file(npy(tmp_path / "be.npy", big_endian), NUM_WS, W_DIM)
    assert got.dtype == np.float32 and np.array_equal(got, w)
    double = w.astype(np.float64) + 1e-12
    assert np.array_equal(read_w_file(npy(tmp_path / "d.npy", double), NUM_WS, W_DIM), double.astype(np.float32))


@pytest.mark.parametrize("dtype, kind", [(np.int32, "integers"), (np.uint8, "integers"), (np.bool_, "booleans"),
                                         (np.complex64, "complex numbers")])
def test_types_that_would_lose_information_are_refused(dtype, kind, w, tmp_path):
    path = npy(tmp_path / "w.npy", w.astype(dtype))
    with pytest.raises(WFileError, match=f"w.npy is of type .*\\({kind}\\); W must be floating point"):
        read_w_file(path, NUM_WS, W_DIM)


def test_structured_and_object_arrays_are_refused_without_reading_them(tmp_path):
    structured = np.zeros((NUM_WS,), dtype=[("a", "<f4", (W_DIM,))])
    with pytest.raises(WFileError, match="not numbers"):
        read_w_file(npy(tmp_path / "s.npy", structured), NUM_WS, W_DIM)
    marker = tmp_path / "marker"
    payload = dumps(Call(GlobalName("os", "system"), (f"touch '{marker}'",)))
    path = npy_with_header(tmp_path / "o.npy", {"descr": "|O", "fortran_order": False, "shape": (NUM_WS, W_DIM)},
                           payload)
    with pytest.raises(WFileError, match="not numbers"):
        read_w_file(path, NUM_WS, W_DIM)
    assert not marker.exists()
    pickle.loads(payload)  # control: the payload is live
    assert marker.exists()


def test_shapes_are_checked_from_the_header_before_the_data(tmp_path, monkeypatch):
    """A 1 GB file of the wrong shape (sparse here) and a header claiming 40 GB: refused after
    reading only the header."""
    big = npy_with_header(tmp_path / "big.npy", {"descr": "<f4", "fortran_order": False, "shape": (16384, 16384)}, b"")
    with open(big, "r+b") as f:
        f.truncate(1 << 30)
    huge = npy_with_header(tmp_path / "huge.npy", {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)},
                           b"\0" * 64)
    read_bytes = []
    real_open = wfile.open_regular

    def counting_open(path):
        f = real_open(path)
        real_read = f.read
        f.read = lambda n=-1: read_bytes.append(len(data := real_read(n))) or data
        return f

    monkeypatch.setattr(wfile, "open_regular", counting_open)
    for path, shape in ((big, "[16384, 16384]"), (huge, "[100000, 100000]")):
        with pytest.raises(WFileError, match=f"has shape {shape.replace('[', '.').replace(']', '.')}; this model needs"):
            read_w_file(path, NUM_WS, W_DIM)
    assert sum(read_bytes) < 1 << 16


def test_truncated_and_damaged_files(w, tmp_path):
    path = npy(tmp_path / "w.npy", w)
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    with pytest.raises(WFileError, match="ends early: its header promises 320 bytes of data, the file holds 315"):
        read_w_file(path, NUM_WS, W_DIM)
    for name, content in (("text.npy", b"hello"), ("empty.npy", b""), ("header.npy", data[:20])):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(WFileError, match=name):
            read_w_file(tmp_path / name, NUM_WS, W_DIM)
    bad_zip = tmp_path / "bad.npz"
    bad_zip.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(WFileError, match="damaged .npz archive"):
        read_w_file(bad_zip, NUM_WS, W_DIM)


def test_npz_archives_that_are_not_one_w(w, tmp_path):
    np.savez(tmp_path / "two.npz", a=w, b=w)
    with pytest.raises(WFileError, match=r"holding a.npy, b.npy; expected a single array \(or one named 'w'"):
        read_w_file(tmp_path / "two.npz", NUM_WS, W_DIM)
    np.savez(tmp_path / "wrong.npz", w=np.zeros((3, 3), np.float32))
    with pytest.raises(WFileError, match="has shape .3, 3."):
        read_w_file(tmp_path / "wrong.npz", NUM_WS, W_DIM)


def test_a_deflated_member_is_read_only_as_far_as_w_needs(w, tmp_path):
    """A member whose data goes on for 64 MB (deflated to a few hundred KB) after a valid W."""
    buffer = io.BytesIO()
    np.save(buffer, w)
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("w.npy", "w", force_zip64=True) as member:
            member.write(buffer.getvalue())
            block = bytes(1 << 20)
            for _ in range(64):
                member.write(block)
    assert os.path.getsize(tmp_path / "bomb.npz") < 1 << 20
    assert np.array_equal(read_w_file(tmp_path / "bomb.npz", NUM_WS, W_DIM), w)


def test_non_finite_values_are_refused(w, tmp_path):
    w[3, 2] = np.nan
    with pytest.raises(WFileError, match="NaN or infinite"):
        read_w_file(npy(tmp_path / "nan.npy", w), NUM_WS, W_DIM)


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "w.npy"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_error_of(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert outcome and "named pipe (FIFO), not a regular file" in outcome[0]
    with pytest.raises(WFileError, match="a directory"):
        read_w_file(tmp_path, NUM_WS, W_DIM)


def _error_of(path) -> str:
    try:
        read_w_file(path, NUM_WS, W_DIM)
    except WFileError as e:
        return str(e)
    return "read"
