"""Tests of trisr.relax: the properties of method.md §15 "Sparsemax" and "Sparsestmax", plus relax() and
Gumbel-ST."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trisr import relax as R
from trisr.relax import (
    RELAXATIONS,
    gumbel_st,
    is_one_hot,
    relax,
    softmax,
    sparsemax,
    sparsestmax,
    top2_margin,
)

F64 = torch.float64
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def r_c(k: int) -> float:
    """Distance from the barycentre to a vertex: the radius from which every row is one-hot."""
    return math.sqrt((k - 1) / k)


def normal_rows(seed: int, rows: int, k: int, scale: float, dtype: torch.dtype = F64) -> torch.Tensor:
    """Continuous random logits: no ties, so order- and distance-based properties are well posed."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, k, generator=gen, dtype=F64) * scale).to(dtype)


def first_call_centroid(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparsemax point and the centroid of its support (last dim)."""
    p = sparsemax(z)
    support = (p > 0).to(z.dtype)
    return p, support / support.sum(dim=-1, keepdim=True)


# Strategies -------------------------------------------------------------------------------------------

row_length = st.sampled_from([4, 5, 55])
seeds = st.integers(min_value=0, max_value=2**31 - 1)
# Logit scales from trisr's 1e-3 initialisation noise up to well-separated logits.
scales = st.sampled_from([1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0])
radii = st.floats(min_value=0.0, max_value=1.2, allow_nan=False)
# Raw floats, on purpose full of exact ties and repeated values (hypothesis favours 0.0, 1.0, ...).
raw_value = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def raw_rows(draw: st.DrawFn) -> torch.Tensor:
    k = draw(row_length)
    return torch.tensor(draw(st.lists(raw_value, min_size=k, max_size=k)), dtype=F64)


# ======================================================================================================
# Sparsemax
# ======================================================================================================


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize(
    ("z", "expected"),
    [
        ([0.5, 0.2, 0.1], [17 / 30, 8 / 30, 5 / 30]),
        ([1.0, 0.2, 0.1, 0.0], [0.9, 0.1, 0.0, 0.0]),
        ([0.3, 0.2, 0.1, 0.0], [0.4, 0.3, 0.2, 0.1]),
    ],
)
def test_sparsemax_test_vectors(z: list[float], expected: list[float], dtype: torch.dtype) -> None:
    out = sparsemax(torch.tensor(z, dtype=dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out, torch.tensor(expected, dtype=dtype), atol=1e-6, rtol=0)
    # No exact-zero check: in [1.0, 0.2, 0.1, 0.0] the 0.1 sits exactly on the support boundary
    # (1 + 3 * 0.1 = 1.3 = 1.0 + 0.2 + 0.1), so rounding decides between 0 and a few ulps.


@SETTINGS
@given(z=raw_rows(), shift=st.floats(min_value=-20.0, max_value=20.0, allow_nan=False))
def test_sparsemax_closed_form_simplex_and_shift_invariance(z: torch.Tensor, shift: float) -> None:
    p = sparsemax(z)
    torch.testing.assert_close(p, R._sparsemax_1d(z), atol=1e-12, rtol=0)
    assert bool((p >= 0).all())
    assert abs(float(p.sum()) - 1.0) < 1e-12
    torch.testing.assert_close(sparsemax(z + shift), p, atol=1e-12, rtol=0)


@pytest.mark.parametrize("seed", range(4))
def test_sparsemax_jacobian_on_support(seed: int) -> None:
    # Logits spread enough that the support is stable under the finite-difference step.
    z = normal_rows(seed, 1, 6, 0.3)[0].requires_grad_(True)
    assert torch.autograd.gradcheck(sparsemax, (z,), eps=1e-6, atol=1e-8)
    support = (sparsemax(z) > 0).to(F64)
    expected = torch.diag(support) - torch.outer(support, support) / support.sum()
    jac = torch.autograd.functional.jacobian(sparsemax, z.detach())
    torch.testing.assert_close(jac, expected, atol=1e-12, rtol=0)


def test_sparsemax_batched_any_dim() -> None:
    alpha = normal_rows(0, 35 * 5, 4, 0.5).reshape(35, 5, 4)
    out = sparsemax(alpha)
    assert out.shape == alpha.shape
    for i in range(35):
        for j in range(5):
            torch.testing.assert_close(out[i, j], R._sparsemax_1d(alpha[i, j]), atol=1e-12, rtol=0)
    # A non-last dim is relaxed like the last dim of the transposed tensor.
    torch.testing.assert_close(sparsemax(alpha, dim=1), sparsemax(alpha.transpose(1, 2)).transpose(1, 2))


def test_sparsemax_one_hot_is_exact_with_zero_gradient() -> None:
    z = torch.tensor([0.1, -3.0, -2.0], dtype=torch.float32, requires_grad=True)
    out = sparsemax(z)
    assert out.tolist() == [1.0, 0.0, 0.0]
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert z.grad is not None and bool((z.grad == 0).all())


# ======================================================================================================
# Sparsestmax: regression values (method.md §15)
# ======================================================================================================

REGRESSION = [
    ([0.5, 0.2, 0.1], 0.0, [0.566667, 0.266667, 0.166667]),
    ([0.5, 0.2, 0.1], 0.2, [0.566667, 0.266667, 0.166667]),
    ([0.5, 0.2, 0.1], 0.5, [0.729630, 0.220106, 0.050264]),
    ([0.5, 0.2, 0.1], 0.7, [0.902078, 0.097922, 0.0]),
    ([0.5, 0.2, 0.1], 0.8, [0.986484, 0.013516, 0.0]),
    ([0.5, 0.2, 0.1], 0.9, [1.0, 0.0, 0.0]),
    ([0.3, 0.2, 0.1, 0.0], 0.3, [0.451246, 0.317082, 0.182918, 0.048754]),
    ([0.3, 0.2, 0.1, 0.0], 0.5, [0.622008, 0.333333, 0.044658, 0.0]),
    ([0.3, 0.2, 0.1, 0.0], 0.7, [0.846410, 0.153590, 0.0, 0.0]),
    ([0.3, 0.2, 0.1, 0.0], 0.87, [1.0, 0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize(("z", "r", "expected"), REGRESSION)
def test_sparsestmax_regression_values(
    z: list[float], r: float, expected: list[float], dtype: torch.dtype
) -> None:
    logits = torch.tensor(z, dtype=dtype)
    want = torch.tensor(expected, dtype=dtype)
    for out in (sparsestmax(logits, r), R._sparsestmax_1d(logits, r), sparsestmax(logits, torch.tensor(r))):
        assert out.dtype == dtype
        torch.testing.assert_close(out, want, atol=1e-5, rtol=0)
        # Zeros are exact zeros, and a one-hot row is exactly one-hot.
        assert torch.equal(out == 0, want == 0)
    if expected.count(0.0) == len(expected) - 1:
        assert sparsestmax(logits, r).tolist() == expected


def test_sparsestmax_k3_edge_formula() -> None:
    # At r = 0.7 the push leaves the triangle and recurses onto the edge {0, 1}, where the output is
    # 1/2 +- sqrt(r^2 - 1/6)/sqrt(2).
    r = 0.7
    half_width = math.sqrt(r**2 - 1 / 6) / math.sqrt(2)
    out = sparsestmax(torch.tensor([0.5, 0.2, 0.1], dtype=F64), r)
    torch.testing.assert_close(out, torch.tensor([0.5 + half_width, 0.5 - half_width, 0.0], dtype=F64))


def test_sparsestmax_k55_sparsity_profile() -> None:
    # §4.3: K = 55, logits 0.01 N(0, 1): median non-zeros about 53, 27, 6, 2, 1 at r = 0, .2, .5, .8, 1.
    z = normal_rows(0, 201, 55, 0.01)
    for r, (lo, hi) in [(0.0, (51, 55)), (0.2, (24, 30)), (0.5, (4, 8)), (0.8, (2, 3)), (1.0, (1, 1))]:
        median = float((sparsestmax(z, r) > 0).sum(dim=-1).double().median())
        assert lo <= median <= hi, (r, median)


# ======================================================================================================
# Sparsestmax: invariants on random rows of length 4, 5 and 55
# ======================================================================================================


@SETTINGS
@given(z=raw_rows(), r=radii, dtype=st.sampled_from([torch.float32, F64]))
def test_sparsestmax_on_simplex_and_batched_equals_1d_raw(
    z: torch.Tensor, r: float, dtype: torch.dtype
) -> None:
    # Raw hypothesis rows: exact ties, repeated values, zeros. Must stay finite and on the simplex.
    z = z.to(dtype).requires_grad_(True)
    out = sparsestmax(z, r)
    (grad,) = torch.autograd.grad((out * torch.linspace(-1.0, 2.0, z.shape[0], dtype=dtype)).sum(), z)
    assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(grad).all())
    assert bool((out >= 0).all())
    tol = 1e-5 if dtype == torch.float32 else 1e-9
    assert abs(float(out.detach().sum()) - 1.0) < tol
    torch.testing.assert_close(out.detach(), R._sparsestmax_1d(z.detach(), r), atol=tol, rtol=0)


@SETTINGS
@given(k=row_length, seed=seeds, scale=scales, r=radii)
def test_sparsestmax_distance_to_first_call_centroid(k: int, seed: int, scale: float, r: float) -> None:
    z = normal_rows(seed, 8, k, scale)
    out = sparsestmax(z, r)
    assert bool((out >= 0).all())
    torch.testing.assert_close(out.sum(dim=-1), torch.ones(8, dtype=F64), atol=1e-12, rtol=0)
    p, c = first_call_centroid(z)
    dist_p = torch.linalg.vector_norm(p - c, dim=-1)
    dist_out = torch.linalg.vector_norm(out - c, dim=-1)
    hot = is_one_hot(out)
    for i in range(8):
        if float(dist_p[i]) >= r:
            # Constraint inactive: the sparsemax point itself.
            torch.testing.assert_close(out[i], p[i], atol=1e-12, rtol=0)
        elif not bool(hot[i]):
            # Active, also after recursions onto smaller faces: exactly r from the first-call centroid,
            # hence at least r from the global barycentre.
            assert abs(float(dist_out[i]) - r) < 1e-9
            assert float(torch.linalg.vector_norm(out[i] - 1.0 / k)) >= r - 1e-9
        else:
            # A vertex reached inside the ball: only once r passes the vertex distance of the face.
            size = int((p[i] > 0).sum())
            assert r >= r_c(size) - 1e-9
            assert float(dist_out[i]) <= r + 1e-9


@SETTINGS
@given(k=row_length, seed=seeds, scale=scales)
def test_sparsestmax_nonzeros_non_increasing_in_radius(k: int, seed: int, scale: float) -> None:
    z = normal_rows(seed, 6, k, scale)
    counts = torch.stack([(sparsestmax(z, r) > 0).sum(dim=-1) for r in torch.linspace(0, 1, 41).tolist()])
    assert bool((counts[1:] <= counts[:-1]).all())
    assert bool((counts[-1] == 1).all())


@SETTINGS
@given(
    k=row_length,
    seed=seeds,
    scale=scales,
    extra=st.floats(min_value=0.0, max_value=0.5, allow_nan=False),
    dtype=st.sampled_from([torch.float32, F64]),
)
def test_sparsestmax_one_hot_beyond_critical_radius(
    k: int, seed: int, scale: float, extra: float, dtype: torch.dtype
) -> None:
    z = normal_rows(seed, 8, k, scale, dtype)
    out = sparsestmax(z, r_c(k) + extra)
    # A top-2 gap of a few ulps is a tie as far as the tie guard is concerned; Gaussian rows (almost)
    # never have one, the mask only makes the float32 case deterministic.
    decisive = top2_margin(z) > 1e-6
    assert bool(is_one_hot(out)[decisive].all())
    # Exactly one-hot, on the argmax.
    assert bool(((out[decisive] == 0) | (out[decisive] == 1)).all())
    assert torch.equal(out.argmax(dim=-1)[decisive], z.argmax(dim=-1)[decisive])


@SETTINGS
@given(k=row_length, seed=seeds, scale=scales, r=radii)
def test_sparsestmax_argmax_preserved(k: int, seed: int, scale: float, r: float) -> None:
    z = normal_rows(seed, 8, k, scale)
    keep = top2_margin(z) > 1e-9  # unique top logit
    out = sparsestmax(z, r)
    assert torch.equal(out.argmax(dim=-1)[keep], z.argmax(dim=-1)[keep])
    # The top logit keeps the strictly largest weight.
    top = out.gather(-1, z.argmax(dim=-1, keepdim=True))
    others = out.masked_fill(torch.nn.functional.one_hot(z.argmax(dim=-1), k).bool(), -1.0)
    assert bool((top.squeeze(-1) > others.amax(dim=-1))[keep].all())


@SETTINGS
@given(k=row_length, seed=seeds, scale=scales, r=radii)
def test_sparsestmax_permutation_equivariant(k: int, seed: int, scale: float, r: float) -> None:
    z = normal_rows(seed, 4, k, scale)
    perm = torch.randperm(k, generator=torch.Generator().manual_seed(seed + 1))
    torch.testing.assert_close(sparsestmax(z[:, perm], r), sparsestmax(z, r)[:, perm], atol=1e-9, rtol=0)


@FEW
@given(k=row_length, seed=seeds, scale=scales, r=radii)
def test_sparsestmax_batched_equals_1d_values_and_gradients(
    k: int, seed: int, scale: float, r: float
) -> None:
    z = normal_rows(seed, 6, k, scale).requires_grad_(True)
    weights = normal_rows(seed + 1, 6, k, 1.0)
    out = sparsestmax(z, r)
    (grad,) = torch.autograd.grad((out * weights).sum(), z)
    for i in range(6):
        row = z[i].detach().clone().requires_grad_(True)
        ref = R._sparsestmax_1d(row, r)
        (ref_grad,) = torch.autograd.grad((ref * weights[i]).sum(), row)
        torch.testing.assert_close(out[i], ref, atol=1e-10, rtol=0)
        torch.testing.assert_close(grad[i], ref_grad, atol=1e-7, rtol=1e-7)


def test_sparsestmax_parameter_shapes_and_dim() -> None:
    alpha = normal_rows(1, 35 * 5, 4, 1e-3).reshape(35, 5, 4)
    omega = normal_rows(2, 35 * 4, 5, 1e-3).reshape(35, 4, 5)
    gamma = normal_rows(3, 1, 55, 1e-3).reshape(55)
    for logits in (alpha, omega, gamma):
        for r in (0.0, 0.4, 0.8):
            out = sparsestmax(logits, r)
            assert out.shape == logits.shape
            k = logits.shape[-1]
            flat_in, flat_out = logits.reshape(-1, k), out.reshape(-1, k)
            for i in range(flat_in.shape[0]):
                torch.testing.assert_close(flat_out[i], R._sparsestmax_1d(flat_in[i], r), atol=1e-10, rtol=0)
    torch.testing.assert_close(
        sparsestmax(omega, 0.5, dim=1), sparsestmax(omega.transpose(1, 2), 0.5).transpose(1, 2)
    )


# ======================================================================================================
# Sparsestmax: ties and gradients
# ======================================================================================================


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("k", [2, 3, 4, 5, 55])
@pytest.mark.parametrize("value", [0.0, 1e-3, 0.3, -7.0, 100.0])
@pytest.mark.parametrize("r", [0.1, 0.5, 1.0])
def test_sparsestmax_exact_ties_are_finite(dtype: torch.dtype, k: int, value: float, r: float) -> None:
    # The reference TrilevelNAS initialisation: every logit equal. ||p - c|| = 0, so without the tie
    # guard step 5 divides by zero.
    z = torch.full((3, k), value, dtype=dtype, requires_grad=True)
    out = sparsestmax(z, r)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out, torch.full_like(out, 1.0 / k))
    (grad,) = torch.autograd.grad((out * torch.arange(k, dtype=dtype)).sum(), z)
    assert bool(torch.isfinite(grad).all())
    one_d = R._sparsestmax_1d(z[0].detach(), r)
    assert bool(torch.isfinite(one_d).all())


@pytest.mark.parametrize("z", [[1.0, 1.0, 0.0, 0.0], [2.0, 0.5, 0.5, 0.5, 0.5], [0.2, 0.2, 0.2, -5.0]])
@pytest.mark.parametrize("r", [0.3, 0.7, 1.0])
def test_sparsestmax_partial_ties_are_finite(z: list[float], r: float) -> None:
    logits = torch.tensor(z, dtype=F64, requires_grad=True)
    out = sparsestmax(logits, r)
    (grad,) = torch.autograd.grad((out * torch.arange(len(z), dtype=F64)).sum(), logits)
    assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(grad).all())
    assert abs(float(out.detach().sum()) - 1.0) < 1e-12


@SETTINGS
@given(
    k=row_length,
    seed=seeds,
    scale=scales,
    extra=st.floats(min_value=0.0, max_value=0.5, allow_nan=False),
    dtype=st.sampled_from([torch.float32, F64]),
)
def test_sparsestmax_gradient_exactly_zero_once_one_hot(
    k: int, seed: int, scale: float, extra: float, dtype: torch.dtype
) -> None:
    z = normal_rows(seed, 5, k, scale, dtype).requires_grad_(True)
    out = sparsestmax(z, r_c(k) + extra)
    decisive = top2_margin(z) > 1e-6  # see test_sparsestmax_one_hot_beyond_critical_radius
    assert bool(is_one_hot(out)[decisive].all())
    (grad,) = torch.autograd.grad((out * normal_rows(seed + 1, 5, k, 1.0, dtype)).sum(), z)
    assert bool((grad[decisive] == 0).all())


def test_sparsestmax_gradient_zero_for_sparsemax_one_hot_row() -> None:
    z = torch.tensor([[5.0, 0.0, 0.0, 0.0], [0.3, 0.2, 0.1, 0.0]], dtype=F64, requires_grad=True)
    out = sparsestmax(z, 0.3)
    # Weights not collinear with the (equally spaced) push direction of the second row, whose
    # projection the sphere's tangent Jacobian would annihilate.
    (grad,) = torch.autograd.grad((out * torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)).sum(), z)
    assert bool((grad[0] == 0).all())
    assert bool((grad[1] != 0).any())


@SETTINGS
@given(k=row_length, seed=seeds, scale=scales, r=st.floats(min_value=0.0, max_value=0.8, allow_nan=False))
def test_sparsestmax_gradient_flows_within_first_call_support(
    k: int, seed: int, scale: float, r: float
) -> None:
    z = normal_rows(seed, 6, k, scale).requires_grad_(True)
    weights = normal_rows(seed + 1, 6, k, 1.0)
    out = sparsestmax(z, r)
    (grad,) = torch.autograd.grad((out * weights).sum(), z)
    assert bool(torch.isfinite(grad).all())
    p, _ = first_call_centroid(z.detach())
    # No gradient outside the first-call sparsemax support.
    assert bool((grad[p == 0] == 0).all())
    # With three or more non-zeros the output moves with the logits (on an edge the active constraint
    # pins it, and a vertex is frozen).
    alive = (out > 0).sum(dim=-1) >= 3
    assert bool((grad.abs().amax(dim=-1) > 0)[alive].all())


@pytest.mark.parametrize(
    ("z", "r"),
    [
        ([0.5, 0.2, 0.1], 0.5),  # first-call push, inside the triangle
        ([0.3, 0.2, 0.1, 0.0], 0.3),  # first-call push, full support
        ([0.3, 0.2, 0.1, 0.0], 0.5),  # one recursion onto a 3-face
        ([0.4, 0.1, 0.3, -0.05, 0.2], 0.45),
    ],
)
def test_sparsestmax_gradcheck(z: list[float], r: float) -> None:
    logits = torch.tensor(z, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sparsestmax(x, r), (logits,), eps=1e-6, atol=1e-7)


def test_sparsestmax_rejects_bad_radius_and_dtype() -> None:
    z = torch.tensor([0.3, 0.2, 0.1])
    with pytest.raises(ValueError):
        sparsestmax(z, -0.1)
    with pytest.raises(ValueError):
        sparsestmax(z, float("nan"))
    with pytest.raises(ValueError):
        sparsestmax(z, torch.tensor([0.1, 0.2]))
    with pytest.raises(TypeError):
        sparsestmax(torch.tensor([3, 2, 1]), 0.1)


# ======================================================================================================
# relax(), is_one_hot(), top2_margin()
# ======================================================================================================


def test_relax_dispatch() -> None:
    assert RELAXATIONS == ("softmax", "sparsemax", "sparsestmax")
    z = normal_rows(5, 7, 4, 0.3)
    torch.testing.assert_close(relax("softmax", z, 0.5), torch.softmax(z, dim=-1))
    torch.testing.assert_close(softmax(z, dim=0), torch.softmax(z, dim=0))
    torch.testing.assert_close(relax("sparsemax", z, 0.5), sparsemax(z))
    torch.testing.assert_close(relax("sparsestmax", z, 0.5), sparsestmax(z, 0.5))
    torch.testing.assert_close(relax("sparsestmax", z, 0.0), sparsemax(z))
    torch.testing.assert_close(relax("sparsemax", z, 0.0, dim=0), sparsemax(z.T).T)


def test_relax_unknown_kind() -> None:
    with pytest.raises(ValueError, match="softmax, sparsemax, sparsestmax"):
        relax("gumbel", torch.zeros(4), 0.5)


def test_is_one_hot_and_top2_margin() -> None:
    p = torch.tensor([[1.0, 0.0, 0.0], [1.0 - 1e-12, 1e-12, 0.0], [0.9, 0.1, 0.0]], dtype=F64)
    assert is_one_hot(p).tolist() == [True, True, False]
    assert is_one_hot(torch.ones(2, 1)).tolist() == [True, True]
    z = torch.tensor([[0.5, 0.2, 0.1], [0.3, 0.3, 0.0]], dtype=F64, requires_grad=True)
    margin = top2_margin(z)
    torch.testing.assert_close(margin, torch.tensor([0.3, 0.0], dtype=F64))
    assert not margin.requires_grad
    assert top2_margin(torch.zeros(3, 1)).isinf().all()
    torch.testing.assert_close(top2_margin(z.detach(), dim=0), torch.tensor([0.2, 0.1, 0.1], dtype=F64))


# ======================================================================================================
# Gumbel straight-through
# ======================================================================================================


def test_gumbel_st_forward_exactly_one_hot_and_gradient() -> None:
    omega = (1e-3 * torch.randn(35, 4, 5, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    sample = gumbel_st(omega, generator=torch.Generator().manual_seed(1))
    assert sample.shape == omega.shape
    assert bool(((sample == 0) | (sample == 1)).all())
    assert bool((sample.sum(dim=-1) == 1).all())
    weights = torch.randn(35, 4, 5, generator=torch.Generator().manual_seed(2))
    (grad,) = torch.autograd.grad((sample * weights).sum(), omega)
    assert bool(torch.isfinite(grad).all()) and bool((grad != 0).any())
    # Same seed, same draw.
    again = gumbel_st(omega, generator=torch.Generator().manual_seed(1))
    assert torch.equal(sample, again)
    # Along another dim.
    other = gumbel_st(omega, dim=1, generator=torch.Generator().manual_seed(3))
    assert bool((other.sum(dim=1) == 1).all())
    with pytest.raises(ValueError):
        gumbel_st(omega, tau=0.0)


def test_gumbel_st_frequencies_follow_softmax() -> None:
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5])
    samples = gumbel_st(logits.expand(20000, 4), generator=torch.Generator().manual_seed(0))
    freq = samples.mean(dim=0)
    # Standard error is at most 0.0036 per entry; 0.02 is a loose, seed-stable bound.
    torch.testing.assert_close(freq, torch.softmax(logits, dim=0), atol=0.02, rtol=0)
