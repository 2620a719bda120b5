"""Reference implementations of the custom ops: plain PyTorch written like their definitions, on any
device. Every faster path is tested against these."""

from torch_utils.ops.reference.bias_act import ACTIVATIONS, bias_act_ref
from torch_utils.ops.reference.filtered_lrelu import filtered_lrelu_ref
from torch_utils.ops.reference.upfirdn2d import (Padding, filter_size, parse_padding, parse_scaling, setup_filter,
                                                 upfirdn2d_ref)

__all__ = ["ACTIVATIONS", "Padding", "bias_act_ref", "filter_size", "filtered_lrelu_ref", "parse_padding",
           "parse_scaling", "setup_filter", "upfirdn2d_ref"]
