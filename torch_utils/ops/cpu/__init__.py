"""Fast CPU implementations of the custom ops (polyphase, separable, fused and tiled).

See polyphase.py for the maths, separable.py for the passes and the fused filtered leaky ReLU,
ops.py for the public functions (same signatures as the reference ops)."""

from torch_utils.ops.cpu.ops import bias_act, filtered_lrelu, upfirdn2d

__all__ = ["bias_act", "filtered_lrelu", "upfirdn2d"]
