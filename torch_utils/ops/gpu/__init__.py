"""The torch-ops GPU path: the custom ops built from torch convolutions that run well on any device
(CUDA without a toolkit or compiler, MPS, and CPU tensors for the tests), on the polyphase and
separable ideas of the fast CPU path: no zero insertion, no full-rate convolution before
decimating, radial filters as a few separable terms (passes.py), one chunk of channels at a time.

Same signatures and results as the reference ops; check.py says whether it runs on a device."""

from torch_utils.ops.gpu.activation import bias_act
from torch_utils.ops.gpu.check import gpu_unavailable_reason
from torch_utils.ops.gpu.filtered_nonlinearity import filtered_lrelu
from torch_utils.ops.gpu.resampling import upfirdn2d

__all__ = ["bias_act", "filtered_lrelu", "gpu_unavailable_reason", "upfirdn2d"]
