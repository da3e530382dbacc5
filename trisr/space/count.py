"""Parameter and MAC counting in the thop convention used for AGD/TrilevelNAS reports (method.md §12):
conv multiply-accumulates plus one per output element for each bias; activations, additions,
interpolation, pixel shuffle and tanh count zero."""

from __future__ import annotations

import torch
from torch import nn


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def count_macs(module: nn.Module, input_shape: tuple[int, ...], *args, **kwargs) -> int:
    """MACs of one forward pass, counted from the convs that actually run (so sliced widths count as
    sliced). Runs on the meta device: shapes only, no arithmetic, any resolution costs nothing."""
    total = 0

    def hook(mod: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        x = inputs[0]
        groups = x.shape[1] if getattr(mod, "depthwise", False) else mod.groups
        out_elems = output.numel()
        total += out_elems * (x.shape[1] // groups) * mod.kernel_size[0] * mod.kernel_size[1]
        if mod.bias is not None:
            total += out_elems

    meta = _to_meta(module)
    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, nn.Conv2d)]
    try:
        meta(torch.empty(*input_shape, device="meta"), *args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return total


def _to_meta(module: nn.Module) -> nn.Module:
    import copy

    # A deep copy moved to meta leaves the caller's module untouched; parameters on meta hold no data.
    clone = copy.deepcopy(module) if next(module.parameters(), torch.empty(0)).device.type != "meta" else module
    return clone.to("meta")
