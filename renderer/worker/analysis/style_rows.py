"""Which style affine layers read which ws row, and the coarse / middle / fine split of the rows.

StyleGAN3: row 0 drives the Fourier-feature input (`input.affine`: rotation and translation), row
1 + i the styles of layer L_i. StyleGAN2: block b_r's convolutions read consecutive rows and its
to-RGB layer the row after them, which is also the next block's first convolution's row.

Each row has a scale, the resolution of the detail it controls: StyleGAN2, the block resolution of
the convolution that reads it; StyleGAN3, twice the cutoff f_c of the layer it modulates (the
resolution its band limit corresponds to). As in the StyleGAN paper (Section 3.1), coarse rows are
those up to 8 px, middle 16-32 px, fine the rest; models under 64 px, where a group would be
empty, split their rows in thirds instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

ROW_GROUPS = ("coarse", "middle", "fine", "all")
COARSE_MAX_SCALE = 8.0
MIDDLE_MAX_SCALE = 32.0


@dataclass(frozen=True)
class StyleAffine:
    """One affine layer w -> styles and the ws row it reads."""

    name: str              # module path inside G.synthesis, e.g. "L3_40_128.affine" or "b8.conv0.affine"
    row: int
    scale: float           # px, see the module docstring
    module: nn.Module      # the FullyConnectedLayer (weight [out, w_dim])


def style_affines(G: nn.Module) -> list[StyleAffine]:
    """Every style affine of G's synthesis network, in row order."""
    synthesis = G.synthesis
    family = getattr(G, "family", "")
    out: list[StyleAffine] = []
    if family == "stylegan3":
        out.append(StyleAffine("input.affine", 0, 2 * synthesis.input.bandwidth, synthesis.input.affine))
        for i, name in enumerate(synthesis.layer_names):
            layer = getattr(synthesis, name)
            out.append(StyleAffine(f"{name}.affine", i + 1, 2 * layer.out_cutoff, layer.affine))
        return out
    if family == "stylegan2":
        first_row = 0
        for res, block in zip(synthesis.block_resolutions, synthesis.blocks()):
            convs = ["conv0", "conv1"] if hasattr(block, "conv0") else ["conv1"]
            for k, conv in enumerate(convs):
                out.append(StyleAffine(f"b{res}.{conv}.affine", first_row + k, float(res), getattr(block, conv).affine))
            if hasattr(block, "torgb"):
                out.append(StyleAffine(f"b{res}.torgb.affine", first_row + block.num_conv, float(res),
                                       block.torgb.affine))
            first_row += block.num_conv
        return sorted(out, key=lambda a: a.row)
    raise ValueError(f"style affines of a {type(G).__name__} ({family or 'unknown family'}) are not known; "
                     "supported: StyleGAN3 and StyleGAN2 generators")


def row_scales(G: nn.Module) -> tuple[float, ...]:
    """The scale (px) of each ws row: the finest of the affines reading it that modulate a convolution
    (a StyleGAN2 row shared by a to-RGB layer and the next block takes the next block's resolution)."""
    scales: dict[int, float] = {}
    for affine in style_affines(G):
        if affine.row not in scales or not affine.name.endswith("torgb.affine"):
            scales[affine.row] = affine.scale
    return tuple(scales[r] for r in range(G.num_ws))


def row_group(G: nn.Module, group: str) -> tuple[int, ...]:
    """The ws rows of 'coarse', 'middle', 'fine' or 'all'."""
    return rows_of_group(row_scales(G), group)


def rows_of_group(scales: tuple[float, ...], group: str) -> tuple[int, ...]:
    """The rows of `group` given each row's scale (see the module docstring)."""
    if group not in ROW_GROUPS:
        raise ValueError(f"unknown row group {group!r}; choose one of {', '.join(ROW_GROUPS)} or give rows")
    n = len(scales)
    if group == "all":
        return tuple(range(n))
    groups = (tuple(r for r in range(n) if scales[r] <= COARSE_MAX_SCALE),
              tuple(r for r in range(n) if COARSE_MAX_SCALE < scales[r] <= MIDDLE_MAX_SCALE),
              tuple(r for r in range(n) if scales[r] > MIDDLE_MAX_SCALE))
    if not all(groups):
        third = [round(n * k / 3) for k in range(4)]
        groups = tuple(tuple(range(third[k], third[k + 1])) for k in range(3))
    return groups[ROW_GROUPS.index(group)]
