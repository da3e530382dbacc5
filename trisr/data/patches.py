"""Random aligned LR/HR training patches with augmentation (:class:`PatchSampler`, method.md §8.2)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trisr.data.layouts import _check_scale
from trisr.data.pairs import ImagePair, rescaled_pairs, split_pairs
from trisr.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PatchSampler", "AUGMENTS", "RESCALE_FACTORS", "SAMPLINGS"]


def _jsonable_state(state: Any) -> Any:
    """Bit-generator state with integers too large for JSON doubles turned into strings."""
    if isinstance(state, dict):
        return {k: _jsonable_state(v) for k, v in state.items()}
    if isinstance(state, (int, np.integer)) and not isinstance(state, bool):
        v = int(state)
        return str(v) if abs(v) >= 2**53 else v
    return state


def _restore_state(state: Any) -> Any:
    if isinstance(state, dict):
        return {k: _restore_state(v) for k, v in state.items()}
    if isinstance(state, str) and re.fullmatch(r"-?\d+", state):
        return int(state)
    return state


#: Patch augmentations (applied identically to LR and HR; bicubic downscaling commutes with all of them):
#: ``hflip`` a horizontal flip with probability 1/2 (the reference code, method.md §8.2); ``dihedral`` one of
#: the 8 rotations/flips of the square, uniformly; ``rgb_perm`` one of the 6 permutations of the colour
#: channels, uniformly (colour balance: most embedded training photos are grey); ``rescale`` adds, once per
#: sampler, copies of every training photo downscaled by :data:`RESCALE_FACTORS` to the images drawn from
#: (:func:`trisr.data.pairs.rescaled_pairs`; FSRCNN's augmentation for small training sets).
AUGMENTS = ("hflip", "dihedral", "rgb_perm", "rescale")
#: HR downscaling factors of the ``rescale`` augmentation (FSRCNN, Dong et al. 2016, §4.1).
RESCALE_FACTORS = (0.9, 0.8, 0.7, 0.6)
#: ``rescale`` is a remedy for small training sets (FSRCNN's 91 images; the ten embedded photos need 48 MB of
#: copies). Its copies are held in memory, about 2.3x the photos, so a set whose copies would exceed this
#: (DIV2K's 800 photos: ~16 GiB) trains without them, with a warning; large sets are not short of scales.
RESCALE_MAX_BYTES = 1 << 30
#: How an image is picked per patch: ``uniform`` (each image equally often, the reference code) or ``area``
#: (in proportion to its number of patch positions, i.e. every patch of the data set equally often).
SAMPLINGS = ("uniform", "area")


class PatchSampler:
    """Random aligned LR/HR patches with augmentation (method.md §8.2; ``augment``, ``sampling``).

    Each draw picks an image (uniformly, or in proportion to its area), a random ``lr_patch x lr_patch`` LR
    window, the aligned ``(lr_patch*s)^2`` HR window, and applies the augmentations to both (default: the
    reference code's horizontal flip with probability 1/2). Randomness comes only
    from the sampler's own ``numpy.random.Generator`` (PCG64 seeded with
    ``SeedSequence(seed, spawn_key=stream)``), so a sampler is deterministic given its seed, and
    :meth:`state_dict` / :meth:`load_state_dict` resume it exactly.

    Derived samplers:

    * :meth:`split` gives disjoint image subsets (``pairs[k::n]``) with their own streams
      (``stream + (1, k)``): the search's architecture and weight halves.
    * :meth:`shard` is for data-parallel training: **every rank keeps all images** and draws from its own
      independent stream (``stream + (2, rank)``), so the ranks' crops differ and each rank's batch is a
      different random sample; the global batch is ``batch * world_size``. (Image-disjoint shards would
      leave too few images per rank on small sets.) ``shard(0, 1)`` is a fresh copy with the same stream.
    """

    def __init__(
        self,
        pairs: Sequence[ImagePair],
        lr_patch: int = 32,
        scale: int = 4,
        seed: int = 0,
        *,
        stream: Sequence[int] = (),
        augment: Sequence[str] = ("hflip",),
        sampling: str = "uniform",
    ) -> None:
        self.scale = _check_scale(scale)
        self.augment = tuple(augment)
        bad = [a for a in self.augment if a not in AUGMENTS]
        if bad:
            raise ValueError(f"unknown augmentation(s) {bad}; choose from {AUGMENTS}")
        if "hflip" in self.augment and "dihedral" in self.augment:
            raise ValueError("'dihedral' already includes the horizontal flip; give one of them")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.sampling = sampling
        if isinstance(lr_patch, bool) or not isinstance(lr_patch, (int, np.integer)) or lr_patch < 1:
            raise ValueError(f"lr_patch must be a positive integer, got {lr_patch!r}")
        self.lr_patch = int(lr_patch)
        # The photos as given; derived samplers (split, shard) start from these, not from the rescaled set.
        self._source = list(pairs)
        if not self._source:
            raise DataError("cannot sample patches from an empty image list")
        s, p = self.scale, self.lr_patch
        for pair in self._source:
            lr, hr = np.asarray(pair.lr), np.asarray(pair.hr)
            if lr.dtype != np.uint8 or hr.dtype != np.uint8 or lr.ndim != 3 or hr.ndim != 3:
                raise DataError(f"image {pair.name}: expected uint8 HxWx3 LR and HR arrays")
            h, w = lr.shape[:2]
            if hr.shape[:2] != (h * s, w * s) or hr.shape[2] != lr.shape[2]:
                raise DataError(
                    f"image {pair.name}: HR is {hr.shape[0]}x{hr.shape[1]} but LR {h}x{w} times x{s} "
                    f"is {h * s}x{w * s}"
                )
            if h < p or w < p:
                raise DataError(f"image {pair.name} is {h}x{w} at LR, smaller than the {p}x{p} patch")
        self.pairs = self._source
        if "rescale" in self.augment:
            photos = sum(q.hr.nbytes + q.lr.nbytes for q in self._source)
            copies = photos * sum(f * f for f in RESCALE_FACTORS)
            if copies <= RESCALE_MAX_BYTES:  # copies too small for a patch are left out
                self.pairs = rescaled_pairs(self._source, RESCALE_FACTORS, s, min_lr=p)
            else:
                warnings.warn(
                    f"rescale augmentation off: copies of these {len(self._source)} training photos would take "
                    f"{copies / 2**30:.1f} GiB (limit {RESCALE_MAX_BYTES / 2**30:.0f} GiB); it is meant for small sets",
                    UserWarning, stacklevel=2,
                )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.stream = tuple(int(v) for v in stream)
        self._rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=self.stream))
        )
        positions = np.array([(q.lr.shape[0] - p + 1) * (q.lr.shape[1] - p + 1) for q in self.pairs], np.float64)
        self._weights = positions / positions.sum() if sampling == "area" else None

    def _settings(self) -> dict:
        return {"augment": self.augment, "sampling": self.sampling}

    def __len__(self) -> int:
        return len(self.pairs)

    def sample_numpy(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``batch`` aligned patches as uint8 arrays ``B x P x P x 3`` and ``B x Ps x Ps x 3``."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        p, s = self.lr_patch, self.scale
        c = self.pairs[0].lr.shape[2]
        lr_out = np.empty((batch, p, p, c), dtype=np.uint8)
        hr_out = np.empty((batch, p * s, p * s, c), dtype=np.uint8)
        for b in range(batch):
            if self._weights is None:
                pair = self.pairs[int(self._rng.integers(len(self.pairs)))]
            else:
                pair = self.pairs[int(self._rng.choice(len(self.pairs), p=self._weights))]
            h, w = pair.lr.shape[:2]
            y = int(self._rng.integers(h - p + 1))
            x = int(self._rng.integers(w - p + 1))
            lr = pair.lr[y : y + p, x : x + p]
            hr = pair.hr[y * s : (y + p) * s, x * s : (x + p) * s]
            for aug in self.augment:
                lr, hr = self._apply(aug, lr, hr)
            lr_out[b] = lr
            hr_out[b] = hr
        return lr_out, hr_out

    def _apply(self, aug: str, lr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if aug == "rescale":  # applied to the image set at construction
            return lr, hr
        if aug == "hflip":
            return (lr[:, ::-1], hr[:, ::-1]) if self._rng.random() < 0.5 else (lr, hr)
        if aug == "dihedral":
            k, flip = int(self._rng.integers(4)), bool(self._rng.random() < 0.5)
            lr, hr = np.rot90(lr, k, axes=(0, 1)), np.rot90(hr, k, axes=(0, 1))
            return (lr[:, ::-1], hr[:, ::-1]) if flip else (lr, hr)
        perm = self._rng.permutation(3)  # rgb_perm
        return lr[..., perm], hr[..., perm]

    def sample(self, batch: int) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Draw a batch: float32 tensors ``B x 3 x P x P`` (LR) and ``B x 3 x Ps x Ps`` (HR) in [0, 1]."""
        import torch

        lr, hr = self.sample_numpy(batch)

        def conv(a: np.ndarray) -> torch.Tensor:
            t = np.ascontiguousarray(a.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
            return torch.from_numpy(t)

        return conv(lr), conv(hr)

    def state_dict(self) -> dict:
        """JSON-serialisable state (settings plus the bit-generator state)."""
        return {
            "version": 1,
            "seed": self.seed,
            "stream": list(self.stream),
            "n_images": len(self.pairs),
            "names": [p.name for p in self.pairs],
            "lr_patch": self.lr_patch,
            "scale": self.scale,
            "augment": list(self.augment),
            "sampling": self.sampling,
            "bit_generator": _jsonable_state(self._rng.bit_generator.state),
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict`. The sampler must be built over the same images and settings."""
        try:
            mine = self.state_dict()
            for key in ("seed", "stream", "n_images", "names", "lr_patch", "scale", "augment", "sampling"):
                theirs = state.get(key, mine[key])
                if isinstance(theirs, (list, tuple)):
                    theirs = list(theirs)
                if theirs != mine[key]:
                    raise DataError(
                        f"sampler state does not match this sampler: {key} is {state[key]!r} in the state "
                        f"but {mine[key]!r} here"
                    )
            bg_state = _restore_state(state["bit_generator"])
            if bg_state.get("bit_generator") != type(self._rng.bit_generator).__name__:
                raise DataError(f"sampler state is for bit generator {bg_state.get('bit_generator')!r}")
            self._rng.bit_generator.state = bg_state
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"invalid sampler state: {exc}") from None

    def split(self, n_parts: int = 2) -> list["PatchSampler"]:
        """Samplers over disjoint image subsets ``pairs[k::n_parts]``, each with its own stream."""
        return [
            PatchSampler(part, self.lr_patch, self.scale, self.seed, stream=(*self.stream, 1, k), **self._settings())
            for k, part in enumerate(split_pairs(self._source, n_parts))
        ]

    def shard(self, rank: int, world_size: int) -> "PatchSampler":
        """The sampler for data-parallel ``rank`` of ``world_size`` (same images, own random stream)."""
        if not (isinstance(world_size, (int, np.integer)) and world_size >= 1):
            raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
        if not (isinstance(rank, (int, np.integer)) and 0 <= rank < world_size):
            raise ValueError(f"rank must be in [0, {world_size}), got {rank!r}")
        if world_size == 1:
            return PatchSampler(self._source, self.lr_patch, self.scale, self.seed, stream=self.stream, **self._settings())
        return PatchSampler(
            self._source, self.lr_patch, self.scale, self.seed, stream=(*self.stream, 2, int(rank)), **self._settings()
        )
