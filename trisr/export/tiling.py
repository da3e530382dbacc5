"""Run a fixed-size network input over an image of any size: overlapping tiles, stitched at the middle of
each overlap so that every kept output pixel had at least ``halo`` LR pixels of real context on each side
inside its tile (except at the image border). Images smaller than a tile are edge-padded. Artifacts run
through it, and so do run folders' torch networks on large images (:mod:`trisr.tiled`)."""

from __future__ import annotations

from typing import Callable

import numpy as np

HW = tuple[int, int]
RunFn = Callable[[np.ndarray], np.ndarray]  # 1x3xhxw float32 -> 1x3x(sh)x(sw) float32


def default_halo(tile: HW) -> int:
    return max(0, min(16, min(tile) // 8))


def tile_origins(length: int, tile: int, halo: int) -> list[int]:
    """Tile starts along one axis of ``length`` (>= tile): consecutive tiles overlap by >= 2*halo."""
    if length <= tile:
        return [0]
    step = max(1, tile - 2 * halo)
    n = 1 + -(-(length - tile) // step)  # fewest tiles whose overlaps are all >= 2*halo
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _cuts(origins: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Kept interval of each tile: boundaries at the middle of each overlap."""
    bounds = [0] + [(origins[i + 1] + origins[i] + tile) // 2 for i in range(len(origins) - 1)] + [length]
    return [(bounds[i], bounds[i + 1]) for i in range(len(origins))]


def upscale_tiled(run: RunFn, lr: np.ndarray, tile: HW, scale: int, halo: int | None = None) -> np.ndarray:
    """Super-resolve ``lr`` (1x3xHxW float32 in [0, 1]) with ``run`` fed only ``1x3x tile`` inputs.

    Returns the 1x3x(sH)x(sW) float32 output (unclamped)."""
    _, c, h, w = lr.shape
    th, tw = tile
    halo = default_halo(tile) if halo is None else halo
    ph, pw = max(h, th), max(w, tw)
    x = np.pad(lr, ((0, 0), (0, 0), (0, ph - h), (0, pw - w)), mode="edge") if (ph, pw) != (h, w) else lr
    ys, xs = tile_origins(ph, th, halo), tile_origins(pw, tw, halo)
    out = np.empty((1, c, ph * scale, pw * scale), dtype=np.float32)
    for oy, (y0, y1) in zip(ys, _cuts(ys, th, ph)):
        for ox, (x0, x1) in zip(xs, _cuts(xs, tw, pw)):
            y = run(np.ascontiguousarray(x[:, :, oy : oy + th, ox : ox + tw], dtype=np.float32))
            out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = y[
                :, :, (y0 - oy) * scale : (y1 - oy) * scale, (x0 - ox) * scale : (x1 - ox) * scale
            ]
    return out[:, :, : h * scale, : w * scale]


def count_tiles(hw: HW, tile: HW, halo: int | None = None) -> int:
    halo = default_halo(tile) if halo is None else halo
    return len(tile_origins(max(hw[0], tile[0]), tile[0], halo)) * len(tile_origins(max(hw[1], tile[1]), tile[1], halo))


def to_nchw(img: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> float32 1x3xHxW in [0, 1]."""
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


def to_uint8_image(y: np.ndarray) -> np.ndarray:
    """float 1x3xHxW -> uint8 HxWx3 with the evaluation's rounding (half up, clipped)."""
    arr = np.floor(np.clip(y[0].astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(arr.transpose(1, 2, 0))
