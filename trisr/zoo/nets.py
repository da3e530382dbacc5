"""The zoo's families, written from the papers' descriptions (no code copied). Every network takes NCHW float
RGB in [0, 1] and returns NCHW at ``scale`` x the size; the learned ones end in the shared global skip
(``trisr.space.ops.add_global_skip``) unless ``skip="none"``. MACs at 256x256 LR, x2, are in ``trisr zoo``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trisr.data.resize import _cubic
from trisr.space.count import MatMul
from trisr.space.ops import Tail, add_global_skip
from trisr.zoo.registry import SKIP_KNOB, Knob, register_zoo


def _conv(c_in: int, c_out: int, k: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias)


def _tail(nf: int, scale: int, skip: str) -> Tail:
    """3x3 conv nf -> 3 s^2, PixelShuffle(s), the global skip, linear output: the upsampler of ESPCN, SPAN,
    IMDN and ESRT, and exactly trisr's own variant-B tail."""
    return Tail(nf, scale, "B", skip, "linear")


# -- bicubic ------------------------------------------------------------------------------------------------


def bicubic_phase_weights(scale: int) -> np.ndarray:
    """``(scale, 5)`` float64 taps of MATLAB ``imresize(..., s, 'bicubic')`` (Keys cubic, a = -0.5): output
    phase p of an LR pixel i samples ``u = i + (p + 0.5)/s - 0.5`` from the LR pixels i-2 .. i+2."""
    delta = (np.arange(scale) + 0.5) / scale - 0.5
    taps = _cubic(delta[:, None] - np.arange(-2, 3)[None, :])
    return taps / taps.sum(axis=1, keepdims=True)


class FixedDepthToSpaceConv(nn.Module):
    """A grouped 5x5 conv 3 -> 3 s^2 with a fixed (buffer) weight; counts its own MACs (no parameters)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, groups=3)

    def macs(self, inputs, output) -> int:
        return output.numel() * self.weight.shape[1] * self.weight.shape[2] * self.weight.shape[3]


def symmetric_pad2(x: torch.Tensor) -> torch.Tensor:
    """Pad H and W by 2 on each side with MATLAB's symmetric mirror (edge sample repeated: ``x1 x0 | x0 x1 ...``).
    Plain slices and concats, so it exports to ONNX with dynamic sizes. Needs H, W >= 2."""
    x = torch.cat([x[:, :, 1:2], x[:, :, 0:1], x, x[:, :, -1:], x[:, :, -2:-1]], dim=2)
    return torch.cat([x[:, :, :, 1:2], x[:, :, :, 0:1], x, x[:, :, :, -1:], x[:, :, :, -2:-1]], dim=3)


@register_zoo(
    "bicubic",
    note="MATLAB imresize bicubic (a=-0.5) as a fixed 5x5 grouped conv + PixelShuffle; no parameters",
    knobs={},
    ladder=[{}],
)
class Bicubic(nn.Module):
    """MATLAB-style bicubic x s upsampling as a fixed network: symmetric padding by 2, a grouped 5x5 conv
    3 -> 3 s^2 whose weights (a buffer) are the outer products of the per-phase Keys taps, PixelShuffle(s).
    It exports as Slice/Concat + Conv + DepthToSpace everywhere.

    At the border MATLAB mirrors out-of-range taps symmetrically with the edge sample repeated, and so does
    :func:`symmetric_pad2`, so the output equals ``trisr.data.resize.bicubic_upscale`` on the whole image
    (float32 rounding aside, ~1e-6 on [0, 1]) for images at least 2 pixels high and wide; a 1-pixel-high or
    -wide input fails (the mirror needs two samples)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        taps = bicubic_phase_weights(scale)  # (s, 5)
        kernels = np.einsum("pi,qj->pqij", taps, taps).reshape(scale * scale, 1, 5, 5)  # phase (py, px) -> 5x5
        weight = torch.from_numpy(np.concatenate([kernels] * 3, axis=0)).float()  # channel-major, as PixelShuffle
        self.conv = FixedDepthToSpaceConv(weight)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(symmetric_pad2(x)))


# -- ESPCN --------------------------------------------------------------------------------------------------


@register_zoo(
    "espcn",
    note="Shi et al. 2016: conv5x5-tanh-conv3x3-tanh-conv3x3-PixelShuffle on RGB; published width 64",
    knobs={"width": Knob("int", 64, minimum=2, multiple_of=2, help="first layer width; the second has width/2"), "skip": SKIP_KNOB},
    ladder=[{"width": w} for w in (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 176)],
)
class ESPCN(nn.Module):
    """ESPCN: conv 5x5 3 -> w, tanh, conv 3x3 w -> w/2, tanh, conv 3x3 w/2 -> 3 s^2, PixelShuffle."""

    def __init__(self, scale: int, width: int = 64, skip: str = "nearest") -> None:
        super().__init__()
        self.scale = scale
        self.conv1 = _conv(3, width, 5)
        self.conv2 = _conv(width, width // 2, 3)
        self.tail = _tail(width // 2, scale, skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(torch.tanh(self.conv2(torch.tanh(self.conv1(x)))), x)


# -- FSRCNN -------------------------------------------------------------------------------------------------


@register_zoo(
    "fsrcnn",
    note="Dong et al. 2016 FSRCNN(d,s,m): 5x5 feature, 1x1 shrink, m x 3x3 map, 1x1 expand, PReLU, 9x9 deconv; "
    "RGB in and out (the paper: Y only); published d56 s12 m4",
    knobs={
        "d": Knob("int", 56, minimum=1, help="feature width"),
        "s": Knob("int", 12, minimum=1, help="shrunk width"),
        "m": Knob("int", 4, minimum=0, help="mapping layers"),
        "skip": SKIP_KNOB,
    },
    ladder=[
        {"d": 6, "s": 4, "m": 1},
        {"d": 8, "s": 8, "m": 1},
        {"d": 16, "s": 8, "m": 2},
        {"d": 24, "s": 8, "m": 2},
        {"d": 32, "s": 8, "m": 3},
        {"d": 40, "s": 8, "m": 4},
        {"d": 48, "s": 16, "m": 4},
        {"d": 64, "s": 16, "m": 4},
        {"d": 80, "s": 16, "m": 4},
        {"d": 96, "s": 24, "m": 4},
        {"d": 128, "s": 32, "m": 4},
        {"d": 128, "s": 40, "m": 6},
        {"d": 128, "s": 48, "m": 8},
    ],
)
class FSRCNN(nn.Module):
    """FSRCNN: every conv is followed by a per-channel PReLU; the deconvolution (9x9, stride s, padding 4,
    output padding s-1) maps d features straight to the 3 RGB channels at HR (the paper's is Y only)."""

    def __init__(self, scale: int, d: int = 56, s: int = 12, m: int = 4, skip: str = "nearest") -> None:
        super().__init__()
        self.scale, self.skip = scale, skip
        layers: list[nn.Module] = [_conv(3, d, 5), nn.PReLU(d), _conv(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [_conv(s, s, 3), nn.PReLU(s)]
        layers += [_conv(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(d, 3, 9, stride=scale, padding=4, output_padding=scale - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return add_global_skip(self.deconv(self.body(x)), x, self.scale, self.skip)


# -- SPAN ---------------------------------------------------------------------------------------------------


class SPAB(nn.Module):
    """Swift parameter-free attention block: three 3x3 convs (SiLU after the first two), then
    ``(out3 + x) * (sigmoid(out3) - 0.5)``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = _conv(c, c, 3), _conv(c, c, 3), _conv(c, c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out3 = self.c3(F.silu(self.c2(F.silu(self.c1(x)))))
        return (out3 + x) * (torch.sigmoid(out3) - 0.5)


@register_zoo(
    "span",
    note="SPAN (NTIRE 2024 efficient SR winner): SPAB blocks with parameter-free attention, concat + 1x1 fusion; "
    "plain 3x3 convs (its Conv3XC branches re-parameterised, as at inference); published width 48, 6 blocks",
    knobs={"width": Knob("int", 48, minimum=1), "blocks": Knob("int", 6, minimum=1), "skip": SKIP_KNOB},
    ladder=[
        {"width": 6, "blocks": 1},
        {"width": 8, "blocks": 1},
        {"width": 8, "blocks": 2},
        {"width": 8, "blocks": 3},
        {"width": 8, "blocks": 4},
        {"width": 8, "blocks": 6},
        {"width": 16, "blocks": 1},
        {"width": 16, "blocks": 2},
        {"width": 16, "blocks": 3},
        {"width": 16, "blocks": 4},
        {"width": 24, "blocks": 2},
        {"width": 16, "blocks": 6},
        {"width": 24, "blocks": 3},
        {"width": 24, "blocks": 4},
        {"width": 32, "blocks": 3},
        {"width": 24, "blocks": 6},
        {"width": 32, "blocks": 4},
        {"width": 32, "blocks": 6},
        {"width": 36, "blocks": 6},
    ],
)
class SPAN(nn.Module):
    """SPAN: head conv 3x3, ``blocks`` SPABs, conv 3x3 on the last block's output, concat(head features,
    last block, first block, that conv) -> 1x1 fusion, conv 3x3 + PixelShuffle upsampler.

    Deviation: SPAN trains each 3x3 conv as a re-parameterisable Conv3XC (1x1-3x3-1x1 plus a skip, merged
    into one 3x3 at inference); here they are plain 3x3 convs throughout, i.e. the inference network is
    trained directly. The input mean subtraction of the reference is left out (the global skip takes its role)."""

    def __init__(self, scale: int, width: int = 48, blocks: int = 6, skip: str = "nearest") -> None:
        super().__init__()
        self.scale = scale
        self.head = _conv(3, width, 3)
        self.blocks = nn.ModuleList(SPAB(width) for _ in range(blocks))
        self.conv_last = _conv(width, width, 3)
        self.fuse = _conv(4 * width, width, 1)
        self.tail = _tail(width, scale, skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.head(x)
        h = first = self.blocks[0](fea)
        for block in self.blocks[1:]:
            h = block(h)
        y = self.fuse(torch.cat([fea, h, first, self.conv_last(h)], dim=1))
        return self.tail(y, x)


# -- IMDN ---------------------------------------------------------------------------------------------------


class CCA(nn.Module):
    """Contrast-aware channel attention: (spatial std + spatial mean) -> 1x1 -> ReLU -> 1x1 -> sigmoid, times x.
    The std is ``sqrt(var + 1e-8)``: the epsilon keeps the gradient finite on constant channels."""

    def __init__(self, c: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(2, c // reduction)
        self.down, self.up = nn.Conv2d(c, hidden, 1), nn.Conv2d(hidden, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True).add(1e-8).sqrt()
        return x * torch.sigmoid(self.up(F.relu(self.down(std + mean))))


class IMDB(nn.Module):
    """Information multi-distillation block: four 3x3 convs with LeakyReLU(0.05); after each of the first three,
    a quarter of the channels is distilled and the rest refined; concat of the four distilled parts, CCA,
    1x1 fusion, plus the input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.d, self.r = c // 4, c - c // 4
        self.c1, self.c2, self.c3 = _conv(c, c, 3), _conv(self.r, c, 3), _conv(self.r, c, 3)
        self.c4 = _conv(self.r, self.d, 3)
        self.cca = CCA(c)
        self.fuse = _conv(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        h = x
        for conv in (self.c1, self.c2, self.c3):
            h = F.leaky_relu(conv(h), 0.05)
            distilled.append(h[:, : self.d])
            h = h[:, self.d :]
        distilled.append(F.leaky_relu(self.c4(h), 0.05))
        return self.fuse(self.cca(torch.cat(distilled, dim=1))) + x


@register_zoo(
    "imdn",
    note="IMDN (AIM 2019 constrained SR winner): IMDBs (progressive 1/4 distillation, contrast-aware channel "
    "attention), concat + 1x1 fusion, long skip; published width 64, 6 blocks",
    knobs={"width": Knob("int", 64, minimum=4, multiple_of=4), "blocks": Knob("int", 6, minimum=1), "skip": SKIP_KNOB},
    ladder=[
        {"width": 8, "blocks": 1},
        {"width": 8, "blocks": 2},
        {"width": 8, "blocks": 3},
        {"width": 8, "blocks": 4},
        {"width": 16, "blocks": 1},
        {"width": 8, "blocks": 6},
        {"width": 16, "blocks": 2},
        {"width": 16, "blocks": 3},
        {"width": 16, "blocks": 4},
        {"width": 24, "blocks": 2},
        {"width": 16, "blocks": 6},
        {"width": 24, "blocks": 3},
        {"width": 24, "blocks": 4},
        {"width": 32, "blocks": 3},
        {"width": 24, "blocks": 6},
        {"width": 32, "blocks": 4},
        {"width": 32, "blocks": 6},
        {"width": 36, "blocks": 6},
    ],
)
class IMDN(nn.Module):
    """IMDN: head conv 3x3, ``blocks`` IMDBs, concat of every block's output -> 1x1 + LeakyReLU(0.05) -> 3x3,
    plus the head features, conv 3x3 + PixelShuffle upsampler."""

    def __init__(self, scale: int, width: int = 64, blocks: int = 6, skip: str = "nearest") -> None:
        super().__init__()
        self.scale = scale
        self.head = _conv(3, width, 3)
        self.blocks = nn.ModuleList(IMDB(width) for _ in range(blocks))
        self.fuse = _conv(blocks * width, width, 1)
        self.conv_last = _conv(width, width, 3)
        self.tail = _tail(width, scale, skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.head(x)
        outs, h = [], fea
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        y = self.conv_last(F.leaky_relu(self.fuse(torch.cat(outs, dim=1)), 0.05)) + fea
        return self.tail(y, x)


# -- ESRT-lite ----------------------------------------------------------------------------------------------


def pad_to_multiple(x: torch.Tensor, multiple: int, dim: int) -> torch.Tensor:
    """Replicate-pad dim 2 (H) or 3 (W) at the end up to a multiple of ``multiple`` (traced: dynamic in ONNX)."""
    n = x.shape[dim]
    extra = (multiple - n % multiple) % multiple
    return F.pad(x, (0, 0, 0, extra) if dim == 2 else (0, extra, 0, 0), mode="replicate")


def _up2_crop(x: torch.Tensor, h, w) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")[:, :, :h, :w]


class HPB(nn.Module):
    """High-preserving block (lite): a residual unit (3x3, LeakyReLU, 3x3, + x); the HFM splits its output into
    the low band ``avgpool2`` and the high band ``x1 - nearest2(avgpool2(x1))``; a 3x3 conv refines each (the low
    one at half resolution); 1x1 fusion of (upsampled low, high), plus the input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.r1, self.r2 = _conv(c, c, 3), _conv(c, c, 3)
        self.low, self.high = _conv(c, c, 3), _conv(c, c, 3)
        self.fuse = _conv(2 * c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        x1 = x + self.r2(F.leaky_relu(self.r1(x), 0.05))
        low = F.avg_pool2d(pad_to_multiple(pad_to_multiple(x1, 2, 2), 2, 3), 2)
        high = x1 - _up2_crop(low, h, w)
        low = _up2_crop(F.leaky_relu(self.low(low), 0.05), h, w)
        return x + self.fuse(torch.cat([low, F.leaky_relu(self.high(high), 0.05)], dim=1))


class ChannelNorm(nn.Module):
    """LayerNorm over channels at every pixel (NCHW), written in plain reductions so every runtime runs it."""

    def __init__(self, c: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(1, c, 1, 1)), nn.Parameter(torch.zeros(1, c, 1, 1)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=1, keepdim=True)
        var = ((x - mu) ** 2).mean(dim=1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight + self.bias


class StripeAttention(nn.Module):
    """ESRT's efficient multi-head attention with feature split, on pixels: 1x1 reduce c -> dim, 1x1 Q/K/V,
    the token sequence cut into stripes of ``rows`` image rows (columns when ``transpose``), attention within each
    stripe, 1x1 expand dim -> c. H is padded up to a multiple of ``rows`` inside (padded keys masked out of the
    softmax) and the output cropped back, so any input size works."""

    def __init__(self, c: int, dim: int, heads: int, rows: int, transpose: bool) -> None:
        super().__init__()
        self.dim, self.heads, self.rows, self.transpose = dim, heads, rows, transpose
        self.reduce = _conv(c, dim, 1)
        self.qkv = _conv(dim, 3 * dim, 1, bias=False)
        self.expand = _conv(dim, c, 1)
        self.qk, self.av = MatMul(), MatMul()
        self.scale = (dim // heads) ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transpose:
            x = x.transpose(2, 3)
        b, h, w = x.shape[0], x.shape[2], x.shape[3]
        r, heads, dh = self.rows, self.heads, self.dim // self.heads
        qkv = pad_to_multiple(self.qkv(self.reduce(x)), r, 2)  # B, 3 dim, Hp, W
        hp = qkv.shape[2]
        n = hp // r
        # B, 3, heads, dh, n, r*W -> 3 x (B, heads, n, r*W, dh)
        t = qkv.reshape(b, 3, heads, dh, n, r * w).permute(1, 0, 2, 4, 5, 3)
        q, k, v = t[0] * self.scale, t[1], t[2]
        logits = self.qk(q, k.transpose(-1, -2))  # B, heads, n, rW, rW
        if r > 1:  # padded rows exist only then
            valid = (torch.arange(hp, device=x.device) < h).to(x.dtype)  # Hp
            mask = ((valid - 1.0) * 1e4).reshape(n, r, 1).expand(n, r, w).reshape(n, 1, r * w)
            logits = logits + mask
        o = self.av(torch.softmax(logits, dim=-1), v)  # B, heads, n, rW, dh
        o = o.permute(0, 1, 4, 2, 3).reshape(b, self.dim, hp, w)[:, :, :h]
        o = self.expand(o)
        return o.transpose(2, 3) if self.transpose else o


class ETB(nn.Module):
    """Efficient transformer block: x + attention(norm(x)), then x + MLP(norm(x)) (1x1 c -> 2c, GELU, 1x1 2c -> c)."""

    def __init__(self, c: int, heads: int, rows: int, transpose: bool) -> None:
        super().__init__()
        self.norm1, self.norm2 = ChannelNorm(c), ChannelNorm(c)
        self.attn = StripeAttention(c, max(heads, c // 2), heads, rows, transpose)
        self.mlp = nn.Sequential(_conv(c, 2 * c, 1), nn.GELU(), _conv(2 * c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@register_zoo(
    "esrt_lite",
    note="ESRT (Lu et al. 2022), lite: CNN backbone of HPBs (high-frequency filtering, x - up(avgpool x)) + "
    "efficient transformer (1x1 Q/K/V on width/2 channels, attention within stripes of `rows` rows, alternating "
    "rows/columns; tokens are pixels, not ESRT's unfolded 3x3 patches)",
    knobs={
        "width": Knob("int", 32, minimum=2, multiple_of=2),
        "blocks": Knob("int", 3, minimum=1, help="HPBs"),
        "tblocks": Knob("int", 2, minimum=1, help="transformer blocks (odd ones attend along columns)"),
        "heads": Knob("int", 2, minimum=1, help="attention heads; must divide width/2"),
        "rows": Knob("int", 2, minimum=1, help="image rows per attention stripe"),
        "skip": SKIP_KNOB,
    },
    ladder=[
        {"width": 8, "blocks": 1, "tblocks": 1, "heads": 1, "rows": 1},
        {"width": 8, "blocks": 2, "tblocks": 1, "heads": 1, "rows": 1},
        {"width": 16, "blocks": 1, "tblocks": 1, "heads": 1, "rows": 1},
        {"width": 16, "blocks": 2, "tblocks": 1, "heads": 1, "rows": 1},
        {"width": 16, "blocks": 2, "tblocks": 2, "heads": 2, "rows": 1},
        {"width": 24, "blocks": 2, "tblocks": 2, "heads": 2, "rows": 1},
        {"width": 24, "blocks": 3, "tblocks": 2, "heads": 2, "rows": 1},
        {"width": 32, "blocks": 3, "tblocks": 2, "heads": 2, "rows": 1},
        {"width": 32, "blocks": 3, "tblocks": 2, "heads": 2, "rows": 2},
        {"width": 32, "blocks": 4, "tblocks": 2, "heads": 2, "rows": 2},
        {"width": 36, "blocks": 4, "tblocks": 2, "heads": 2, "rows": 2},
    ],
)
class ESRTLite(nn.Module):
    """ESRT-lite: head conv 3x3, ``blocks`` HPBs, ``tblocks`` ETBs, conv 3x3 plus the head features, conv 3x3 +
    PixelShuffle upsampler.

    Deviations from ESRT: tokens are single pixels (ESRT unfolds 3x3 patches into tokens), which keeps the
    attention small; its feature split (attention within segments of the token sequence) is realised as stripes
    of whole image rows, alternating with column stripes so that two blocks see both directions; the HPB is
    reduced to one residual unit plus one conv per frequency band."""

    def __init__(self, scale: int, width: int = 32, blocks: int = 3, tblocks: int = 2, heads: int = 2, rows: int = 2, skip: str = "nearest") -> None:
        super().__init__()
        from trisr.errors import TrisrError

        if (width // 2) % heads:
            raise TrisrError(f"esrt_lite: heads={heads} must divide width/2={width // 2}")
        self.scale = scale
        self.head = _conv(3, width, 3)
        self.body = nn.Sequential(
            *(HPB(width) for _ in range(blocks)),
            *(ETB(width, heads, rows, transpose=bool(i % 2)) for i in range(tblocks)),
        )
        self.conv_last = _conv(width, width, 3)
        self.tail = _tail(width, scale, skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.head(x)
        return self.tail(self.conv_last(self.body(fea)) + fea, x)
