"""What travels between the GUI and a remote worker, and which way.

The envelopes (FrameRequest ... DirectoryListing) are what a handler on the server receives and
sends; the link's own messages (Ping, Pong, WireFrame, Fault) and the handshake (Hello, Welcome,
Refused) never reach it. Registering a class is one line below; TO_SERVER and TO_CLIENT say which
outermost messages each side accepts (a class travels inside those wherever a field's type allows it).
"""

from __future__ import annotations

from dataclasses import dataclass

from renderer.protocol import ChannelStats, LayerInfo, ModelInfo, RenderArgs, RenderResult
from renderer.remote.codec import AnyMessage, Limits, Registry

# --- Envelopes: what the handler sees --------------------------------------------------------


@dataclass(frozen=True)
class FrameRequest:
    """Render `args`; answered by exactly one FrameReply with the same stamp."""

    stamp: int
    args: RenderArgs


@dataclass(frozen=True)
class FrameReply:
    stamp: int
    result: RenderResult                  # its uint8 image travels compressed (WireFrame)


@dataclass(frozen=True)
class JobRequest:
    job_id: int
    request: AnyMessage                   # a registered request class (analysis, clip frames, ...)


@dataclass(frozen=True)
class JobProgress:
    job_id: int
    fraction: float                       # 0..1
    message: str = ""


@dataclass(frozen=True)
class JobDone:
    """The end of a job: a value, an error in words for the user, or cancelled."""

    job_id: int
    value: AnyMessage | None = None
    error: str | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class CancelJob:
    job_id: int


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


@dataclass(frozen=True)
class Refused:
    kind: str                             # "token", "version" or "busy"
    reason: str                           # in words for the user


HANDSHAKE = Registry()
HANDSHAKE.register(Hello, token=Limits(text=1024), client=Limits(text=256))
HANDSHAKE.register(Welcome)
HANDSHAKE.register(Refused)

MESSAGES = Registry()
MESSAGES.register(RenderArgs, latent=Limits(items=4096), mix_rows=Limits(items=4096))
MESSAGES.register(LayerInfo)
MESSAGES.register(ChannelStats)
MESSAGES.register(ModelInfo)
MESSAGES.register(RenderResult, image=Limits(array_bytes=0), layers=Limits(items=4096))  # images go as WireFrame
MESSAGES.register(FrameRequest)
MESSAGES.register(FrameReply)
MESSAGES.register(JobRequest)
MESSAGES.register(JobProgress)
MESSAGES.register(JobDone)
MESSAGES.register(CancelJob)
MESSAGES.register(ListDirectory)
MESSAGES.register(DirectoryListing, entries=Limits(items=100_000))
MESSAGES.register(FrameOptions)
MESSAGES.register(Ping)
MESSAGES.register(Pong)
MESSAGES.register(EncodedImage, data=Limits(array_bytes=192 * 1024 * 1024))
MESSAGES.register(WireFrame)
MESSAGES.register(Fault)

TO_SERVER = (FrameRequest, JobRequest, CancelJob, ListDirectory, FrameOptions, Ping)
TO_CLIENT = (WireFrame, JobProgress, JobDone, DirectoryListing, Pong, Fault)
