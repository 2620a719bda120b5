"""The RenderArgs of a moment of an animation, and of each frame of a clip: the one place where the
GUI's live frame and an exported clip's frames are computed, so that they agree. Torch-free."""

from __future__ import annotations

from renderer.animation import Animation
from renderer.conventions import as_matrix3, user_transform, weighted_seeds
from renderer.directions import DirectionMove
from renderer.protocol import CLIP_FORMATS, ClipSpec, Keyframe, RenderArgs

MAX_CLIP_FRAMES = 100_000           # about 55 minutes at 30 fps


def animated_args(args: RenderArgs, motion: Animation, t: float = 0.0) -> RenderArgs:
    """`args` with the latent, the style-mix seed and the input transform of `motion` at time t."""
    changes: dict = {}
    if motion.uses_seeds:
        changes["latent"] = weighted_seeds(*motion.latent.position_at(t))
    if motion.mixes:
        changes["mix_seed"] = motion.mix.seed_at(t)
    if motion.has_transform:
        translate, rotate = motion.transform.at(t, motion.img_resolution)
        changes["input_transform"] = as_matrix3(user_transform(translate, rotate))
    if motion.sweep.sweeps:
        sweep = motion.sweep
        others = tuple(m for m in args.directions if (m.source, m.index) != (sweep.source, sweep.index))
        changes["directions"] = others + (DirectionMove(sweep.source, sweep.index, sweep.strength_at(t)),)
    return args.replace(**changes) if changes else args


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def keyframe_args(keys: tuple[Keyframe, ...], u: float) -> RenderArgs:
    """The frame at u in [0, 1] along a piecewise-linear path through the keyframes: latent position,
    translation and rotation interpolated, the other settings of each segment from its first keyframe.
    (Keyframes of a model without an input transform record the identity.)"""
    if not keys:
        raise ValueError("a keyframe path needs at least one keyframe")
    s = min(max(u, 0.0), 1.0) * (len(keys) - 1)
    k = min(int(s), len(keys) - 2) if len(keys) > 1 else 0
    a, b = keys[k], keys[min(k + 1, len(keys) - 1)]
    f = s - k
    args = a.args
    if args.w_file is None and args.w_npy is None:
        args = args.replace(latent=weighted_seeds(_lerp(a.position[0], b.position[0], f),
                                                  _lerp(a.position[1], b.position[1], f)))
    translate = (_lerp(a.translate[0], b.translate[0], f), _lerp(a.translate[1], b.translate[1], f))
    return args.replace(input_transform=as_matrix3(user_transform(translate, _lerp(a.rotate, b.rotate, f))))


def check_clip(spec: ClipSpec) -> None:
    """Raise ValueError with a sentence for the user if the clip cannot be made as described."""
    if spec.format not in CLIP_FORMATS:
        raise ValueError(f"Unknown clip format {spec.format!r}; choose one of {', '.join(CLIP_FORMATS)}.")
    if not 1 <= spec.num_frames <= MAX_CLIP_FRAMES:
        raise ValueError(f"A clip has 1 to {MAX_CLIP_FRAMES} frames; this one asks for {spec.num_frames}.")
    if not spec.fps > 0 or spec.fps > 1000:
        raise ValueError(f"Frames per second must be between 0 and 1000, got {spec.fps}.")
    if spec.motion is None and not spec.keyframes:
        raise ValueError("Record at least one keyframe first.")
    if spec.size is not None and not 1 <= spec.size <= 8192:
        raise ValueError(f"The clip height must be 1 to 8192 pixels, got {spec.size}.")


def frame_args(spec: ClipSpec, index: int) -> RenderArgs:
    """The RenderArgs of frame `index` of the clip."""
    if spec.motion is not None:
        return animated_args(spec.base, spec.motion, index / spec.fps)
    return keyframe_args(spec.keyframes, index / max(1, spec.num_frames - 1))
