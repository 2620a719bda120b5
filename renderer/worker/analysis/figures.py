"""Figures of the spectral analysis, drawn with Pillow (no plotting library needed): the annotated
2-D spectrum of a layer (also what the GUI can show as a texture), the per-layer overview, the
average-spectrum heatmap and its 0 / 45 degree slices."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from renderer.conventions import CUTOFF_RGB, SERIES_RGB, STOPBAND_RGB, colormap
from renderer.spectra import AverageSpectrum
from renderer.worker.analysis.spectrum import LayerSpectrum

BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
GRID = (225, 225, 225)


def font(size: int = 13) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    span = max(hi - lo, 1e-12)
    raw = span / target
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    first = math.ceil(lo / step - 1e-9) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-9 else "0"


@dataclass
class Axes:
    """A rectangle of an image with data limits: maps data to pixels and draws frame, lines, legend."""

    draw: ImageDraw.ImageDraw
    box: tuple[int, int, int, int]      # left, top, right, bottom (pixels) of the plot area
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def px(self, x: float, y: float) -> tuple[float, float]:
        left, top, right, bottom = self.box
        u = (x - self.xlim[0]) / (self.xlim[1] - self.xlim[0])
        v = (y - self.ylim[0]) / (self.ylim[1] - self.ylim[0])
        return left + u * (right - left), bottom - v * (bottom - top)

    def frame(self, title: str = "", xlabel: str = "", ylabel: str = "", grid: bool = True) -> None:
        left, top, right, bottom = self.box
        small = font(12)
        for x in nice_ticks(*self.xlim):
            px, _ = self.px(x, self.ylim[0])
            if grid:
                self.draw.line([(px, top), (px, bottom)], fill=GRID)
            self.draw.line([(px, bottom), (px, bottom + 4)], fill=INK)
            self.draw.text((px, bottom + 6), _fmt(x), fill=INK, font=small, anchor="mt")
        for y in nice_ticks(*self.ylim):
            _, py = self.px(self.xlim[0], y)
            if grid:
                self.draw.line([(left, py), (right, py)], fill=GRID)
            self.draw.line([(left - 4, py), (left, py)], fill=INK)
            self.draw.text((left - 6, py), _fmt(y), fill=INK, font=small, anchor="rm")
        self.draw.rectangle(self.box, outline=INK)
        if title:
            self.draw.text(((left + right) / 2, top - 8), title, fill=INK, font=font(14), anchor="md")
        if xlabel:
            self.draw.text(((left + right) / 2, bottom + 24), xlabel, fill=INK, font=small, anchor="mt")
        if ylabel:
            self.draw.text((left, top - 8), ylabel, fill=INK, font=small, anchor="rd")

    def line(self, xs: np.ndarray, ys: np.ndarray, colour: tuple[int, int, int], width: int = 2,
             dash: bool = False) -> None:
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        keep = np.isfinite(xs) & np.isfinite(ys) & (xs >= self.xlim[0]) & (xs <= self.xlim[1])
        ys = np.clip(ys, *self.ylim)
        points = [self.px(x, y) for x, y in zip(xs[keep], ys[keep])]
        if dash:
            for a, b in zip(points[::2], points[1::2]):
                self.draw.line([a, b], fill=colour, width=width)
        elif len(points) > 1:
            self.draw.line(points, fill=colour, width=width, joint="curve")

    def vline(self, x: float, colour: tuple[int, int, int], width: int = 1) -> None:
        if self.xlim[0] <= x <= self.xlim[1]:
            ys = np.linspace(*self.ylim, 41)
            self.line(np.full_like(ys, x), ys, colour, width=width, dash=True)

    def legend(self, entries: Sequence[tuple[str, tuple[int, int, int]]], corner: str = "right") -> None:
        small = font(12)
        left, top, right, _ = self.box
        width = max(self.draw.textlength(label, font=small) for label, _ in entries) + 34
        x0 = right - width - 6 if corner == "right" else left + 6
        self.draw.rectangle([x0, top + 6, x0 + width, top + 10 + 17 * len(entries)], fill=BACKGROUND, outline=GRID)
        for k, (label, colour) in enumerate(entries):
            y = top + 16 + 17 * k
            self.draw.line([(x0 + 6, y), (x0 + 24, y)], fill=colour, width=3)
            self.draw.text((x0 + 28, y), label, fill=INK, font=small, anchor="lm")


# ---------------------------------------------------------------------------------------------
# One layer's 2-D spectrum with its design drawn on it.


def annotated_spectrum_image(spectrum: LayerSpectrum, range_db: float = 60.0, size: int | None = None) -> np.ndarray:
    """uint8 [H, W, 3]: the layer's power in dB relative to its mean over +-range_db, with the cutoff
    f_c and stopband f_t drawn (squares for separable filters, circles for radial ones). The image
    spans +-s/2, so its border is the layer's Nyquist frequency."""
    db = spectrum.power_db()
    rgb = colormap((db + range_db) / (2 * range_db))
    image = Image.fromarray(rgb)
    if size is not None:
        image = image.resize((size, size), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    h, w = image.height, image.width
    nyquist = spectrum.design.nyquist
    for f, colour in ((spectrum.design.cutoff, CUTOFF_RGB), (spectrum.design.stopband, STOPBAND_RGB)):
        if f >= nyquist:
            continue
        rx, ry = f / nyquist * w / 2, f / nyquist * h / 2
        box = [w / 2 - rx, h / 2 - ry, w / 2 + rx, h / 2 + ry]
        if spectrum.design.radial:
            draw.ellipse(box, outline=colour, width=max(1, w // 160))
        else:
            draw.rectangle(box, outline=colour, width=max(1, w // 160))
    return np.asarray(image)


def layer_overview_figure(spectra: Sequence[LayerSpectrum], title: str = "", range_db: float = 60.0,
                          columns: int = 4, tile: int = 150) -> Image.Image:
    """Every layer's annotated 2-D spectrum, the radial profiles, and the energy above f_c and f_t."""
    rows = math.ceil(len(spectra) / columns)
    label_h, pad = 18, 8
    grid_w = columns * (tile + pad) + pad
    plot_w, plot_h = 520, (rows * (tile + label_h + pad)) // 2 - 60
    width, height = grid_w + plot_w + 90, 40 + rows * (tile + label_h + pad) + 20
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((pad, 10), title, fill=INK, font=font(16))
    for k, s in enumerate(spectra):
        x0 = pad + (k % columns) * (tile + pad)
        y0 = 40 + (k // columns) * (tile + label_h + pad)
        draw.text((x0, y0), s.design.name, fill=INK, font=font(12))
        image.paste(Image.fromarray(annotated_spectrum_image(s, range_db, size=tile)), (x0, y0 + label_h))

    # Radial profiles against frequency (cycles per unit), each in dB relative to its layer's mean power.
    top_max = max(float(s.design.nyquist) for s in spectra)
    profiles = Axes(draw, (grid_w + 70, 70, width - 20, 70 + plot_h), (0, top_max), (-range_db, range_db / 2))
    profiles.frame("Radial profiles (dB rel. layer mean)", "frequency (cycles per image width)")
    for k, s in enumerate(spectra):
        colour = tuple(int(c) for c in colormap(np.array(0.1 + 0.75 * k / max(len(spectra) - 1, 1))))
        profiles.line(s.radii, s.profile_db(), colour, width=2)
        x, y = profiles.px(min(s.design.cutoff, top_max), range_db / 2)
        draw.line([(x, y), (x, y + 6)], fill=colour, width=2)
    profiles.legend([(spectra[0].design.name, tuple(int(c) for c in colormap(np.array(0.1)))),
                     (spectra[-1].design.name, tuple(int(c) for c in colormap(np.array(0.85))))])

    # Energy outside the passband, in dB of the layer's total energy, one pair of bars per layer.
    floor = -80.0
    bars_top = 70 + plot_h + 70
    bars = Axes(draw, (grid_w + 70, bars_top, width - 20, bars_top + plot_h), (-1.5, len(spectra) - 1.5), (floor, 0))
    bars.frame("Energy above f_c and f_t (dB of total)", "layer index k: Lk, and -1 for the input")
    for k, s in enumerate(spectra, start=-1):
        for offset, fraction, colour in ((-0.2, s.energy_above_cutoff, CUTOFF_RGB),
                                         (0.2, s.energy_above_stopband, STOPBAND_RGB)):
            value = 10 * math.log10(fraction) if fraction > 0 else floor
            x0, y0 = bars.px(k + offset - 0.18, max(value, floor))
            x1, y1 = bars.px(k + offset + 0.18, floor)
            draw.rectangle([x0, y0, x1, y1], fill=colour)
    bars.legend([("above f_c", CUTOFF_RGB), ("above f_t", STOPBAND_RGB)])
    return image


# ---------------------------------------------------------------------------------------------
# Average spectra: heatmap and slices.


def _contours(db: np.ndarray, lo: float, step: float) -> np.ndarray:
    """Pixels where db crosses a multiple of `step` above lo (iso-lines, one pixel wide)."""
    level = np.floor((db - lo) / step)
    edge = np.zeros(db.shape, dtype=bool)
    edge[:, :-1] |= level[:, :-1] != level[:, 1:]
    edge[:-1, :] |= level[:-1, :] != level[1:, :]
    return edge


def heatmap_figure(spectra: Sequence[AverageSpectrum], range_db: float = 80.0, contour_db: float = 10.0,
                   panel: int = 320) -> Image.Image:
    """One panel per source: the average power spectrum in dB (shared colour scale, top = the highest
    value rounded up to 10 dB), contours every `contour_db`, axes in cycles per image width."""
    top = math.ceil(max(float(s.power_db().max()) for s in spectra) / 10) * 10
    lo = top - range_db
    margin_l, margin_t, gap, bar_w = 60, 40, 30, 16
    width = margin_l + len(spectra) * (panel + gap) + bar_w + 60
    height = margin_t + panel + 60
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for k, s in enumerate(spectra):
        db = np.asarray(Image.fromarray(s.power_db().astype(np.float32), mode="F").resize((panel, panel), Image.BILINEAR))
        rgb = colormap((db - lo) / range_db)
        rgb[_contours(db, lo, contour_db)] = (255, 255, 255)
        x0 = margin_l + k * (panel + gap)
        image.paste(Image.fromarray(rgb), (x0, margin_t))
        half = s.resolution / 2
        axes = Axes(draw, (x0, margin_t, x0 + panel, margin_t + panel), (-half, half), (-half, half))
        axes.frame(f"{s.label} ({s.num_images} images)", "f_x (cycles per image width)", "f_y" if k == 0 else "", grid=False)
    # Colour bar, ticks on its right.
    x0 = margin_l + len(spectra) * (panel + gap)
    image.paste(Image.fromarray(colormap(np.linspace(1, 0, panel)[:, None].repeat(bar_w, axis=1))), (x0, margin_t))
    draw.rectangle([x0, margin_t, x0 + bar_w, margin_t + panel], outline=INK)
    for y in nice_ticks(lo, top):
        py = margin_t + (top - y) / range_db * panel
        draw.line([(x0 + bar_w, py), (x0 + bar_w + 4, py)], fill=INK)
        draw.text((x0 + bar_w + 6, py), _fmt(y), fill=INK, font=font(12), anchor="lm")
    draw.text((x0 + bar_w / 2, margin_t + panel + 8), "dB", fill=INK, font=font(12), anchor="mt")
    return image


def slices_figure(spectra: Sequence[AverageSpectrum], range_db: float = 80.0, size: tuple[int, int] = (460, 340)) -> Image.Image:
    """0 and 45 degree profiles of the average spectra, every source in both panels."""
    slices = [(s.slice_0deg(), s.slice_45deg()) for s in spectra]
    top = math.ceil(max(float(10 * np.log10(np.maximum(p, 1e-30)).max()) for pair in slices for _, p in pair) / 10) * 10
    w, h = size
    image = Image.new("RGB", (2 * w + 150, h + 100), BACKGROUND)
    draw = ImageDraw.Draw(image)
    res = max(s.resolution for s in spectra)
    for k, (name, limit) in enumerate((("0 degrees (horizontal)", res / 2), ("45 degrees (diagonal)", res / 2 * math.sqrt(2)))):
        x0 = 70 + k * (w + 60)
        axes = Axes(draw, (x0, 40, x0 + w, 40 + h), (0, limit), (top - range_db, top))
        axes.frame(f"Power spectrum, {name}", "frequency (cycles per image width)", "dB")
        for j, pair in enumerate(slices):
            f, p = pair[k]
            axes.line(f, 10 * np.log10(np.maximum(p, 1e-30)), SERIES_RGB[j % len(SERIES_RGB)])
        axes.vline(res / 2, INK)
        axes.legend([(s.label, SERIES_RGB[j % len(SERIES_RGB)]) for j, s in enumerate(spectra)])
    return image
