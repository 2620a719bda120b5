"""The discriminator of an official training snapshot, rebuilt from its records.

A network-snapshot-NNNNNN.pkl of NVlabs/stylegan2-ada-pytorch, NVlabs/stylegan3 or
PDillis/stylegan3-fun holds D beside G_ema (a legacy TensorFlow pickle holds it as the D of its
(G, D, Gs), converted by renderer.worker.tf_conversion as the official conversion maps it): a persistent `Discriminator` record with
DiscriminatorBlock children b{res}, an optional class `mapping` and the `b4` epilogue. It comes from
the same restricted unpickler as the generator (torch_utils.persistence), and goes through the same
checks: every constructor argument against a type and range, the build bounded by the tensors the
file holds, and the tensors compared with the network name by name and shape by shape.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from renderer.worker import tf_conversion
from renderer.worker.checked_build import build_bounded, fill, stored_elements
from renderer.worker.generator_kwargs import (
    ACTIVATION, FILTER, MAPPING, SIZE, BadArguments, Check, integer, number, one_of, optional,
)
from renderer.worker.model_records import MalformedFile, ModuleRecord, constructor_arguments, module_tree
from renderer.worker.networks.discriminator import ARCHITECTURES, Discriminator
from torch_utils.persistence import PersistentObject, TFNetwork

# The official Discriminator's parameters, in their positional order.
DISCRIMINATOR_ARGS = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                      "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs")
TOP = {
    "c_dim": integer(0, 65536), "img_resolution": integer(4, 16384, power_of_two=True), "img_channels": integer(1, 16),
    "architecture": one_of(*ARCHITECTURES), "channel_base": integer(1, 1 << 24), "channel_max": SIZE,
    "num_fp16_res": integer(0, 64), "conv_clamp": optional(number(1e-9, 1e9)), "cmap_dim": optional(SIZE),
}
BLOCK = {"activation": ACTIVATION, "resample_filter": FILTER}
EPILOGUE = {"mbstd_group_size": optional(integer(1, 4096)), "mbstd_num_channels": integer(0, 64),
            "activation": ACTIVATION}
D_MAPPING = {name: check for name, check in MAPPING.items() if name != "w_avg_beta"}
# Accepted and left out: they change how D trains or how fast it runs on CUDA, not what it computes.
IGNORED = {"block_kwargs": ("fp16_channels_last", "freeze_layers"), "mapping_kwargs": ("w_avg_beta",),
           "epilogue_kwargs": ()}
NESTED = {"block_kwargs": BLOCK, "mapping_kwargs": D_MAPPING, "epilogue_kwargs": EPILOGUE}


def discriminator_record(content: Any) -> PersistentObject:
    """The D of a snapshot's content (MalformedFile when there is none)."""
    if not isinstance(content, dict):
        raise MalformedFile("it is not a training snapshot (a dict of G, D, G_ema, ...), so it holds no discriminator")
    D = content.get("D")
    if not isinstance(D, PersistentObject):
        raise MalformedFile("its snapshot holds no discriminator network 'D'")
    if D.class_name != "Discriminator":
        raise MalformedFile(f"its D is a {D.class_name[:60]}, not the official Discriminator")
    return D


def discriminator_arguments(record: ModuleRecord) -> dict[str, Any]:
    """The recorded constructor arguments, positional ones named, checked, training-only ones left out."""
    return checked_arguments(constructor_arguments(record, DISCRIMINATOR_ARGS, "discriminator"))


def checked_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Official Discriminator arguments (plain data) checked value by value, training-only ones left out."""
    for name in ("c_dim", "img_resolution", "img_channels"):
        if name not in kwargs:
            raise BadArguments(f"its discriminator does not record {name}; the file is damaged or incomplete")
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name in NESTED:
            out[name] = _nested(name, value)
        else:
            _check(TOP, "", name, value)
            out[name] = value
    return out


def _nested(group: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadArguments(f"its discriminator records {group} as a {type(value).__name__}, not a set of named "
                           "arguments; the file is damaged")
    kept = {}
    for name, v in value.items():
        if name in IGNORED[group]:
            continue
        _check(NESTED[group], f"{group}.", name, v)
        kept[name] = v
    return kept


def _check(table: dict[str, Check], where: str, name: str, value: Any) -> None:
    check = table.get(name)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if check is None:
        raise BadArguments(f"its discriminator records the argument {where}{name} = {shown}, which the official "
                           "Discriminator does not take")
    if not check.accepts(value):
        raise BadArguments(f"its discriminator records {where}{name} = {shown}, but it must be {check.expected}")


def rebuild_discriminator(content: Any) -> nn.Module:
    """Our Discriminator holding the tensors of the D in a file's content (an official snapshot's D,
    or the D of a TensorFlow (G, D, Gs) pickle, converted), in eval mode without gradients.
    MalformedFile, BadArguments, TensorMismatch or UnsupportedTensorFlow (each a phrase completing
    "<file>: ...") otherwise."""
    if isinstance(content, (tuple, list)) and len(content) == 3 and all(isinstance(n, TFNetwork) for n in content):
        kwargs, variables = tf_conversion.convert_discriminator(content[1])
        kwargs = checked_arguments(kwargs)
        elements = sum({id(a): a.size for a in variables.values()}.values())
        D = build_bounded(lambda: Discriminator(**kwargs), elements, "discriminator")
        tensors = tf_conversion.discriminator_state_dict(list(D.state_dict()), variables,
                                                         kwargs.get("block_kwargs", {}).get("resample_filter"))
    else:
        record = module_tree(discriminator_record(content))
        kwargs = discriminator_arguments(record)
        tensors = record.state_dict()
        D = build_bounded(lambda: Discriminator(**kwargs), stored_elements(tensors.values()), "discriminator")
    D = fill(D, "StyleGAN2", tensors, what="discriminator")
    return D.float().eval().requires_grad_(False)
