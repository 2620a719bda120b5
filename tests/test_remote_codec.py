"""The message codec: every registered class goes through unchanged, and anything else is refused
with a MessageError that names the problem, without running code or allocating what a message claims."""

from __future__ import annotations

import math
import pickle
import struct
import tracemalloc
from dataclasses import dataclass
from typing import Annotated, Any, Callable

import msgspec
import numpy as np
import pytest

from renderer.protocol import (ChannelStats, EquivarianceData, FilterCurve, FrameRequest, JobDone, LayerAnalysis,
                               LayerFilterData, LayerInfo, LayerSpectrumData, ModelInfo, RenderArgs, RenderResult)
from renderer.remote.codec import ARRAY_DTYPES, AnyMessage, Limits, MessageError, Registry
from renderer.remote.messages import MESSAGES, WireFrame
from renderer.spectra import AverageSpectrum
from tests.remote_support import marker_pickle

pack = msgspec.msgpack.encode


@dataclass(frozen=True)
class Small:
    count: int
    name: Annotated[str, Limits(text=8)] = ""
    values: Annotated[tuple[int, ...], Limits(items=4)] = ()
    ratio: float = 0.0
    data: Annotated[np.ndarray | None, Limits(array_bytes=64, array_dims=2)] = None


@dataclass(frozen=True)
class Holder:
    inner: AnyMessage = None
    items: tuple[Small, ...] = ()


def small_registry() -> Registry:
    registry = Registry()
    registry.register(Small)
    registry.register(Holder)
    return registry


def array_field(dtype: str, shape: list[int], data: bytes) -> list:
    return [dtype, shape, data]


def refused(registry: Registry, tree: Any, *words: str, **kwargs) -> str:
    with pytest.raises(MessageError) as info:
        registry.decode(pack(tree), **kwargs)
    text = str(info.value)
    for word in words:
        assert word in text, text
    return text


# --- everything that should travel, travels ------------------------------------------------------


def test_protocol_results_round_trip_with_arrays_nans_and_nesting():
    args = RenderArgs(model="runs/00001", latent=((3, 0.25), (4, 0.75)), mix_rows=(1, 2), trunc_cutoff=None,
                      input_transform=((1.0, 0.5, 0.0), (-0.5, 1.0, 0.25), (0.0, 0.0, 1.0)), layer="L3_52_1024")
    result = RenderResult(stamp=9, args=args, image=None, w=np.linspace(-1, 1, 16 * 8, dtype=np.float32).reshape(16, 8),
                          layers=(LayerInfo("input", (1, 4, 36, 36), "float32", 16.0, 2.0, None),),
                          stats_all=ChannelStats(), stats_sel=ChannelStats(1.0, float("inf"), -2.5),
                          model=ModelInfo(path="x.pkl", family="stylegan3-t", trained_kimg=None), error="went wrong")
    out = MESSAGES.decode(MESSAGES.encode(WireFrame(9, result, None)))
    back = out.result
    assert back.args == args and back.layers == result.layers and back.model == result.model
    assert math.isnan(back.stats_all.mean) and back.stats_sel.std == float("inf")
    assert back.w.dtype == np.float32 and np.array_equal(back.w, result.w)
    assert back.w.flags.writeable


def test_analysis_results_round_trip():
    registry = Registry()
    for cls in (LayerAnalysis, AverageSpectrum, EquivarianceData):
        registry.register(cls)
    curve = FilterCurve("up", 32.0, 8.0, 12.0, False, np.linspace(0, 16, 5), np.array([0.0, -1.0, -3.0, -40.0, np.nan]))
    analysis = LayerAnalysis(model="m", spectra=(LayerSpectrumData("L0", 16.0, 2.0, 2.8, 8.0, None, False, True,
                                                                    np.arange(4.0), np.zeros(4), 0.1, 0.01),),
                             filters=(LayerFilterData("L0", curve, None),))
    spectrum = AverageSpectrum(power=np.full((8, 8), 7.0), freqs=np.arange(8.0), resolution=4, num_images=10, mean=0.1,
                               std=0.5, beta=8.0, pad=2, label="demo")
    readout = EquivarianceData(30.0, 28.0, float("-inf"), 4, None, 0.0, float("nan"), "none", True)
    a, s, r = (registry.decode(registry.encode(v)) for v in (analysis, spectrum, readout))
    assert a.filters[0].down is None and a.filters[0].up.kind == "up"
    assert np.array_equal(a.filters[0].up.magnitude_db, curve.magnitude_db, equal_nan=True)
    assert a.spectrum("L0").critically_sampled is True and a.spectra[0].half_width is None
    assert s.power.dtype == np.float64 and s.power.shape == (8, 8) and s.power[3, 3] == 7 and s.label == "demo"
    assert r.error_image is None and r.eqr == float("-inf") and math.isnan(r.error_psnr)


def test_registering_is_one_line_and_refuses_what_cannot_travel():
    registry = Registry()

    @dataclass(frozen=True)
    class NewResult:
        values: np.ndarray
        label: str = ""

    assert registry.register(NewResult) is NewResult
    out = registry.decode(registry.encode(NewResult(np.arange(3, dtype=np.int64), "x")))
    assert out.values.tolist() == [0, 1, 2] and out.label == "x"

    for hint, name in ((Any, "Any"), (dict[str, int], "dict"), (Callable[[], None], "Callable"), (set[int], "set")):
        cls = dataclass(frozen=True)(type(f"Bad{name}", (), {"__annotations__": {"field": hint}}))
        with pytest.raises(TypeError, match="cannot travel"):
            registry.register(cls)
        assert not registry.is_registered(cls)
    with pytest.raises(TypeError, match="not a dataclass"):
        registry.register(int)


def test_the_fingerprint_changes_with_a_field_type():
    def registry_with(hint):
        cls = dataclass(frozen=True)(type("Same", (), {"__annotations__": {"value": hint}}))
        registry = Registry()
        registry.register(cls)
        return registry

    assert registry_with(int).fingerprint == registry_with(int).fingerprint
    assert registry_with(int).fingerprint != registry_with(float).fingerprint
    assert registry_with(Annotated[str, Limits(text=5)]).fingerprint != registry_with(str).fingerprint


def test_encoding_refuses_unregistered_classes_and_object_arrays():
    registry = small_registry()

    @dataclass
    class Stranger:
        x: int = 0

    with pytest.raises(MessageError, match="not a registered message class"):
        registry.encode(Stranger())
    with pytest.raises(MessageError, match="not a registered message class"):
        registry.encode(Holder(inner=Stranger()))
    with pytest.raises(MessageError, match="cannot travel"):
        registry.encode(Small(1, data=np.array([object()], dtype=object)))
    assert registry.decode(registry.encode(Small(np.int64(3), ratio=np.float32(0.5)))).count == 3


def test_big_endian_arrays_arrive_as_the_same_values():
    registry = small_registry()
    values = np.array([[1.5, -2.0]], dtype=">f8")
    out = registry.decode(registry.encode(Small(1, data=values)))
    assert out.data.dtype == np.dtype("<f8") and out.data.tolist() == [[1.5, -2.0]]


# --- what must be refused ------------------------------------------------------------------------


def test_unknown_and_unexpected_types_are_refused():
    registry = small_registry()
    refused(registry, ["os.system", {}], "unknown message type")
    refused(registry, ["Small", {"count": 1}], "not expected here", accept=(Holder,))
    refused(registry, ["Holder", {"inner": ["Nope", {}]}], "unknown message type")
    refused(registry, ["Holder", {"items": [["Holder", {}]]}], "Holder.items[0]", "not expected")


def test_fields_are_checked_against_the_type_hints():
    registry = small_registry()
    refused(registry, ["Small", {}], "'count' is missing")
    refused(registry, ["Small", {"count": 1, "extra": 2}], "no field 'extra'")
    refused(registry, ["Small", {"count": "1"}], "Small.count", "Expected `int`, got `str`")
    refused(registry, ["Small", {"count": 1.0}], "Small.count", "got `float`")
    refused(registry, ["Small", {"count": float("nan")}], "Small.count", "got `float`")
    refused(registry, ["Small", {"count": True}], "Small.count", "got `bool`")
    refused(registry, ["Small", {"count": 1, "values": [1, "2"]}], "Small.values")
    nan = registry.decode(pack(["Small", {"count": 1, "ratio": float("nan")}]))
    assert math.isnan(nan.ratio)
    assert registry.decode(pack(["Small", {"count": 1, "ratio": 2}])).ratio == 2.0


def test_size_limits_on_strings_tuples_arrays_and_messages():
    registry = small_registry()
    refused(registry, ["Small", {"count": 1, "name": "x" * 9}], "Small.name", "length <= 8")
    refused(registry, ["Small", {"count": 1, "values": [1, 2, 3, 4, 5]}], "Small.values", "length <= 4")
    refused(registry, ["Small", {"count": 1, "data": array_field("uint8", [65], bytes(65))}], "Small.data", "64")
    refused(registry, ["Small", {"count": 1, "data": array_field("uint8", [1, 1, 1], b"x")}], "Small.data", "length <= 2")
    refused(registry, ["Small", {"count": 1}], "over the limit", max_bytes=4)
    # headers that claim 2^31 elements or 4 GiB of bytes: refused without allocating what they claim
    for claim in (b"\x92\xa5Small\x82\xa5count\x01\xa6values\xdd" + struct.pack(">I", 2**31) + b"\x01" * 10,
                  b"\x92\xa5Small\x82\xa5count\x01\xa4data\x93\xa5uint8\x91\x01\xc6" + struct.pack(">I", 2**32 - 1)):
        tracemalloc.start()
        try:
            with pytest.raises(MessageError):
                registry.decode(claim)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20


def test_arrays_need_a_plain_dtype_and_matching_bytes():
    registry = small_registry()
    for dtype in ("object", "<U3", "V8", "complex128", "datetime64[s]", "bool"):
        assert dtype not in ARRAY_DTYPES
        refused(registry, ["Small", {"count": 1, "data": array_field(dtype, [1], bytes(8))}], "Small.data")
    refused(registry, ["Small", {"count": 1, "data": array_field("float32", [3], bytes(8))}], "needs 12 bytes")
    refused(registry, ["Small", {"count": 1, "data": array_field("float32", [-1], b"")}], "Small.data")
    refused(registry, ["Small", {"count": 1, "data": array_field("uint8", [2**40, 2**40], b"")}], "needs")
    refused(registry, ["Small", {"count": 1, "data": ["uint8", [2]]}], "Small.data")


def test_malformed_truncated_and_pickled_bytes_are_refused_without_running_code(tmp_path):
    control = tmp_path / "control-marker"
    pickle.loads(marker_pickle(control)).close()  # the payload is live: unpickling it does write its marker
    assert control.exists()

    marker = tmp_path / "marker"
    registry = MESSAGES
    good = registry.encode(FrameRequest(1, RenderArgs(model="m.pkl")))
    candidates = [b"", b"\xc1", b"\xff" * 10, good[:-3], good[: len(good) // 2], marker_pickle(marker),
                  pack(["FrameRequest", {"stamp": 1, "args": marker_pickle(marker)}]),
                  pack(["JobDone", {"job_id": 1, "value": marker_pickle(marker)}]),
                  b"\x91" * 100_000 + b"\xc0",
                  pack(["JobDone", {"job_id": 1, "error": b"\x91" * 10_000}])]
    nested = b"\xc0"
    for _ in range(5000):
        nested = b"\x92\xa7JobDone\x82\xa6job_id\x01\xa5value" + nested  # JobDone(value=JobDone(value=...))
    candidates.append(nested[:-1] + b"\xc0")
    for data in candidates:
        with pytest.raises(MessageError):
            registry.decode(data)
    assert not marker.exists()


def test_a_job_done_holds_each_jobs_result_and_nothing_else():
    curve = FilterCurve("down", 16.0, 4.0, 6.0, True, np.arange(3.0), np.zeros(3))
    filters = (LayerFilterData("L1", None, curve), LayerFilterData("L2", None, None))
    spectrum = AverageSpectrum(power=np.ones((4, 4)), freqs=np.arange(4.0), resolution=2, num_images=3, mean=0.0,
                               std=1.0, beta=8.0, pad=2)
    for value in (filters, (), "clip.mp4", None, spectrum, LayerAnalysis("m", (), filters)):
        done = MESSAGES.decode(MESSAGES.encode(JobDone(3, value=value)))
        assert type(done.value) is type(value) and done.error is None and not done.cancelled
    assert MESSAGES.decode(MESSAGES.encode(JobDone(3, value=filters))).value[0].down.radial is True
    assert MESSAGES.decode(MESSAGES.encode(JobDone(3, error="failed"))).value is None
    for value in (ModelInfo(path="a"), 3, b"bytes", (ModelInfo(),)):
        with pytest.raises(MessageError, match="JobDone.value"):
            MESSAGES.encode(JobDone(3, value=value))
    for tree, words in ((["JobDone", {"job_id": 1, "value": [99, "x"]}], "JobDone.value"),       # no 100th alternative
                        (["JobDone", {"job_id": 1, "value": [4, 17]}], "Expected `str`"),         # 4: str
                        (["JobDone", {"job_id": 1, "value": [0, ["ModelInfo", {}]]}], "not expected here"),
                        (["JobDone", {"job_id": 1, "value": "clip.mp4"}], "JobDone.value")):       # no index
        refused(MESSAGES, tree, words)


def test_a_field_declared_object_gets_its_type_at_registration_and_no_other_field_does():
    @dataclass(frozen=True)
    class Open:
        value: object = None
        count: int = 0

    registry = Registry()
    with pytest.raises(TypeError, match="cannot travel"):
        registry.register(Open)
    with pytest.raises(TypeError, match="only a field declared `object`"):
        registry.register(Open, value=Small | None, count=str)
    registry.register(Open, value=Annotated[str, Limits(text=4)] | int | Small | None)
    for value in (None, 7, "abcd", Small(2)):
        assert registry.decode(registry.encode(Open(value=value))).value == value
    with pytest.raises(MessageError, match="Open.value"):
        registry.encode(Open(value="abcde"))  # over the field's limit: the sender finds out
    with pytest.raises(TypeError, match="told apart"):
        Registry().register(Open, value=Small | dict[str, int])
