"""Cell-level candidate ops and the fixed blocks (head, up, tail), as slimmable modules.

One class per op serves both the supernet and the derived network, so the profiler, the supernet and
the exported network all run the same code:

* in the supernet an op is built at full width (nf -> nf) and called with the drawn widths; every conv
  uses the leading slice ``W[:c_out, :c_in]`` of its full-width weight ("universally slimmable");
* in the derived network the op is built at its exact widths and called without a width, so no slicing
  is traced into exports.

Add an op with ``@OPS.register("name")`` on a ``CellOp`` subclass; the search space picks ops by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trisr.registry import Registry

OPS: Registry[type["CellOp"]] = Registry("op")


class SlimConv2d(nn.Conv2d):
    """A stride-1, same-padding conv that can run on the leading channels of its weight.

    Depthwise convs (``groups == in_channels``) follow the input width.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, bias: bool = False, depthwise: bool = False):
        super().__init__(
            c_in, c_out, kernel_size, padding=kernel_size // 2, bias=bias, groups=c_in if depthwise else 1
        )
        self.depthwise = depthwise

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:  # type: ignore[override]
        c_in = x.shape[1]
        if self.depthwise:
            c_out = c_in
        elif c_out is None:
            c_out = self.out_channels
        if c_out == self.out_channels and c_in == self.in_channels:
            weight, bias = self.weight, self.bias  # full width: no slice in the graph
        else:
            weight = self.weight[:c_out] if self.depthwise else self.weight[:c_out, :c_in]
            bias = None if self.bias is None else self.bias[:c_out]
        return F.conv2d(x, weight, bias, 1, self.padding, 1, c_in if self.depthwise else 1)


class CellOp(nn.Module):
    """Base class of candidate ops: maps ``c_in`` to ``c_out`` channels at the same resolution.

    ``conv_shortcut`` (residual ops only): build a 1x1 shortcut even when c_in == c_out. The supernet
    always does, because widths change from pass to pass (method.md §3.3).

    ``in_mask`` / ``out_mask`` (supernet with masked width relaxation only; not keyword-only, because the
    TorchScript tracer of the ONNX export passes defaults positionally): 1-D channel
    masks (length nf) of the op's input and output edge, ``None`` for a full-width edge. Ops with an
    internal width mask it with them, so that at one-hot masks the full-width op computes the derived op;
    ops without one ignore them. They are never passed otherwise (derived network, sampled widths).
    """

    def __init__(self, c_in: int, c_out: int, conv_shortcut: bool = False) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out

    def forward(
        self,
        x: torch.Tensor,
        c_out: int | None = None,
        in_mask: torch.Tensor | None = None,
        out_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        raise NotImplementedError


def _masked(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return h if mask is None else h * mask.view(1, -1, 1, 1)


class _Shortcut(nn.Module):
    """Identity when the widths match and no conv is asked for, else a bias-free 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, conv: bool) -> None:
        super().__init__()
        self.conv = SlimConv2d(c_in, c_out, 1) if (conv or c_in != c_out) else None

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        return x if self.conv is None else self.conv(x, c_out)


@OPS.register("skip")
class Skip(CellOp):
    """1x1 conv + ReLU. Always a conv, even when c_in == c_out (never an identity)."""

    def __init__(self, c_in: int, c_out: int, conv_shortcut: bool = False) -> None:
        super().__init__(c_in, c_out)
        self.conv = SlimConv2d(c_in, c_out, 1)

    def forward(self, x, c_out=None, in_mask=None, out_mask=None):
        return F.relu(self.conv(x, c_out))


@OPS.register("conv3x3")
class Conv3x3(CellOp):
    """3x3 conv + ReLU."""

    def __init__(self, c_in: int, c_out: int, conv_shortcut: bool = False) -> None:
        super().__init__(c_in, c_out)
        self.conv = SlimConv2d(c_in, c_out, 3)

    def forward(self, x, c_out=None, in_mask=None, out_mask=None):
        return F.relu(self.conv(x, c_out))


@OPS.register("residual")
class Residual(CellOp):
    """3x3 conv, ReLU, 3x3 conv, plus shortcut, ReLU. The internal width (conv1's output) is c_out,
    masked with ``out_mask`` in the masked supernet."""

    def __init__(self, c_in: int, c_out: int, conv_shortcut: bool = False) -> None:
        super().__init__(c_in, c_out)
        self.conv1 = SlimConv2d(c_in, c_out, 3)
        self.conv2 = SlimConv2d(c_out, c_out, 3)
        self.shortcut = _Shortcut(c_in, c_out, conv_shortcut)

    def forward(self, x, c_out=None, in_mask=None, out_mask=None):
        c_out = c_out or self.c_out
        y = self.conv2(_masked(F.relu(self.conv1(x, c_out)), out_mask), c_out)
        return F.relu(y + self.shortcut(x, c_out))


@OPS.register("dwsblock")
class DwsBlock(CellOp):
    """Inverted bottleneck: 1x1 expand to e*c_in, ReLU, depthwise 3x3, ReLU, 1x1 project, + shortcut, ReLU.

    Deviation from the reference supernet [project]: the expansion follows the *actual* input width
    (e * c_in) instead of staying at e * nf. The derived op has e * c_in channels (method.md §10.3), so with
    this choice the supernet computes exactly the function the derived network inherits (§10.4 step 3 no
    longer changes it) and the cost tables price what the derived network runs. In the masked supernet
    (full width) the hidden layer gets the expected mask of its first e * c_in channels,
    ``sum_k p_k 1[ch < e*w_k] = in_mask.repeat_interleave(e)``, for the same reason.
    """

    expansion = 4

    def __init__(self, c_in: int, c_out: int, conv_shortcut: bool = False, expansion: int = 4) -> None:
        super().__init__(c_in, c_out)
        self.expansion = expansion
        hidden = expansion * c_in
        self.expand = SlimConv2d(c_in, hidden, 1)
        self.depthwise = SlimConv2d(hidden, hidden, 3, depthwise=True)
        self.project = SlimConv2d(hidden, c_out, 1)
        self.shortcut = _Shortcut(c_in, c_out, conv_shortcut)

    def forward(self, x, c_out=None, in_mask=None, out_mask=None):
        c_out = c_out or self.c_out
        h = F.relu(self.expand(x, self.expansion * x.shape[1]))
        if in_mask is not None:
            # Once, before the depthwise conv: it is channel-wise and bias-free, so masked channels stay 0.
            h = _masked(h, in_mask.repeat_interleave(self.expansion))
        h = F.relu(self.depthwise(h))
        return F.relu(self.project(h, c_out) + self.shortcut(x, c_out))


def create_op(name: str, c_in: int, c_out: int, conv_shortcut: bool = False, dws_expansion: int = 4) -> CellOp:
    cls = OPS.get(name)
    if cls is DwsBlock:
        return DwsBlock(c_in, c_out, conv_shortcut, expansion=dws_expansion)
    return cls(c_in, c_out, conv_shortcut)


# -- fixed blocks ----------------------------------------------------------------------------------------


class Head(nn.Sequential):
    """3x3 conv 3 -> nf with bias."""

    def __init__(self, nf: int) -> None:
        super().__init__(nn.Conv2d(3, nf, 3, padding=1))


class UpBlock(nn.Module):
    """Variant B: a plain 3x3 conv nf -> nf with bias at LR (no activation).
    Variant A: nearest x2, 3x3 conv with bias, LeakyReLU(0.2)."""

    def __init__(self, nf: int, variant: str) -> None:
        super().__init__()
        self.variant = variant
        self.conv = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "A":
            return F.leaky_relu(self.conv(F.interpolate(x, scale_factor=2, mode="nearest")), 0.2)
        return self.conv(x)


#: Global skips of the output head (issue: accuracy). ``none`` is the reference code's head; the others add
#: an upsampled copy of the LR input to the tail's output, so the network only predicts the residual.
SKIPS = ("none", "nearest", "bicubic")
#: Output maps: the reference ``(tanh(y) + 1) / 2``, or ``linear`` (the value itself; the output is
#: clamped to [0, 1] when it is quantised, as every SR network does).
OUTPUT_MAPS = ("tanh", "linear")
#: Interpolation arguments per skip (half-pixel centres for cubic, as ONNX Resize and every runtime expect).
_ALIGN = {"nearest": {}, "bicubic": {"align_corners": False}}


class Tail(nn.Module):
    """Variant B: 3x3 conv nf -> 3*s^2 with bias, PixelShuffle(s). Variant A: 3x3 conv nf -> 3 at HR.

    Then the global skip and the output map (both from the space configuration, shared by supernet and
    derived network):

    * ``skip="nearest"``: ``+ nearest_s(lr)``. Adding the nearest-upsampled input after PixelShuffle is the
      same function as ABPN's anchor (the LR input repeated s^2 times and added before the shuffle): one
      Resize and one Add at HR, no parameters;
    * ``skip="bicubic"``: ``+ bicubic_s(lr)`` (torch/ONNX cubic, a = -0.75, half-pixel centres);
    * ``output="tanh"``: ``(tanh(y) + 1) / 2`` (the reference code, method.md §11 item 11); ``linear``: ``y``.
    """

    def __init__(self, nf: int, scale: int, variant: str, skip: str = "none", output: str = "tanh") -> None:
        super().__init__()
        if skip not in SKIPS or output not in OUTPUT_MAPS:
            raise ValueError(f"skip must be one of {SKIPS} and output one of {OUTPUT_MAPS}")
        self.scale, self.skip, self.output = scale, skip, output
        self.conv = nn.Conv2d(nf, 3 * scale * scale if variant == "B" else 3, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale) if variant == "B" else nn.Identity()

    def forward(self, x: torch.Tensor, lr: torch.Tensor | None = None) -> torch.Tensor:
        y = add_global_skip(self.shuffle(self.conv(x)), lr, self.scale, self.skip)
        return (torch.tanh(y) + 1) / 2 if self.output == "tanh" else y


def add_global_skip(y: torch.Tensor, lr: torch.Tensor | None, scale: int, skip: str) -> torch.Tensor:
    """``y`` plus the upsampled LR input (``skip`` of :data:`SKIPS`; ``none`` returns ``y``). Shared by the
    tail of trisr's networks and the hand-designed networks of :mod:`trisr.zoo`."""
    if skip == "none":
        return y
    if lr is None:
        raise ValueError(f"a tail with skip={skip!r} needs the LR input")
    return y + F.interpolate(lr, scale_factor=scale, mode=skip, **_ALIGN[skip])


class TailEntry(nn.Module):
    """The tail as one latency/cost entry. An entry has a single input (the nf features), so the LR input of
    the skip is stood in by the first three feature channels: the timed graph holds the skip's Resize and Add
    in context, at the cost of one channel Slice (free in every runtime we profile)."""

    def __init__(self, tail: Tail) -> None:
        super().__init__()
        self.tail = tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(x, x[:, :3] if self.tail.skip != "none" else None)
