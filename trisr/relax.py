"""Relaxations of categorical architecture choices (method.md §4.1-§4.5).

Every function works on the **last** dimension by default (any ``dim`` may be given) and accepts any
leading batch shape, so the op logits ``alpha`` (35, 5, 4), the width logits ``omega`` (35, 4, 5) and the
node logits ``gamma`` (55,) are all relaxed row-wise in one call.

* :func:`softmax` - dense; the ablation baseline.
* :func:`sparsemax` - Euclidean projection onto the simplex, closed form of §4.1: sort, find the largest
  ``k`` with ``1 + k z_(k) > sum_{j<=k} z_(j)``, threshold ``tau = (sum_S z - 1)/|S|``, output
  ``max(z - tau, 0)``. The support ``S`` is found without gradient; ``tau`` is then a differentiable
  function of the logits in ``S``, so autograd yields exactly the support Jacobian
  ``diag(1_S) - 1_S 1_S^T/|S|``.
* :func:`sparsestmax` - sparsemax pushed at least a radius ``r`` away from a centre (§4.2-§4.3), in the
  reading of the SSN reference code:

  1. ``p = sparsemax(z)``; if ``p`` is one-hot, stop.
  2. ``c`` = centroid of the support of ``p`` (on the first call: of the *sparsemax* support, not the
     global barycentre).
  3. effective radius: ``rho = r`` on the first call, else
     ``rho = sqrt(max(rho_prev^2 - ||c - c_prev||^2, 0))`` (the sphere around the earlier centre cut by the
     smaller face; ``c_prev`` projects orthogonally onto ``c``).
  4. if ``||p - c|| >= rho`` stop with ``p``.
  5. ``q = c + rho (p - c)/||p - c||``; if ``q >= 0`` stop with ``q`` clamped to [0, 1];
  6. otherwise recurse on ``q`` - the support strictly shrinks, so at most ``K - 1`` recursions.

  While the constraint is active and the result is not a vertex, the output lies at distance exactly
  ``r`` from the first-call centroid. Support masks, centroids and radii are constants for autograd; the
  gradient reaches only logits in the first-call support and is exactly zero once a row is one-hot, which
  is what freezes a choice by itself (§4.4).

  :func:`sparsestmax` is vectorised: all rows run the recursion together for at most ``K`` rounds, with a
  per-row mask of finished rows. :func:`_sparsestmax_1d` is the literal recursive 1-D algorithm, kept as
  the reference the batched version is tested against.
* :func:`gumbel_st` - straight-through hard Gumbel-softmax (the code-faithful width relaxation, §4.5).

[project] choices, all documented in method.md as trisr decisions:

* **Tie guard.** If ``||p - c||`` is below ``eps = 8 eps_mach`` (1.8e-15 in float64, 9.5e-7 in float32),
  ``p`` is returned instead of dividing by (almost) zero; with exactly equal logits the reference code
  yields NaN/Inf or a huge gradient. Two exact measures make an exact tie come out as ``p - c`` of 0 (or of
  order ``eps_mach^2``) rather than rounding noise of order ``eps_mach``: sparsemax first subtracts the row
  maximum (so tied top logits become exact zeros), and ``p - c`` is re-centred on the support (so the
  rounding error of ``sum(p)`` cannot survive along ``1_S``, where step 5 would amplify it and push ``q``
  off the simplex). The threshold can therefore stay at a few ulps and never swallows a real difference
  between logits (trisr initialises them with 1e-3 noise).
* **Clamp.** The effective radius clamps ``rho_prev^2 - ||c - c_prev||^2`` at 0 before the square root; in
  exact arithmetic it is never negative, so this only absorbs rounding.
* **One-hot tolerance.** The reference code tests one-hot with exact float equality. trisr calls a row
  one-hot when ``max - min >= 1 - tol`` with ``tol = max(1e-9, 16 eps_mach)`` (1e-9 in float64; float32
  cannot resolve 1e-9 next to 1) and then *snaps* it to the exact vertex through ``torch.where``, so the
  output is exactly 0/1 and its gradient path is exactly zero (at a vertex the sparsemax Jacobian is zero
  anyway). This matters at ``r = r_c(K)``, where the last push lands on the vertex only up to rounding.
"""

from __future__ import annotations

import math
from typing import Final

import torch
from torch import Tensor

__all__ = [
    "RELAXATIONS",
    "ONE_HOT_TOL",
    "softmax",
    "sparsemax",
    "sparsestmax",
    "gumbel_st",
    "relax",
    "is_one_hot",
    "top2_margin",
]

#: The relaxations :func:`relax` dispatches to.
RELAXATIONS: Final[tuple[str, ...]] = ("softmax", "sparsemax", "sparsestmax")

#: One-hot tolerance on ``max - min`` (method.md §4.3 step 1, §11 item 12). Raised to a few ulps for
#: float32 and lower precision inside :func:`sparsestmax` (see :func:`_one_hot_tol`).
ONE_HOT_TOL: Final[float] = 1e-9


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------


def _check_float(x: Tensor, name: str = "logits") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension")


def _check_radius(radius: float | Tensor) -> float:
    """Radius as a python float: it is a schedule value, never something to differentiate."""
    if isinstance(radius, Tensor):
        if radius.numel() != 1:
            raise ValueError(f"radius must be a scalar, got shape {tuple(radius.shape)}")
        radius = float(radius.detach().item())
    r = float(radius)
    if not math.isfinite(r) or r < 0.0:
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
    return r


def _one_hot_tol(dtype: torch.dtype) -> float:
    # 1e-9 is below float32 resolution next to 1 (ulp 6e-8), so a float32 row pushed onto a vertex up to
    # rounding would never count as one-hot; a few ulps is the honest tolerance there.
    return max(ONE_HOT_TOL, 16.0 * torch.finfo(dtype).eps)


def _tie_eps(dtype: torch.dtype) -> float:
    # A few ulps of the O(1) simplex coordinates: below this the push direction is rounding noise.
    return 8.0 * torch.finfo(dtype).eps


def _centred_offset(p: Tensor, c: Tensor, support: Tensor) -> Tensor:
    """``p - c`` with its mean over the support removed (last dim).

    In exact arithmetic ``p`` and ``c`` both sum to 1, so this is just ``p - c``. In floating point the
    rounding error of ``sum(p)`` would survive as a component along ``1_S``; step 5 divides by
    ``||p - c||``, which amplifies it without bound for near-tied rows and pushes ``q`` off the simplex
    plane. Centring keeps the push direction inside the face.
    """
    d = p - c
    mean = d.sum(dim=-1, keepdim=True) / support.sum(dim=-1, keepdim=True)
    return torch.where(support, d - mean, 0.0)


def _snap_one_hot(p: Tensor, tol: float) -> Tensor:
    """Replace rows (last dim) that are one-hot within ``tol`` by the exact vertex.

    ``torch.where`` passes no gradient to the replaced rows, so their gradient is exactly zero - the
    true Jacobian at a vertex - and not ``0 * something`` that could turn into NaN.
    """
    hot = is_one_hot(p, tol=tol)
    vertex = torch.zeros_like(p).scatter_(-1, p.detach().argmax(dim=-1, keepdim=True), 1.0)
    return torch.where(hot.unsqueeze(-1), vertex, p)


# --------------------------------------------------------------------------------------------------------
# softmax and sparsemax
# --------------------------------------------------------------------------------------------------------


def softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """Dense relaxation: ``torch.softmax`` along ``dim`` (kept as the ablation baseline, §4.1)."""
    _check_float(logits)
    return torch.softmax(logits, dim=dim)


def _sparsemax_support(z: Tensor) -> Tensor:
    """Boolean support of ``sparsemax(z)`` along the last dim, computed without gradient."""
    with torch.no_grad():
        k_max = z.shape[-1]
        zs, _ = torch.sort(z, dim=-1, descending=True)
        ks = torch.arange(1, k_max + 1, device=z.device)
        # The condition holds on a prefix of the sorted order; take the largest k where it holds.
        cond = 1.0 + ks.to(z.dtype) * zs > zs.cumsum(dim=-1)
        k_star = (cond * ks).amax(dim=-1, keepdim=True).clamp_min(1)  # clamp: |z| beyond 1/eps_mach
        z_k = zs.gather(-1, k_star - 1)
        # ">=": logits tied with z_(k*) are all in or all out of the support in exact arithmetic.
        return z >= z_k


def _sparsemax_last(z: Tensor) -> Tensor:
    # Shift invariance is exact; subtracting the (constant) row maximum first keeps the threshold from
    # cancelling large logits, so exactly tied rows give exactly the centroid even in float32.
    z = z - z.detach().amax(dim=-1, keepdim=True)
    support = _sparsemax_support(z)
    size = support.sum(dim=-1, keepdim=True)
    # tau is differentiable in the support logits only, which gives the Jacobian
    # diag(1_S) - 1_S 1_S^T/|S| without a custom autograd.Function.
    tau = (torch.where(support, z, 0.0).sum(dim=-1, keepdim=True) - 1.0) / size
    # clamp: an entry of S may come out a rounding error below 0.
    p = torch.where(support, (z - tau).clamp_min(0.0), 0.0)
    # A single-element support is an exact vertex with an exactly zero Jacobian.
    return torch.where(size == 1, support.to(z.dtype), p)


def sparsemax(logits: Tensor, dim: int = -1) -> Tensor:
    """Euclidean projection of ``logits`` onto the probability simplex along ``dim`` (§4.1).

    Differentiable; on the support ``S`` of the output the Jacobian is ``diag(1_S) - 1_S 1_S^T/|S|``
    and entries outside ``S`` get zero gradient.
    """
    _check_float(logits)
    return _sparsemax_last(logits.movedim(dim, -1)).movedim(-1, dim)


def _sparsemax_1d(z: Tensor) -> Tensor:
    """Literal closed form of §4.1 for a 1-D tensor (reference for tests; differentiable)."""
    z = z - z.detach().max()  # the same exact shift as the batched version, for the same rounding
    zs, _ = torch.sort(z, descending=True)
    values = zs.detach().tolist()
    k_star, running = 1, 0.0
    for k in range(1, len(values) + 1):
        running += values[k - 1]
        if 1.0 + k * values[k - 1] > running:
            k_star = k
    tau = (zs[:k_star].sum() - 1.0) / k_star
    return (z - tau).clamp_min(0.0)


# --------------------------------------------------------------------------------------------------------
# sparsestmax
# --------------------------------------------------------------------------------------------------------


def _sparsestmax_rows(z: Tensor, r: float) -> Tensor:
    """Batched sparsestmax of the rows of a 2-D tensor ``z`` (B, K)."""
    n_rows, k_max = z.shape
    one_tol = _one_hot_tol(z.dtype)
    out = torch.zeros_like(z)
    active = torch.ones(n_rows, dtype=torch.bool, device=z.device)
    rho = torch.full((n_rows,), r, dtype=z.dtype, device=z.device)
    x = z
    c_prev: Tensor | None = None
    # The first call plus at most K - 1 recursions: every recursion strictly shrinks the support.
    for _ in range(k_max):
        p = _sparsemax_last(x)
        support = p.detach() > 0
        size = support.sum(dim=-1, keepdim=True)
        c = support.to(z.dtype) / size  # constant centroid of the current face
        if c_prev is not None:
            # Sphere around the earlier centre cut by the smaller face; clamp absorbs rounding only.
            shift2 = (c - c_prev).square().sum(dim=-1)
            rho = (rho.square() - shift2).clamp_min(0.0).sqrt()
        d = _centred_offset(p, c, support)
        dist = torch.linalg.vector_norm(d, dim=-1)
        dist_c = dist.detach()
        # Steps 1 and 4, plus the tie guard: return the sparsemax point p itself.
        stop_p = (size.squeeze(-1) == 1) | is_one_hot(p.detach(), tol=one_tol)
        stop_p |= (dist_c >= rho) | (dist_c < _tie_eps(z.dtype))
        # Rows that stop at p never use q; a unit denominator there keeps both passes finite.
        denom = torch.where(stop_p, torch.ones_like(dist), dist)
        q = c + (rho / denom).unsqueeze(-1) * d
        # Step 6: the pushed point is still in the simplex.
        stop_q = ~stop_p & (q.detach() >= 0).all(dim=-1)
        out = torch.where((active & stop_p).unsqueeze(-1), p, out)
        out = torch.where((active & stop_q).unsqueeze(-1), q.clamp(0.0, 1.0), out)
        active = active & ~(stop_p | stop_q)
        if not bool(active.any()):
            break
        # Step 7: recurse on q for the rows still running (finished rows are masked out above).
        x, c_prev = q, c
    return _snap_one_hot(out, one_tol)


def sparsestmax(logits: Tensor, radius: float | Tensor, dim: int = -1) -> Tensor:
    """Sparsemax kept at least ``radius`` from the support centroid (§4.2-§4.3), row-wise along ``dim``.

    ``radius`` is a python float or a one-element tensor (treated as a constant). Rows become exactly
    one-hot once ``radius >= sqrt((K - 1)/K)`` (earlier if the sparsemax support is smaller than K);
    one-hot rows have an exactly zero gradient.
    """
    _check_float(logits)
    r = _check_radius(radius)
    x = logits.movedim(dim, -1)
    shape = x.shape
    out = _sparsestmax_rows(x.reshape(-1, shape[-1]), r)
    return out.reshape(shape).movedim(-1, dim)


def _sparsestmax_1d(
    z: Tensor,
    radius: float | Tensor,
    _prev_centre: Tensor | None = None,
    _prev_radius: float | None = None,
) -> Tensor:
    """Literal recursive sparsestmax of one 1-D row (§4.3): the reference for the batched version."""
    one_tol = _one_hot_tol(z.dtype)
    r = _check_radius(radius)
    p = _sparsemax_1d(z)  # step 1
    if bool(is_one_hot(p.detach(), tol=one_tol)):
        return _snap_one_hot(p, one_tol)
    support = p.detach() > 0  # step 2
    c = support.to(z.dtype) / int(support.sum())
    if _prev_centre is None:  # step 3
        rho = r
    else:
        assert _prev_radius is not None
        rho = math.sqrt(max(_prev_radius**2 - float((c - _prev_centre).square().sum()), 0.0))
    d = _centred_offset(p, c, support)
    dist = torch.linalg.vector_norm(d)
    dist_c = float(dist.detach())
    if dist_c >= rho or dist_c < _tie_eps(z.dtype):  # step 4 and the tie guard
        return _snap_one_hot(p, one_tol)
    q = c + rho * d / dist  # step 5
    if bool((q.detach() >= 0).all()):  # step 6
        return _snap_one_hot(q.clamp(0.0, 1.0), one_tol)
    return _sparsestmax_1d(q, r, _prev_centre=c, _prev_radius=rho)  # step 7


# --------------------------------------------------------------------------------------------------------
# Gumbel straight-through
# --------------------------------------------------------------------------------------------------------


def gumbel_st(
    logits: Tensor,
    tau: float = 1.0,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Straight-through hard Gumbel-softmax sample on ``log_softmax(logits)`` along ``dim`` (§4.5).

    The forward value is an exact one-hot of ``argmax(log_softmax(logits) + g)``, ``g`` i.i.d. Gumbel(0, 1)
    (drawn from ``generator`` if given); the backward pass is that of the soft sample
    ``softmax((log_softmax(logits) + g)/tau)``.
    """
    _check_float(logits)
    if not tau > 0.0:
        raise ValueError(f"tau must be > 0, got {tau!r}")
    log_p = torch.log_softmax(logits, dim=dim)
    exp_noise = torch.empty_like(log_p).exponential_(1.0, generator=generator)
    gumbels = -exp_noise.log()
    soft = torch.softmax((log_p + gumbels) / tau, dim=dim)
    index = soft.detach().argmax(dim=dim, keepdim=True)
    hard = torch.zeros_like(soft).scatter_(dim, index, 1.0)
    # soft - soft.detach() is exactly 0 in the forward pass, so the value stays exactly 0/1
    # (hard - soft.detach() + soft could round the 1 away), while the gradient is that of soft.
    return hard + (soft - soft.detach())


# --------------------------------------------------------------------------------------------------------
# dispatch and diagnostics
# --------------------------------------------------------------------------------------------------------


def relax(kind: str, logits: Tensor, radius: float | Tensor = 0.0, dim: int = -1) -> Tensor:
    """Apply the relaxation ``kind`` (one of :data:`RELAXATIONS`) along ``dim``.

    ``radius`` is used by ``"sparsestmax"`` only.
    """
    if kind == "softmax":
        return softmax(logits, dim=dim)
    if kind == "sparsemax":
        return sparsemax(logits, dim=dim)
    if kind == "sparsestmax":
        return sparsestmax(logits, radius, dim=dim)
    raise ValueError(f"unknown relaxation {kind!r}; expected one of {', '.join(RELAXATIONS)}")


def is_one_hot(p: Tensor, tol: float = ONE_HOT_TOL, dim: int = -1) -> Tensor:
    """Boolean tensor over rows: is the simplex point ``p`` a vertex, i.e. ``max - min >= 1 - tol``?

    Meant for points on the simplex (outputs of the relaxations above). A row of length 1 is one-hot
    when its entry is within ``tol`` of 1.
    """
    x = p.movedim(dim, -1)
    if x.shape[-1] == 1:
        return (x[..., 0] - 1.0).abs() <= tol
    return x.amax(dim=-1) - x.amin(dim=-1) >= 1.0 - tol


def top2_margin(logits: Tensor, dim: int = -1) -> Tensor:
    """Detached ``top1 - top2`` of each row along ``dim``, to log how decisive a derivation argmax is.

    A margin of 0 means the argmax silently picked the first of tied logits (§4.3). Rows of length 1
    have margin ``inf``.
    """
    x = logits.detach().movedim(dim, -1)
    if x.shape[-1] < 2:
        return torch.full(x.shape[:-1], math.inf, dtype=x.dtype, device=x.device)
    top = x.topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]
