"""What travels between the GUI and a remote worker, and which way.

The envelopes are the contract's own (renderer/protocol.py: FrameRequest, JobRequest, CancelJob,
StatusRequest, JobProgress, JobDone, WorkerStatus; FrameReply from renderer/frame_slots.py), so a
handler on the server speaks to the worker exactly as the local client does. The remote's own
messages are the model browser (ListDirectory, DirectoryListing), the link's (Ping, Pong,
FrameOptions, WireFrame and WireClipFrame, which carry images compressed, Fault) and the handshake
(Hello, Welcome, Refused). Registering a class is one line below, with limits on its fields;
TO_SERVER and TO_CLIENT say which outermost messages each side accepts (a class travels inside
those wherever a field's type allows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from renderer.animation import Animation, DirectionSweep, LatentMotion, MixMotion, TransformMotion
from renderer.directions import DirectionMove, Directions, DirectionSource
from renderer.frame_slots import FrameReply
from renderer.protocol import (AverageSpectrumRequest, CancelJob, ChannelStats, ClipFrame, ClipSpec, EquivarianceData,
                               EquivarianceRequest, FilterCurve, FilterRequest, FrameRequest, JobDone, JobProgress,
                               JobRequest, Keyframe, LayerAnalysis, LayerAnalysisRequest, LayerFilterData, LayerInfo,
                               LayerSpectrumData, ModelInfo, RenderArgs, RenderResult, StatusRequest, WorkerStatus,
                               CompareRequest, Comparison, DirectionsRequest, GridCell, PixelProbeRequest, PixelValues,
                               MAX_TARGET_SIDE, ProjectionPreview, ProjectionRequest, ProjectionResult, ProjectionTarget,
                               RunSnapshot, RunTimeline, RunTimelineRequest, SeedGridRequest)
from renderer.remote.codec import Limits, Registry
from renderer.remote.wfile import MAX_W_FILE_BYTES
from renderer.spectra import AverageSpectrum
from renderer.timeline import MAX_CLIP_FRAMES

__all__ = ["FrameReply"]  # the handler's frame reply, re-exported for the link's users

# What a job ends with (JobDone.value): one result type per job of renderer.worker.jobs and explore_jobs.
JobResult = Union[LayerAnalysis, tuple[LayerFilterData, ...], AverageSpectrum, EquivarianceData, str, Directions,
                  ProjectionResult, RunTimeline, Comparison, PixelValues]

# --- The model browser ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListDirectory:
    """The model browser: folders and models in `path`, relative to the server's root ("" = the root)."""

    path: str = ""


@dataclass(frozen=True)
class DirectoryEntry:
    name: str
    kind: str                             # "folder", "run" (a training run directory) or "model"
    size: int = 0                         # bytes (models)
    modified: float = 0.0                 # seconds since the epoch


@dataclass(frozen=True)
class DirectoryListing:
    path: str                             # relative to the root, "/"-separated; "" = the root
    entries: tuple[DirectoryEntry, ...] = ()
    error: str | None = None
    asked: str = ""                       # the path as the ListDirectory named it


# --- The link's own messages -----------------------------------------------------------------


@dataclass(frozen=True)
class FrameOptions:
    """How the server should encode this client's frames from now on (renderer/remote/frames.py)."""

    codec: str = "zstd"
    jpeg_quality: int = 85


@dataclass(frozen=True)
class Ping:
    nonce: int


@dataclass(frozen=True)
class Pong:
    nonce: int


@dataclass(frozen=True)
class EncodedImage:
    """A uint8 image as it crosses the link (renderer/remote/frames.py)."""

    codec: str                            # "raw", "zstd" (lossless) or "jpeg"
    shape: tuple[int, ...]                # H, W, C
    data: bytes
    encode_seconds: float = 0.0           # on the server


@dataclass(frozen=True)
class WireFrame:
    """A FrameReply on the link: the result without its image, and the image encoded."""

    stamp: int
    result: RenderResult
    image: EncodedImage | None
    server_seconds: float = 0.0           # from the request's arrival to the reply's encoding, on the server


@dataclass(frozen=True)
class WireClipFrame:
    """A JobProgress that carries a clip frame, on the link: the frame encoded losslessly."""

    job_id: int
    done: int
    total: int
    index: int
    image: EncodedImage
    op_path: str = ""                     # what rendered it (ClipFrame.op_path, .precision)
    precision: str = ""


@dataclass(frozen=True)
class Fault:
    """The other side broke the protocol; the connection closes after this."""

    reason: str


# --- The handshake (its own registry, so that a peer of another version can still be told so) ---


@dataclass(frozen=True)
class Hello:
    protocol: int
    schema: str                           # MESSAGES.fingerprint of the client
    token: str
    client: str = ""                      # e.g. the user's host name, for the server's log
    frame_codec: str = "zstd"
    jpeg_quality: int = 85


@dataclass(frozen=True)
class Welcome:
    server: str                           # host name of the server, for the status line
    root: str                             # the folder it serves models from
    session: str                          # new each time the server starts
    model: str = ""                       # the model `serve` was started with, relative to the root


@dataclass(frozen=True)
class Refused:
    kind: str                             # "token", "version" or "busy"
    reason: str                           # in words for the user


PATH = Limits(text=4096)
NAME = Limits(text=256)
WORD = Limits(text=64)
CURVE = Limits(array_bytes=1024 * 1024, array_dims=1)
IMAGE = Limits(array_bytes=192 * 1024 * 1024, array_dims=3)
MAX_LAYERS = 4096

HANDSHAKE = Registry()
HANDSHAKE.register(Hello, schema=WORD, token=Limits(text=1024), client=NAME, frame_codec=WORD)
HANDSHAKE.register(Welcome, server=NAME, root=PATH, session=WORD, model=PATH)
HANDSHAKE.register(Refused, kind=WORD, reason=Limits(text=4096))

MESSAGES = Registry()
# Frames. A class is registered with its limits before the classes that hold it.
MESSAGES.register(DirectionSource, method=WORD, rows=Limits(items=4096), row_range=WORD, path=PATH)
MESSAGES.register(DirectionMove)
MESSAGES.register(RenderArgs, model=PATH, device=WORD, op_path=WORD, precision=WORD, latent=Limits(items=4096),
                  w_file=PATH, mix_rows=Limits(items=4096), noise_mode=WORD, layer=NAME,
                  w_npy=Limits(array_bytes=MAX_W_FILE_BYTES))
MESSAGES.register(LayerInfo, name=NAME, shape=Limits(items=8), dtype=WORD)
MESSAGES.register(ChannelStats)
MESSAGES.register(ModelInfo, path=PATH, family=WORD, snapshot=PATH)
MESSAGES.register(RenderResult, image=Limits(array_bytes=0),  # images travel compressed (WireFrame)
                  w=Limits(array_bytes=MAX_W_FILE_BYTES, array_dims=2), layers=Limits(items=MAX_LAYERS),
                  device=NAME, op_path=WORD, precision=WORD)
# Job requests.
MESSAGES.register(LayerAnalysisRequest)
MESSAGES.register(FilterRequest, layer=NAME)
MESSAGES.register(AverageSpectrumRequest)
MESSAGES.register(EquivarianceRequest)
MESSAGES.register(Keyframe)
MESSAGES.register(LatentMotion)
MESSAGES.register(MixMotion)
MESSAGES.register(TransformMotion)
MESSAGES.register(Animation)
MESSAGES.register(DirectionSweep)
MESSAGES.register(ClipSpec, out_path=PATH, keyframes=Limits(items=MAX_CLIP_FRAMES), format=WORD)
# Exploring a model (renderer.worker.explore_jobs). Paths in them (a direction file, a run directory,
# model B) are the server's; the image to project travels as its aligned pixels.
MESSAGES.register(DirectionsRequest)
MESSAGES.register(ProjectionTarget, pixels=Limits(array_bytes=MAX_TARGET_SIDE * MAX_TARGET_SIDE * 3, array_dims=3),
                  name=NAME)
MESSAGES.register(ProjectionRequest, space=WORD, distance=WORD, vgg_path=PATH, lpips_path=PATH)
MESSAGES.register(SeedGridRequest)
MESSAGES.register(RunTimelineRequest, run_dir=PATH)
MESSAGES.register(CompareRequest, model_b=PATH)
MESSAGES.register(PixelProbeRequest)
# Job results and outputs.
MESSAGES.register(LayerSpectrumData, name=NAME, radii=CURVE, profile_db=CURVE)
MESSAGES.register(FilterCurve, kind=WORD, freqs=CURVE, magnitude_db=CURVE)
MESSAGES.register(LayerFilterData, layer=NAME)
MESSAGES.register(LayerAnalysis, model=PATH, spectra=Limits(items=MAX_LAYERS), filters=Limits(items=MAX_LAYERS))
MESSAGES.register(EquivarianceData, error_image=Limits(array_bytes=192 * 1024 * 1024, array_dims=3), error_method=WORD)
MESSAGES.register(AverageSpectrum, power=Limits(array_bytes=200 * 1024 * 1024, array_dims=2), freqs=CURVE,
                  label=NAME)
MESSAGES.register(ClipFrame, image=Limits(array_bytes=0), op_path=WORD, precision=WORD)  # travel as WireClipFrame
MESSAGES.register(Directions, method=WORD, vectors=Limits(array_bytes=64 * 1024 * 1024, array_dims=2),
                  eigenvalues=CURVE, explained=CURVE, rows=Limits(items=4096))
MESSAGES.register(ProjectionPreview, image=IMAGE, w=Limits(array_bytes=MAX_W_FILE_BYTES, array_dims=2), target=IMAGE)
MESSAGES.register(ProjectionResult, w=Limits(array_bytes=MAX_W_FILE_BYTES, array_dims=2), image=IMAGE, target=IMAGE,
                  distances=CURVE, space=WORD, distance=WORD, distance_note=Limits(text=4096))
MESSAGES.register(GridCell, image=IMAGE)
MESSAGES.register(RunSnapshot, file=PATH, metrics=Limits(items=1024), image=IMAGE, error=Limits(text=4096))
MESSAGES.register(RunTimeline, run_dir=PATH, snapshots=Limits(items=100_000))
MESSAGES.register(Comparison, image_a=IMAGE, image_b=IMAGE, difference=IMAGE, model_a=PATH, model_b=PATH)
MESSAGES.register(PixelValues, part=WORD, layer=NAME, values=CURVE)
# The envelopes.
MESSAGES.register(FrameRequest)
MESSAGES.register(JobRequest)
MESSAGES.register(CancelJob)
MESSAGES.register(StatusRequest)
MESSAGES.register(JobProgress)
MESSAGES.register(JobDone, value=JobResult | None)
MESSAGES.register(WorkerStatus, models=Limits(text=4096, items=64))
# The browser and the link.
MESSAGES.register(ListDirectory, path=PATH)
MESSAGES.register(DirectoryEntry, name=NAME, kind=WORD)
MESSAGES.register(DirectoryListing, path=PATH, entries=Limits(items=100_000), asked=PATH)
MESSAGES.register(FrameOptions, codec=WORD)
MESSAGES.register(Ping)
MESSAGES.register(Pong)
MESSAGES.register(EncodedImage, codec=WORD, shape=Limits(items=8), data=Limits(array_bytes=192 * 1024 * 1024))
MESSAGES.register(WireFrame)
MESSAGES.register(WireClipFrame, op_path=WORD, precision=WORD)
MESSAGES.register(Fault, reason=Limits(text=4096))

TO_SERVER = (FrameRequest, JobRequest, CancelJob, StatusRequest, ListDirectory, FrameOptions, Ping)
TO_CLIENT = (WireFrame, WireClipFrame, JobProgress, JobDone, WorkerStatus, DirectoryListing, Pong, Fault)
