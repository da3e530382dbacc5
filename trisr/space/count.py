"""Parameter and MAC counting in the thop convention used for AGD/TrilevelNAS reports (method.md §12):
conv multiply-accumulates plus one per output element for each bias; activations, additions,
interpolation, pixel shuffle, normalisation, softmax and tanh count zero.

Beyond the search space's convs (for the hand-designed networks of :mod:`trisr.zoo`):

* ``nn.ConvTranspose2d``: the multiply-accumulates it really does, ``input elements x (c_out / groups) x
  k_h x k_w``, plus one per output element for a bias. (thop counts ``output elements x (c_in / groups) x
  k_h x k_w``, which overstates a stride-s deconvolution s^2-fold; FSRCNN's published counts use the real
  figure.)
* ``nn.Linear``: ``output elements x in_features`` plus one per output element for a bias;
* :class:`MatMul` (attention products): ``output elements x inner dimension``;
* any other module with a ``macs(inputs, output) -> int`` method counts itself (fixed, parameter-free
  layers such as the bicubic network's buffer convolution).
"""

from __future__ import annotations

import torch
from torch import nn


class MatMul(nn.Module):
    """``a @ b`` as a module, so that :func:`count_macs` sees attention products (no parameters)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b

    def macs(self, inputs, output) -> int:
        return output.numel() * inputs[0].shape[-1]


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _conv_macs(mod: nn.Conv2d, inputs, output) -> int:
    x = inputs[0]
    groups = x.shape[1] if getattr(mod, "depthwise", False) else mod.groups
    out_elems = output.numel()
    macs = out_elems * (x.shape[1] // groups) * mod.kernel_size[0] * mod.kernel_size[1]
    return macs + (out_elems if mod.bias is not None else 0)


def _deconv_macs(mod: nn.ConvTranspose2d, inputs, output) -> int:
    x = inputs[0]
    macs = x.numel() * (mod.out_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
    return macs + (output.numel() if mod.bias is not None else 0)


def _linear_macs(mod: nn.Linear, inputs, output) -> int:
    return output.numel() * mod.in_features + (output.numel() if mod.bias is not None else 0)


def _self_counted(mod: nn.Module, inputs, output) -> int:
    return mod.macs(inputs, output)


_COUNTERS = ((nn.Conv2d, _conv_macs), (nn.ConvTranspose2d, _deconv_macs), (nn.Linear, _linear_macs))


@torch.no_grad()
def count_macs(module: nn.Module, input_shape: tuple[int, ...], *args, **kwargs) -> int:
    """MACs of one forward pass, counted from the layers that actually run (so sliced widths count as
    sliced). Runs on the meta device: shapes only, no arithmetic, any resolution costs nothing."""
    total = 0

    def hook_for(count):
        def hook(mod, inputs, output) -> None:
            nonlocal total
            total += int(count(mod, inputs, output))

        return hook

    meta = _to_meta(module)
    handles = []
    for m in meta.modules():
        count = next((fn for cls, fn in _COUNTERS if isinstance(m, cls)), None)
        if count is None and callable(getattr(m, "macs", None)):
            count = _self_counted
        if count is not None:
            handles.append(m.register_forward_hook(hook_for(count)))
    try:
        meta(torch.empty(*input_shape, device="meta"), *args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return total


def _to_meta(module: nn.Module) -> nn.Module:
    import copy

    # A deep copy moved to meta leaves the caller's module untouched; parameters on meta hold no data.
    first = next(module.parameters(), None)
    if first is None:
        first = next(module.buffers(), torch.empty(0))
    clone = copy.deepcopy(module) if first.device.type != "meta" else module
    return clone.to("meta")
