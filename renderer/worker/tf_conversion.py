"""Legacy TensorFlow StyleGAN2 / StyleGAN2-ADA generators (`dnnlib.tflib.network.Network`) as
constructor arguments and a state dict of our StyleGAN2 network, read from their data only (and,
at the end, their discriminators as the official Discriminator's, for the projection's distance).

A TensorFlow network pickles as its static constructor arguments, its variables as (name, numpy
array) pairs, and its components (mapping, synthesis) in the same form; the TensorFlow source it
carries is never needed. The arguments and variables map onto the StyleGAN2 generator of
NVlabs/stylegan3 as the official conversion maps them (NETWORK_NOTES.md): fmap_base counts
channels at 2x2, dense weights are stored [in, out], convolution weights [k, k, in, out] (the
upsampling ones flipped), style biases without their +1, noise inputs numbered across the network.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import torch

from renderer.worker.generator_kwargs import BadArguments
from torch_utils.ops.upfirdn2d import setup_filter
from torch_utils.persistence import SUPPORTED_FILES, TFNetwork
from torch_utils.plain_data import NotPlainData, plain_value

SOURCE = "NVlabs/stylegan2 or stylegan2-ada (TensorFlow)"
MAX_VARIABLES = 10_000
MAX_COMPONENT_DEPTH = 4
DEFAULT_FILTER = [1, 3, 3, 1]

# TensorFlow static kwarg -> (where it goes, our name, default); None means "not needed to render".
_ARGUMENTS: dict[str, tuple[str, str, Any] | None] = {
    "latent_size": ("", "z_dim", 512),
    "label_size": ("", "c_dim", 0),
    "dlatent_size": ("", "w_dim", 512),
    "resolution": ("", "img_resolution", 1024),
    "num_channels": ("", "img_channels", 3),
    "fmap_base": ("", "channel_base", 16384),
    "fmap_max": ("", "channel_max", 512),
    "num_fp16_res": ("", "num_fp16_res", 0),
    "conv_clamp": ("", "conv_clamp", None),
    "architecture": ("", "architecture", "skip"),
    "resample_kernel": ("", "resample_filter", DEFAULT_FILTER),
    "use_noise": ("", "use_noise", True),
    "nonlinearity": ("", "activation", "lrelu"),
    "mapping_layers": ("mapping", "num_layers", 8),
    "label_fmaps": ("mapping", "embed_features", None),
    "mapping_fmaps": ("mapping", "layer_features", None),
    "mapping_nonlinearity": ("mapping", "activation", "lrelu"),
    "mapping_lrmul": ("mapping", "lr_multiplier", 0.01),
    "w_avg_beta": ("mapping", "w_avg_beta", 0.995),
    "truncation_psi": None, "truncation_cutoff": None, "style_mixing_prob": None, "structure": None,
    "conditioning": None, "fused_modconv": None,
}


class UnsupportedTensorFlow(ValueError):
    """A TensorFlow network that this tool does not convert; a phrase completing "<file>: ..."."""


def _state(net: Any, where: str) -> dict:
    if not isinstance(net, TFNetwork) or not isinstance(net.state, dict):
        raise UnsupportedTensorFlow(f"the TensorFlow network {where} has no readable state; the file is damaged")
    return net.state


def network_kind(net: TFNetwork) -> str:
    """The build function that made the network ('G_main' for StyleGAN2 generators)."""
    name = _state(net, "Gs").get("build_func_name")
    return name if isinstance(name, str) and len(name) < 100 else "unknown"


def _static_arguments(state: dict, table: dict[str, tuple[str, str, Any] | None], what: str,
                      supported: str = "") -> dict[str, dict[str, Any]]:
    """The TensorFlow static kwargs renamed by `table` (TensorFlow name -> (group, our name, default);
    None: not needed), as {group: {our name: value}}; BadArguments naming an argument `table` lacks."""
    try:
        static = plain_value(state.get("static_kwargs") or {})
    except NotPlainData as e:
        raise BadArguments(f"the TensorFlow {what}'s arguments are unreadable (they hold {e})") from None
    if not isinstance(static, dict):
        raise BadArguments(f"the TensorFlow {what}'s arguments are not a set of named arguments")
    unknown = sorted(set(static) - set(table))
    if unknown:
        raise BadArguments(f"its TensorFlow {what} records the argument {unknown[0]!r}, which the official "
                           f"conversion of TensorFlow StyleGAN2 {what}s does not know{supported}")
    groups: dict[str, dict[str, Any]] = {}
    for tf_name, rule in table.items():
        if rule is not None:
            group, name, default = rule
            groups.setdefault(group, {})[name] = static.get(tf_name, default)
    return groups


def _arguments(state: dict) -> dict[str, Any]:
    """Our StyleGAN2 constructor arguments from the TensorFlow static kwargs."""
    groups = _static_arguments(state, _ARGUMENTS, "generator", f"; this tool reads {SUPPORTED_FILES}")
    kwargs, mapping = groups[""], groups["mapping"]
    if mapping["w_avg_beta"] is None:  # as the official conversion reads "no average"
        mapping["w_avg_beta"] = 1.0
    if isinstance(kwargs["channel_base"], int) and not isinstance(kwargs["channel_base"], bool):
        kwargs["channel_base"] *= 2   # TensorFlow's fmap_base counts channels at 2x2, ours at 1x1
    kwargs["mapping_kwargs"] = mapping
    return kwargs


def variables_of(net: TFNetwork) -> dict[str, np.ndarray]:
    """Every variable of `net` and its components, named by component path ('mapping/Dense0/weight')."""
    out: dict[str, np.ndarray] = {}

    def visit(n: Any, prefix: str, depth: int) -> None:
        state = _state(n, prefix.rstrip("/") or "Gs")
        if depth > MAX_COMPONENT_DEPTH:
            raise UnsupportedTensorFlow("its TensorFlow components nest too deeply; the file is damaged or crafted")
        variables = state.get("variables") or []
        components = state.get("components") or {}
        if not isinstance(variables, list) or not isinstance(components, dict):
            raise UnsupportedTensorFlow("a TensorFlow network's variables or components are malformed; the file is "
                                        "damaged")
        for item in variables:
            if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1], (np.ndarray, np.generic)) and item[1].dtype.kind in "fiu"):
                raise UnsupportedTensorFlow("a TensorFlow variable is not a (name, numeric array) pair; the file is "
                                            "damaged")
            out[prefix + item[0]] = np.asarray(item[1])  # 0-d variables (noise strengths) are numpy scalars
            if len(out) > MAX_VARIABLES:
                raise UnsupportedTensorFlow(f"it holds more than {MAX_VARIABLES:,} TensorFlow variables; the file "
                                            "is damaged or crafted")
        for name, component in components.items():
            if not isinstance(name, str) or "/" in name:
                raise UnsupportedTensorFlow("a TensorFlow component has a malformed name; the file is damaged")
            visit(component, f"{prefix}{name}/", depth + 1)

    visit(net, "", 0)
    return out


def _dense(a: np.ndarray) -> np.ndarray:
    return a.T


def _conv(a: np.ndarray) -> np.ndarray:
    return a.transpose(3, 2, 0, 1)


def _flipped_conv(a: np.ndarray) -> np.ndarray:
    return a[::-1, ::-1].transpose(3, 2, 0, 1)


def _style_bias(a: np.ndarray) -> np.ndarray:
    return a + 1


def _noise(a: np.ndarray) -> np.ndarray:
    return a[0, 0]


def _first(a: np.ndarray) -> np.ndarray:
    return a[0]


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _layer_rules(ours: str, tf: str, weight: Callable) -> list[tuple[str, str, Callable]]:
    """A modulated layer's tensors: `ours` is our module path pattern, `tf` the TensorFlow scope."""
    return [(rf"{ours}\.weight", f"{tf}/weight", weight), (rf"{ours}\.bias", f"{tf}/bias", _same),
            (rf"{ours}\.affine\.weight", f"{tf}/mod_weight", _dense),
            (rf"{ours}\.affine\.bias", f"{tf}/mod_bias", _style_bias)]


def _noise_index(res: str, conv: int) -> int:
    """TensorFlow numbers the noise inputs through the network: b4.conv1 is 0, b8.conv0 1, b8.conv1 2, ..."""
    return 2 * int(np.log2(int(res))) - 5 + conv


# Our state-dict name (regex; groups are the resolution) -> (TensorFlow name template, layout change).
_RULES: list[tuple[str, str, Callable]] = [
    (r"mapping\.w_avg", "dlatent_avg", _same),
    (r"mapping\.embed\.weight", "mapping/LabelEmbed/weight", _dense),
    (r"mapping\.embed\.bias", "mapping/LabelEmbed/bias", _same),
    (r"mapping\.fc(\d+)\.weight", "mapping/Dense{0}/weight", _dense),
    (r"mapping\.fc(\d+)\.bias", "mapping/Dense{0}/bias", _same),
    (r"synthesis\.b4\.const", "synthesis/4x4/Const/const", _first),
    *_layer_rules(r"synthesis\.b(4)\.conv1", "synthesis/{0}x{0}/Conv", _conv),
    *_layer_rules(r"synthesis\.b(\d+)\.conv0", "synthesis/{0}x{0}/Conv0_up", _flipped_conv),
    *_layer_rules(r"synthesis\.b(\d+)\.conv1", "synthesis/{0}x{0}/Conv1", _conv),
    *_layer_rules(r"synthesis\.b(\d+)\.torgb", "synthesis/{0}x{0}/ToRGB", _conv),
    (r"synthesis\.b(4)\.conv1\.noise_strength", "synthesis/{0}x{0}/Conv/noise_strength", _same),
    (r"synthesis\.b(\d+)\.conv0\.noise_strength", "synthesis/{0}x{0}/Conv0_up/noise_strength", _same),
    (r"synthesis\.b(\d+)\.conv1\.noise_strength", "synthesis/{0}x{0}/Conv1/noise_strength", _same),
    (r"synthesis\.b(\d+)\.skip\.weight", "synthesis/{0}x{0}/Skip/weight", _flipped_conv),
]


def _tf_name(ours: str) -> tuple[str, Callable] | None:
    for pattern, template, layout in _RULES:
        match = re.fullmatch(pattern, ours)
        if match:
            return template.format(*match.groups()), layout
    noise = re.fullmatch(r"synthesis\.b(\d+)\.conv([01])\.noise_const", ours)
    if noise:
        return f"synthesis/noise{_noise_index(noise.group(1), int(noise.group(2)))}", _noise
    return None


def _filter_value(ours: str, resample_filter: Any) -> torch.Tensor:
    """Filters are not TensorFlow variables: the official conversion keeps the network's own, where
    conv1 layers have the default filter and the rest `resample_filter`."""
    taps = DEFAULT_FILTER if re.search(r"\.conv1\.resample_filter$", ours) else resample_filter
    return setup_filter(taps)


def convert(net: TFNetwork) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Our StyleGAN2 constructor arguments and state dict for the TensorFlow generator `net`."""
    kind = network_kind(net)
    if kind == "G_style":
        raise UnsupportedTensorFlow(f"it is a TensorFlow StyleGAN generator of the first version (G_style), which this "
                                    f"tool does not convert; it reads {SUPPORTED_FILES}")
    if kind != "G_main":
        raise UnsupportedTensorFlow(f"it is a TensorFlow network built by {kind!r}, not a StyleGAN2 generator "
                                    f"(G_main); this tool reads {SUPPORTED_FILES}")
    version = _state(net, "Gs").get("version")
    if type(version) is not int or version < 4:
        raise UnsupportedTensorFlow("its TensorFlow network is of a version older than StyleGAN2's (4), which the "
                                    "official conversion does not read either")
    kwargs = _arguments(net.state)
    variables = variables_of(net)
    for name in list(variables):  # per-resolution ToRGB of the 'orig' architecture
        lod = re.fullmatch(r"synthesis/ToRGB_lod(\d+)/(.*)", name)
        if lod and isinstance(kwargs["img_resolution"], int):
            res = kwargs["img_resolution"] >> min(int(lod.group(1)), 30)
            variables[f"synthesis/{res}x{res}/ToRGB/{lod.group(2)}"] = variables[name]
            kwargs["architecture"] = "orig"
    return kwargs, variables


def state_dict_for(expected_names: list[str], variables: dict[str, np.ndarray],
                   resample_filter: Any) -> dict[str, torch.Tensor]:
    """Our tensors named `expected_names`, from the TensorFlow variables."""
    out: dict[str, torch.Tensor] = {}
    for ours in expected_names:
        if ours.endswith("resample_filter"):
            out[ours] = _filter_value(ours, resample_filter)
            continue
        found = _tf_name(ours)
        if found is None or found[0] not in variables:
            wanted = found[0] if found else ours
            raise UnsupportedTensorFlow(f"its TensorFlow generator lacks the variable {wanted} that {ours} is made "
                                        "from; the file is damaged or from a variant the official conversion does "
                                        "not read either")
        tf_name, layout = found
        out[ours] = torch.from_numpy(np.array(layout(variables[tf_name]), dtype=np.float32, order="C"))
    return out


# --- The discriminator ----------------------------------------------------------------------------
# The D of a (G, D, Gs) pickle, for the projection's discriminator distance. Static kwarg -> (group of
# the official Discriminator's arguments, our name, default), as the official conversion reads them.
_D_ARGUMENTS: dict[str, tuple[str, str, Any] | None] = {
    "label_size": ("", "c_dim", 0),
    "resolution": ("", "img_resolution", 1024),
    "num_channels": ("", "img_channels", 3),
    "architecture": ("", "architecture", "resnet"),
    "fmap_base": ("", "channel_base", 16384),
    "fmap_max": ("", "channel_max", 512),
    "num_fp16_res": ("", "num_fp16_res", 0),
    "conv_clamp": ("", "conv_clamp", None),
    "nonlinearity": ("block_kwargs", "activation", "lrelu"),
    "resample_kernel": ("block_kwargs", "resample_filter", DEFAULT_FILTER),
    "mbstd_group_size": ("epilogue_kwargs", "mbstd_group_size", 4),
    "mbstd_num_features": ("epilogue_kwargs", "mbstd_num_channels", 1),
    "freeze_layers": None, "structure": None, "conditioning": None,   # training only
}
D_BUILDS = ("D_main", "D_stylegan2")

# Our state-dict name (regex; groups: resolution, conv index) -> (TensorFlow name template, layout).
_D_RULES: list[tuple[str, str, Callable]] = [
    (r"b(\d+)\.fromrgb\.weight", "{0}x{0}/FromRGB/weight", _conv),
    (r"b(\d+)\.fromrgb\.bias", "{0}x{0}/FromRGB/bias", _same),
    (r"b(\d+)\.conv0\.weight", "{0}x{0}/Conv0/weight", _conv),
    (r"b(\d+)\.conv0\.bias", "{0}x{0}/Conv0/bias", _same),
    (r"b(\d+)\.conv1\.weight", "{0}x{0}/Conv1_down/weight", _conv),   # blur, then a strided correlation:
    (r"b(\d+)\.conv1\.bias", "{0}x{0}/Conv1_down/bias", _same),       # no flip, unlike G's upsampling
    (r"b(\d+)\.skip\.weight", "{0}x{0}/Skip/weight", _conv),
    (r"b4\.conv\.weight", "4x4/Conv/weight", _conv),
    (r"b4\.conv\.bias", "4x4/Conv/bias", _same),
    (r"b4\.fc\.weight", "4x4/Dense0/weight", _dense),
    (r"b4\.fc\.bias", "4x4/Dense0/bias", _same),
    (r"b4\.out\.weight", "Output/weight", _dense),
    (r"b4\.out\.bias", "Output/bias", _same),
]


def convert_discriminator(net: TFNetwork) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The official Discriminator's constructor arguments and the variables of the TensorFlow D `net`."""
    kind = network_kind(net)
    if kind not in D_BUILDS:
        raise UnsupportedTensorFlow(f"its TensorFlow D is built by {kind!r}, not a StyleGAN2 discriminator "
                                    f"({' or '.join(D_BUILDS)})")
    version = _state(net, "D").get("version")
    if type(version) is not int or version < 4:
        raise UnsupportedTensorFlow("its TensorFlow D is of a version older than StyleGAN2's (4)")
    groups = _static_arguments(_state(net, "D"), _D_ARGUMENTS, "discriminator")
    kwargs = {**groups[""], "block_kwargs": groups["block_kwargs"], "epilogue_kwargs": groups["epilogue_kwargs"]}
    if kwargs["c_dim"]:
        raise UnsupportedTensorFlow("its TensorFlow discriminator is conditional (label_size "
                                    f"{kwargs['c_dim']!r}); only unconditional ones are converted")
    if isinstance(kwargs["channel_base"], int) and not isinstance(kwargs["channel_base"], bool):
        kwargs["channel_base"] *= 2   # as for G: TensorFlow's fmap_base counts channels at 2x2
    return kwargs, variables_of(net)


def discriminator_state_dict(expected_names: list[str], variables: dict[str, np.ndarray],
                             resample_filter: Any) -> dict[str, torch.Tensor]:
    """Our Discriminator's tensors named `expected_names`, from the TensorFlow D's variables; every
    variable must be used."""
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for ours in expected_names:
        if ours.endswith("resample_filter"):
            out[ours] = setup_filter(resample_filter if resample_filter is not None else DEFAULT_FILTER)
            continue
        tf_name = layout = None
        for pattern, template, rule_layout in _D_RULES:
            match = re.fullmatch(pattern, ours)
            if match:
                tf_name, layout = template.format(*match.groups()), rule_layout
                break
        if tf_name is None or tf_name not in variables:
            raise UnsupportedTensorFlow(f"its TensorFlow discriminator lacks the variable {tf_name or ours} that "
                                        f"{ours} is made from; the file is damaged or from another variant")
        used.add(tf_name)
        out[ours] = torch.from_numpy(np.array(layout(variables[tf_name]), dtype=np.float32, order="C"))
    left = sorted(set(variables) - used)
    if left:
        raise UnsupportedTensorFlow(f"its TensorFlow discriminator has variables this conversion does not place "
                                    f"({', '.join(left[:3])}{' ...' if len(left) > 3 else ''})")
    return out

