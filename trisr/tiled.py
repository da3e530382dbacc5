"""Super-resolve an image of any size with a torch network in tiles of bounded LR size, so that peak memory
is set by the tile, not by the image (a run folder's network holds several full-resolution feature maps at
once; an image of 4000x3000 needs gigabytes in one pass).

Tiles overlap by the network's receptive-field radius (:mod:`trisr.receptive`) and are stitched by
:func:`trisr.export.tiling.upscale_tiled`, the stitcher exported artifacts use. For a network whose output
pixel depends only on LR pixels within that radius the stitched image is the one-pass image (to float
rounding); for one with non-local parts (attention over whole rows, whole-image statistics) no finite halo
gives that, and the tiles run with the artifacts' default halo: an approximation, which :class:`TilePlan`
says. Images no larger than the tile run in one pass (:func:`trisr.evaluate.super_resolve`), unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trisr.errors import TrisrError
from trisr.evaluate import super_resolve, super_resolve_float
from trisr.export.tiling import HW, count_tiles, default_halo, tile_origins, to_nchw, to_uint8_image, upscale_tiled
from trisr.receptive import conv_reach_bound, tiles_exactly

Device = torch.device | str

#: LR tile size when none is asked for: a few tens of MB of features for the networks of the search
#: spaces and the zoo, and large enough that the overlap stays cheap (tiles cost (tile / (tile - 2 halo))^2
#: times one pass: +12 % at a halo of 7 LR px, +40 % at 20).
DEFAULT_TILE_PX: HW = (256, 256)
#: A tile must be at least this many halos wide, so that at least half of it is kept.
MIN_TILE_HALOS = 4
#: Output rows quantised at a time (bounds the float64 temporaries of the 8-bit rounding).
QUANTISE_ROWS = 256


@dataclass(frozen=True)
class TilePlan:
    """How a network runs over large images: LR ``tile`` (H, W), ``halo`` LR pixels of context kept on each
    inner side of a tile, and whether the stitched output equals the one-pass output (``exact``)."""

    tile: HW
    halo: int
    exact: bool
    radius_px: int | None  # the receptive-field bound (None: not a stack of stride-1 convolutions)

    def runs_whole(self, hw: HW) -> bool:
        return hw[0] <= self.tile[0] and hw[1] <= self.tile[1]

    def tile_for(self, hw: HW) -> HW:
        """The tile an image of LR size ``hw`` runs in: per axis, the fewest tiles of at most ``tile`` whose
        overlaps are >= 2 halos, each made as small as that count allows. Fixed-size tiles spread evenly
        over the image (what an artifact needs) would overlap far more than the halo asks: 5 tiles of 256
        over 1000 px run 1.64x the pixels of one pass, 5 of 212 run 1.12x. Never larger than the image, so
        there is no padding and the image border is seen exactly as in one pass."""
        return _balanced(hw[0], self.tile[0], self.halo), _balanced(hw[1], self.tile[1], self.halo)

    def count(self, hw: HW) -> int:
        return 1 if self.runs_whole(hw) else count_tiles(hw, self.tile_for(hw), self.halo)

    def describe(self) -> str:
        size = f"tiles of {self.tile[0]}x{self.tile[1]} LR px"
        if self.exact:
            return (f"{size} overlapping by the network's receptive-field radius ({self.halo} px): same output as one "
                    "pass (to float rounding)")
        return (f"{size}, halo {self.halo} px: the network is not purely convolutional (attention or whole-image "
                "statistics), so tiles approximate the one-pass output; a larger --tile gives fewer seams")


def _balanced(length: int, tile: int, halo: int) -> int:
    if length <= tile:
        return length
    n = len(tile_origins(length, tile, halo))
    return min(tile, -(-(length + 2 * halo * (n - 1)) // n))  # n tiles of this size still overlap by 2 halos


def plan_tiles(model: torch.nn.Module, tile: HW | None = None) -> TilePlan:
    """The tile plan of ``model``: halo = its receptive-field bound when :func:`~trisr.receptive.tiles_exactly`
    confirms it, else the default halo of the tile (approximate). ``tile`` None: :data:`DEFAULT_TILE_PX`, grown
    when the halo needs it. An explicit tile smaller than :data:`MIN_TILE_HALOS` halos is refused."""
    radius = conv_reach_bound(model)
    exact = radius is not None and tiles_exactly(model, radius, model.arch.scale)
    if tile is None:
        side = MIN_TILE_HALOS * radius if exact else 0
        tile = (max(DEFAULT_TILE_PX[0], side), max(DEFAULT_TILE_PX[1], side))
    halo = radius if exact else default_halo(tile)
    if min(tile) < MIN_TILE_HALOS * halo:
        need = MIN_TILE_HALOS * halo
        raise TrisrError(
            f"--tile {tile[0]}x{tile[1]} is too small for this network: tiles overlap by a halo of {halo} LR px on "
            f"each side (its receptive field), so use at least {need}x{need}"
        )
    return TilePlan(tuple(tile), halo, exact, radius)


def plan_for_images(model: torch.nn.Module, sizes: list[HW], tile: HW | None = None) -> TilePlan | None:
    """:func:`plan_tiles` when some LR size in ``sizes`` exceeds the tile (``None``: :data:`DEFAULT_TILE_PX`),
    else None: every image runs in one pass and the receptive-field probe is not needed."""
    limit = DEFAULT_TILE_PX if tile is None else tile
    if all(h <= limit[0] and w <= limit[1] for h, w in sizes):
        return None
    return plan_tiles(model, tile)


def quantise_rows(y: np.ndarray) -> np.ndarray:
    """float 1x3xHxW -> uint8 HxWx3 with :func:`~trisr.export.tiling.to_uint8_image`'s rounding, a strip of
    rows at a time (the whole image at once would hold several float64 copies of the output)."""
    h, w = y.shape[2], y.shape[3]
    out = np.empty((h, w, 3), dtype=np.uint8)
    for r in range(0, h, QUANTISE_ROWS):
        out[r : r + QUANTISE_ROWS] = to_uint8_image(y[:, :, r : r + QUANTISE_ROWS])
    return out


@torch.no_grad()
def upscale_array(model: torch.nn.Module, lr: np.ndarray, plan: TilePlan, device: Device = "cpu") -> np.ndarray:
    """1x3xHxW float32 in [0, 1] -> 1x3x(sH)x(sW) float32 (unclamped), in the tiles of ``plan``."""

    def run(x: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(x).to(device)).cpu().numpy()

    return upscale_tiled(run, lr, plan.tile_for((lr.shape[2], lr.shape[3])), model.arch.scale, plan.halo)


def super_resolve_tiled(
    model: torch.nn.Module, lr: np.ndarray, plan: TilePlan | None, device: Device = "cpu"
) -> np.ndarray:
    """uint8 HxWx3 LR image -> quantised uint8 SR image: in one pass when there is no plan or the image fits
    in a tile (exactly :func:`~trisr.evaluate.super_resolve`), else in the tiles of ``plan``."""
    if plan is None or plan.runs_whole(lr.shape[:2]):
        return super_resolve(model, lr, device)
    if lr.ndim == 2:  # grey: three equal channels, as super_resolve's to_tensor does
        lr = np.repeat(lr[:, :, None], 3, axis=2)
    return quantise_rows(upscale_array(model, to_nchw(lr), plan, device))


def sr_float_tiled(model: torch.nn.Module, x: np.ndarray, plan: TilePlan | None, device: Device = "cpu") -> np.ndarray:
    """Float 1x3xHxW LR (a corrected image, not 8-bit) -> quantised uint8 SR image, in one pass or in tiles."""
    if plan is None or plan.runs_whole((x.shape[2], x.shape[3])):
        return super_resolve_float(model, x, device)
    return quantise_rows(upscale_array(model, np.ascontiguousarray(x, dtype=np.float32), plan, device))
