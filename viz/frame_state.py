"""Opening a saved frame: the PNG that Save image writes (its render state in the metadata) or its
JSON sidecar. The visualizer stores its own settings beside the frame's RenderArgs, so the widgets
come back exactly as they were and build the very same args; a frame saved without them (by
`visualizer.py render`) has its settings worked out from the args."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from renderer.capture import args_from_json, read_state
from renderer.protocol import RenderArgs
from viz.session import SESSION_VERSION, SessionError, decode_dataclass, to_json_data
from viz.state import (DirectionsState, EquivarianceState, LatentState, LayerState, ModelState, PerformanceState,
                       Settings, StyleMixState, TruncNoiseState)

GUI_STATE_KEY = "gui_state"        # in the saved state's "extra": the visualizer's settings for the frame
SEED_CELLS = 1 << 32
NOT_IN_FRAMES = ("projection", "seed_grid", "run", "inspect")   # Settings sections left out of saved frames


class FrameStateError(ValueError):
    """A file is not a frame saved by this visualizer; the message says why."""


def settings_document(settings: Settings) -> dict[str, Any]:
    """The settings stored with a saved frame: all but the exploration sections that do not change the
    frame (an image to project, a grid's size, a run, the loupe), which stay the user's own."""
    data = to_json_data(settings)
    for section in NOT_IN_FRAMES:
        data.pop(section)
    return {"session_version": SESSION_VERSION, "settings": data}


def read_frame(path: str | os.PathLike) -> tuple[RenderArgs, Settings | None]:
    """The frame's RenderArgs and, if the visualizer saved it, its settings."""
    name = Path(path).name
    try:
        state = read_state(path)
        args = args_from_json(state)
    except (OSError, ValueError, TypeError) as e:
        raise FrameStateError(f"{name} is not a frame saved by the visualizer ({e})") from None
    extra = state.get("extra") if isinstance(state, dict) else None
    gui = extra.get(GUI_STATE_KEY) if isinstance(extra, dict) else None
    if not isinstance(gui, dict):
        return args, None
    version = gui.get("session_version")
    if not isinstance(version, int) or version > SESSION_VERSION:
        return args, None              # a newer visualizer's settings: fall back on the args
    try:
        return args, decode_dataclass(Settings, gui.get("settings") or {}, "settings")
    except SessionError:
        return args, None


def _latent_position(latent: tuple[tuple[int, float], ...]) -> tuple[float, float]:
    """A fractional position whose four neighbours are `latent`'s seeds and weights (the inverse of
    conventions.weighted_seeds for a position in the cell of the first seed)."""
    first = latent[0][0]
    dx = sum(w for s, w in latent if (s - first) % SEED_CELLS in (1, 101))
    dy = sum(w for s, w in latent if (s - first) % SEED_CELLS in (100, 101))
    return float(first) + dx, dy


def settings_from_args(args: RenderArgs, base: Settings) -> Settings:
    """The settings that render `args`, as near as they can be told from the args alone."""
    m = args.input_transform
    latent = replace(base.latent, w_file=args.w_file, class_from_seed=args.class_idx is None,
                     class_idx=args.class_idx or 0)
    if args.latent and args.w_file is None:
        x, y = _latent_position(args.latent)
        latent = replace(latent, x=x, y=y)
    return replace(
        base, model=ModelState(path=args.model, follow=False), latent=latent,
        stylemix=StyleMixState(seed=args.mix_seed, rows=tuple(args.mix_rows)),
        trunc_noise=TruncNoiseState(psi=args.trunc_psi, cutoff=args.trunc_cutoff, noise_mode=args.noise_mode,
                                    noise_seed=args.noise_seed),
        equivariance=replace(EquivarianceState(), translate=(m[0][2], m[1][2]),
                             rotate=math.atan2(m[0][1], m[0][0]) / (2 * math.pi), untransform=args.untransform),
        layer=LayerState(name=args.layer, rgb=args.sel_channels != 1, base_channel=args.base_channel,
                         normalize=args.img_normalize, gain_db=args.img_gain_db, fft_show=args.fft_show,
                         fft_all=args.fft_all, fft_range_db=args.fft_range_db, fft_beta=args.fft_beta),
        performance=replace(base.performance, device=args.device, op_path=args.op_path, precision=args.precision,
                            force_fp32=args.force_fp32),
        directions=_directions(args, base.directions))


def _directions(args: RenderArgs, base: DirectionsState) -> DirectionsState:
    """The direction sliders of `args`' moves (those of its first direction set; the others cannot be shown)."""
    rows = args.direction_rows
    custom = ", ".join(map(str, args.direction_custom_rows))
    if not args.directions:
        return replace(base, strengths=tuple(0.0 for _ in base.strengths), rows=rows, custom_rows=custom, sweep=False)
    source = args.directions[0].source
    count = max(m.index for m in args.directions if m.source == source) + 1
    strengths = [0.0] * max(count, len(base.strengths) if base.source == source else 0)
    for move in args.directions:
        if move.source == source:
            strengths[move.index] = move.strength
    return replace(base, source=source, strengths=tuple(strengths), rows=rows, custom_rows=custom, sweep=False)


def frame_settings(path: str | os.PathLike, current: Settings) -> tuple[Settings, RenderArgs, bool]:
    """The settings to restore a saved frame with (the frame's parts; the rest as `current`), its
    RenderArgs, and whether the visualizer's own settings were in the file (else worked out)."""
    args, saved = read_frame(path)
    exact = saved is not None
    settings = saved if exact else settings_from_args(args, current)
    settings = replace(settings, model=ModelState(path=args.model, follow=False))   # the file that was rendered
    return settings.frame(current), args, exact
