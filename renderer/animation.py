"""How the GUI's animations move, as pure functions of time: the latent walk, the style-mix seed walk,
the input's translation and rotation, and the sweep along a latent direction. The widgets animate with them frame by frame, and a clip
export evaluates the same motion at each frame's time, so a clip shows exactly what the GUI showed.

Torch-free (part of the contract): t is in seconds from the state described.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from renderer.conventions import round_translation
from renderer.directions import DirectionSource


@dataclass(frozen=True)
class LatentMotion:
    """Fractional latent position (x, y); with `anim`, x moves at `speed` seeds per second (signed)."""
    x: float = 0.0
    y: float = 0.0
    anim: bool = False
    speed: float = 0.25

    def position_at(self, t: float) -> tuple[float, float]:
        return (self.x + self.speed * t, self.y) if self.anim else (self.x, self.y)

    def advanced(self, dt: float) -> "LatentMotion":
        x, y = self.position_at(dt)
        return replace(self, x=x, y=y)


@dataclass(frozen=True)
class MixMotion:
    """The style-mix seed; with `anim`, it steps at `speed` seeds per second (signed). `phase` is the
    fraction of a step already travelled."""
    seed: int = 0
    anim: bool = False
    speed: float = 1.0
    phase: float = 0.0

    def seed_at(self, t: float) -> int:
        if not self.anim:
            return self.seed
        return self.seed + math.floor(self.phase + self.speed * t)

    def advanced(self, dt: float) -> "MixMotion":
        if not self.anim:
            return self
        travelled = self.phase + self.speed * dt
        whole = math.floor(travelled)
        return replace(self, seed=self.seed + whole, phase=travelled - whole)


@dataclass(frozen=True)
class TransformMotion:
    """The user's input transform (translation in image widths, rotation in turns) and its two
    animations, each on its own: the translation runs round a circle of `translate_radius` that
    starts where it stands, `translate_speed` turns of the circle per second; the rotation turns at
    `rotate_speed` turns per second. Speeds are signed."""
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    translate_anim: bool = False
    translate_speed: float = 0.05
    translate_radius: float = 0.1
    translate_phase: float = 0.0           # turns of the circle travelled so far
    rotate_anim: bool = False
    rotate_speed: float = 0.02
    round_pixels: bool = False             # snap the translation to whole output pixels

    def _circle_offset(self, phase: float) -> tuple[float, float]:
        a = 2 * math.pi * phase
        return self.translate_radius * (math.cos(a) - 1.0), self.translate_radius * math.sin(a)

    def at(self, t: float, img_resolution: int) -> tuple[tuple[float, float], float]:
        """(translation, rotation) t seconds from now."""
        tx, ty = self.translate
        if self.translate_anim:
            dx, dy = self._circle_offset(self.translate_phase + self.translate_speed * t)
            tx, ty = tx + dx, ty + dy
        rotate = self.rotate + (self.rotate_speed * t if self.rotate_anim else 0.0)
        if self.round_pixels:
            tx, ty = round_translation((tx, ty), max(1, img_resolution))
        return (tx, ty), rotate

    def advanced(self, dt: float) -> "TransformMotion":
        phase = self.translate_phase + (self.translate_speed * dt if self.translate_anim else 0.0)
        rotate = self.rotate + (self.rotate_speed * dt if self.rotate_anim else 0.0)
        return replace(self, translate_phase=phase, rotate=rotate)

    def paused(self) -> "TransformMotion":
        """The same pose with the translation's circle folded in: stopping leaves it where it stands."""
        dx, dy = self._circle_offset(self.translate_phase)
        return replace(self, translate=(self.translate[0] + dx, self.translate[1] + dy), translate_phase=0.0)


@dataclass(frozen=True)
class DirectionSweep:
    """Direction `index` of a direction set swept around
    `centre` W units: centre + amplitude * sin(2 pi (phase + t / period)). The move's other settings
    (rows) are the frame's."""
    source: DirectionSource | None = None  # None: no sweep
    index: int = 0
    centre: float = 0.0
    amplitude: float = 0.0
    period: float = 4.0                    # seconds per back-and-forth
    phase: float = 0.0                     # fraction of a period already travelled
    anim: bool = False

    @property
    def sweeps(self) -> bool:
        return self.anim and self.source is not None and self.amplitude != 0 and self.period > 0

    def strength_at(self, t: float) -> float:
        if not self.sweeps:
            return self.centre
        return self.centre + self.amplitude * math.sin(2 * math.pi * (self.phase + t / self.period))

    def advanced(self, dt: float) -> "DirectionSweep":
        if not self.sweeps:
            return self
        return replace(self, phase=(self.phase + dt / self.period) % 1.0)


@dataclass(frozen=True)
class Animation:
    """Everything the GUI animates, from one moment."""
    latent: LatentMotion = LatentMotion()
    mix: MixMotion = MixMotion()
    transform: TransformMotion = TransformMotion()
    has_transform: bool = False            # the model has an input transform (StyleGAN3)
    uses_seeds: bool = True                # False: the latent is a W file, which does not move
    mixes: bool = False                    # style mixing is on (some rows come from the mix seed)
    img_resolution: int = 0
    sweep: DirectionSweep = DirectionSweep()

    @property
    def moves(self) -> bool:
        return ((self.latent.anim and self.uses_seeds) or (self.mix.anim and self.mixes)
                or (self.has_transform and (self.transform.translate_anim or self.transform.rotate_anim))
                or self.sweep.sweeps)
