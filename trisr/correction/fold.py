"""The known-kernel correction folded into a network: an edge pad and a fixed depthwise convolution in front
of it, so exported artifacts (ONNX ``Pad(mode=edge)`` + grouped ``Conv``) correct their own input."""

from __future__ import annotations

import torch
from torch import nn

from trisr.correction.filter import CorrectionFilter, correction_filter
from trisr.correction.kernels import KernelError, KernelSpec

__all__ = ["CorrectedNet", "fold_correction"]


class CorrectedNet(nn.Module):
    """``net(correction(x))``. Looks like ``net`` to the export path (``arch``), and says what it corrects."""

    def __init__(self, net: nn.Module, filt: CorrectionFilter):
        super().__init__()
        self.net = net
        self.arch = net.arch
        self.filter = filt
        self.pad = filt.size // 2
        taps = torch.as_tensor(filt.taps.copy(), dtype=torch.float32)[None, None].repeat(3, 1, 1, 1)
        self.register_buffer("taps", taps, persistent=False)

    @property
    def correction_record(self) -> dict:
        return self.filter.to_dict()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad
        x = nn.functional.conv2d(nn.functional.pad(x, (p, p, p, p), mode="replicate"), self.taps.to(x.dtype), groups=3)
        return self.net(x)


def fold_correction(net: nn.Module, spec: KernelSpec | None) -> nn.Module:
    """``net`` with the correction for ``spec`` in front; ``net`` itself for ``None``/bicubic or when it already
    carries a correction."""
    if spec is None or isinstance(net, CorrectedNet):
        return net
    if spec.is_estimate:
        raise KernelError("an artifact cannot estimate its kernel per image; give a known kernel to --kernel")
    filt = correction_filter(spec, net.arch.scale)
    return net if filt.is_identity else CorrectedNet(net, filt)
