"""Generator constructor arguments as files record them: which project wrote them, their normal
form for our networks, and a check of every value before anything is built.

NVlabs/stylegan3 records `Generator(z_dim, c_dim, w_dim, img_resolution, img_channels,
mapping_kwargs, **synthesis_kwargs)`. NVlabs/stylegan2-ada-pytorch nests the synthesis settings
under `synthesis_kwargs` and has other defaults (num_fp16_res 0, conv_clamp None, w_avg_beta
0.995); PDillis/stylegan3-fun adds training-only mapping arguments. The normal form is the
stylegan3 one, which our networks take. Values are checked against types and ranges that every
real generator falls inside, so that a crafted file cannot make building a network take
unbounded time or memory; the tensors in the file are compared with the network afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch_utils.ops.bias_act import ACTIVATIONS
from torch_utils.plain_data import is_finite_number

STYLEGAN3 = "NVlabs/stylegan3"
STYLEGAN2_ADA = "NVlabs/stylegan2-ada-pytorch"
STYLEGAN3_FUN = "PDillis/stylegan3-fun"
SUPPORTED_ARGUMENTS = (f"the generator arguments of {STYLEGAN3} (StyleGAN3 and StyleGAN2), {STYLEGAN2_ADA} and "
                       f"{STYLEGAN3_FUN}")

# Arguments that only change training; accepted and ignored.
TRAINING_ONLY_MAPPING = {STYLEGAN3_FUN: ("freeze_layers", "freeze_embed")}
# Defaults of stylegan2-ada-pytorch that differ from stylegan3's StyleGAN2 (its files record them all
# the same; these apply to files that lack them).
ADA_SYNTHESIS_DEFAULTS = {"num_fp16_res": 0, "conv_clamp": None, "fused_modconv_default": "inference_only"}
ADA_MAPPING_DEFAULTS = {"w_avg_beta": 0.995}


class BadArguments(ValueError):
    """The recorded arguments cannot describe a supported generator; the message is a phrase that
    completes "<file>: ..."."""


# --- Value checks --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    accepts: Callable[[Any], bool]
    expected: str


def integer(lo: int, hi: int, power_of_two: bool = False, odd: bool = False) -> Check:
    def ok(v: Any) -> bool:
        return (type(v) is int and lo <= v <= hi and (not power_of_two or v & (v - 1) == 0)
                and (not odd or v % 2 == 1))
    extra = ", a power of two" if power_of_two else ", odd" if odd else ""
    return Check(ok, f"an integer from {lo} to {hi}{extra}")


def number(lo: float, hi: float) -> Check:
    return Check(lambda v: is_finite_number(v) and lo <= v <= hi, f"a number from {lo:g} to {hi:g}")


def optional(check: Check) -> Check:
    return Check(lambda v: v is None or check.accepts(v), f"None or {check.expected}")


def one_of(*choices: Any) -> Check:
    return Check(lambda v: any(v is c or (type(v) is type(c) and v == c) for c in choices),
                 "one of " + ", ".join(repr(c) for c in choices))


def _is_filter(v: Any) -> bool:
    if isinstance(v, list) and 1 <= len(v) <= 16 and all(is_finite_number(t) for t in v):
        return sum(v) != 0
    if isinstance(v, list) and 1 <= len(v) <= 16 and all(isinstance(row, list) and len(row) == len(v[0])
                                                         and 1 <= len(row) <= 16 for row in v):
        taps = [t for row in v for t in row]
        return all(is_finite_number(t) for t in taps) and sum(taps) != 0
    return False


BOOL = one_of(False, True)
FILTER = Check(_is_filter, "a list of 1 to 16 filter taps (or a 2-D list) with a non-zero sum")
SIZE = integer(1, 16384)
ACTIVATION = one_of(*ACTIVATIONS)

GENERATOR = {
    "z_dim": SIZE, "c_dim": integer(0, 65536), "w_dim": SIZE,
    "img_resolution": integer(4, 16384, power_of_two=True), "img_channels": integer(1, 16),
}
MAPPING = {
    "num_layers": integer(1, 64), "embed_features": optional(SIZE), "layer_features": optional(SIZE),
    "activation": ACTIVATION, "lr_multiplier": number(1e-6, 1e6), "w_avg_beta": number(0, 1),
}
COMMON_SYNTHESIS = {
    "channel_base": integer(1, 1 << 24), "channel_max": SIZE, "num_fp16_res": integer(0, 64),
    "conv_clamp": optional(number(1e-9, 1e9)),
}
SYNTHESIS = {
    "stylegan3": {
        **COMMON_SYNTHESIS, "num_layers": integer(1, 64), "num_critical": integer(0, 63),
        "first_cutoff": number(1e-3, 1e5), "first_stopband": number(1e-3, 1e5), "last_stopband_rel": number(1e-3, 1e3),
        "margin_size": integer(0, 1024), "output_scale": number(-1e6, 1e6), "conv_kernel": integer(1, 15),
        "filter_size": integer(1, 16), "lrelu_upsampling": integer(1, 4), "use_radial_filters": BOOL,
        "magnitude_ema_beta": number(0, 1),
    },
    "stylegan2": {
        **COMMON_SYNTHESIS, "architecture": one_of("orig", "skip", "resnet"), "resample_filter": FILTER,
        "fp16_channels_last": BOOL, "fused_modconv_default": one_of(False, True, "inference_only"),
        "kernel_size": integer(1, 9, odd=True), "use_noise": BOOL, "activation": ACTIVATION,
    },
}
FAMILY_NAMES = {"stylegan3": "StyleGAN3", "stylegan2": "StyleGAN2"}


# --- Projects and the normal form ----------------------------------------------------------------

def source_project(raw: dict[str, Any]) -> str:
    """The project whose training code recorded these arguments (a judgement from their form)."""
    if "synthesis_kwargs" in raw:
        return STYLEGAN2_ADA
    mapping = raw.get("mapping_kwargs")
    if isinstance(mapping, dict) and any(k in mapping for k in TRAINING_ONLY_MAPPING[STYLEGAN3_FUN]):
        return STYLEGAN3_FUN
    return STYLEGAN3


def normal_form(raw: dict[str, Any], project: str) -> dict[str, Any]:
    """The arguments as stylegan3's Generator takes them: stylegan2-ada-pytorch's nested synthesis
    arguments merged (with its defaults), training-only arguments dropped."""
    kwargs = dict(raw)
    mapping = kwargs.get("mapping_kwargs", {})
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise BadArguments(f"its generator records mapping_kwargs as a {type(mapping).__name__}, not a set of "
                           "named arguments; the file is damaged or not from a supported project")
    mapping = {k: v for k, v in mapping.items() if k not in TRAINING_ONLY_MAPPING.get(project, ())}
    if project == STYLEGAN2_ADA:
        nested = kwargs.pop("synthesis_kwargs")
        if nested is None:
            nested = {}
        if not isinstance(nested, dict):
            raise BadArguments(f"its generator records synthesis_kwargs as a {type(nested).__name__}, not a set "
                               "of named arguments; the file is damaged or not from a supported project")
        clash = sorted(set(nested) & set(kwargs))
        if clash:
            raise BadArguments(f"its generator records {clash[0]!r} both inside and outside synthesis_kwargs; the "
                               f"file is damaged or from a fork of {STYLEGAN2_ADA} that this tool does not know")
        kwargs.update(nested)
        for name, value in ADA_SYNTHESIS_DEFAULTS.items():
            kwargs.setdefault(name, value)
        mapping = {**ADA_MAPPING_DEFAULTS, **mapping}
    kwargs["mapping_kwargs"] = mapping
    return kwargs


def check_arguments(family: str, kwargs: dict[str, Any], project: str | None) -> None:
    """BadArguments naming the first argument that is missing, unknown or out of range; `project` is
    the one the file appears to come from (None: this tool's own checkpoints)."""
    for name in GENERATOR:
        if name not in kwargs:
            raise BadArguments(f"its generator does not record {name}, which every generator records; the file "
                               "is damaged or incomplete")
    mapping = kwargs.get("mapping_kwargs")
    for where, table, values in (("", {**GENERATOR, **SYNTHESIS[family]}, kwargs),
                                 ("mapping_kwargs.", MAPPING, mapping)):
        for name, value in values.items():
            if where == "" and name == "mapping_kwargs":
                continue
            check = table.get(name)
            if check is None:
                origin = f" (the file appears to come from {project} or a fork of it)" if project else ""
                raise BadArguments(
                    f"its generator records the argument {where}{name} = {_shown(value)}, which "
                    f"{FAMILY_NAMES[family]} generators do not take{origin}; this tool supports {SUPPORTED_ARGUMENTS}")
            if not check.accepts(value):
                raise BadArguments(f"its generator records {where}{name} = {_shown(value)}, but it must be "
                                   f"{check.expected}; the file is damaged or not a StyleGAN generator")
    if family == "stylegan3":
        layers = kwargs.get("num_layers", 14)
        if kwargs.get("num_critical", 2) >= layers:
            raise BadArguments(f"its generator records num_critical >= num_layers ({layers}); the file is "
                               "damaged or not a StyleGAN3 generator")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
