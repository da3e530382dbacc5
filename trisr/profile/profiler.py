"""``trisr profile``: measure every entry of the search space in the target runtime, calibrate the sum
on sampled whole networks, and validate on fresh ones (deployment.md §5-§6).

Entries are built from the same module classes the derived network uses (``trisr.space.ops``), exported
to ONNX and run by the target backend -- never torch timings passed off as another runtime's.

In-context differencing: a lone entry pays per-inference boundary costs (layout reorders, session
overhead) that a network pays once. For entries whose input and output widths match, three copies in a
row are timed too: ``latency = (T(x3) - T(x1)) / 2`` and ``fixed = T(x1) - latency``. Entries that change
width cannot be chained with themselves; they take ``latency = T(x1) - fixed`` with ``fixed`` the mean of
the same op's fixed costs at their input and at their output width. Head and tail pay half a boundary.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trisr.errors import TrisrError
from trisr.profile.lut import Calibration, LatencyTable, LutEntry, groups
from trisr.progress import Reporter
from trisr.runtime.base import Backend, load_runner
from trisr.runtime.timing import Timing, TimingProtocol
from trisr.space.config import SpaceConfig
from trisr.space.cost import ADD_KEY, op_key
from trisr.space.genotype import Genotype
from trisr.space.ops import Head, Tail, TailEntry, UpBlock, create_op
from trisr.space.tree import Tree


class LinkAdd(nn.Module):
    """The ``add`` entry: a dense connection adds another full-size feature map to a block's input. The other
    operand is a constant of the same shape, so the runtime streams two distinct tensors as the network does
    (``x + x`` would read one tensor twice, from cache)."""

    def __init__(self, nf: int, resolution: tuple[int, int]) -> None:
        super().__init__()
        # Its own generator: drawing from the global one would change the initial weights of every op entry.
        self.register_buffer("other", torch.randn(1, nf, *resolution, generator=torch.Generator().manual_seed(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.other


def entry_modules(space: SpaceConfig, resolution: tuple[int, int]) -> dict[str, tuple[nn.Module, int, nn.Module | None]]:
    """key -> (module alone, input channels, three-copy chain or None), default-initialised weights."""
    torch.manual_seed(0)
    conv_sc = space.derived_shortcut == "conv"

    def op(name, ci, co):
        return create_op(name, ci, co, conv_shortcut=conv_sc, dws_expansion=space.dws_expansion)

    out: dict[str, tuple[nn.Module, int, nn.Module | None]] = {
        "head": (Head(space.nf), 3, None),
        "up": (UpBlock(space.nf, space.variant), space.nf, nn.Sequential(*(UpBlock(space.nf, space.variant) for _ in range(3)))),
        "tail": (TailEntry(Tail(space.nf, space.scale, space.variant, space.skip, space.output)), space.nf, None),
        ADD_KEY: (LinkAdd(space.nf, resolution), space.nf, nn.Sequential(*(LinkAdd(space.nf, resolution) for _ in range(3)))),
    }
    for name, ci, co in itertools.product(space.ops, space.widths, space.widths):
        chain = nn.Sequential(*(op(name, ci, co) for _ in range(3))) if ci == co else None
        out[op_key(name, ci, co)] = (op(name, ci, co), ci, chain)
    return out


#: At int8, which convolutions of an entry stay float: the export keeps a network's first and last convolution
#: float, and those live in the head and the tail entries; every other entry is quantized whole.
ENTRY_KEEP_FLOAT = {"head": ("first",), "tail": ("last",)}


def time_module(
    backend: Backend, module: nn.Module, input_shape: tuple[int, ...], protocol: TimingProtocol, workdir: Path, entry: bool = False,
    keep_float: tuple[str, ...] = ("first", "last"),
) -> Timing:
    runner = load_runner(backend, module.eval(), input_shape, workdir, entry_io=entry, keep_float=keep_float)
    return runner.time(protocol)


def profile_entries(
    space: SpaceConfig,
    backend: Backend,
    resolution: tuple[int, int],
    protocol: TimingProtocol,
    reporter: Reporter | None = None,
) -> dict[str, LutEntry]:
    reporter = reporter or Reporter()
    h, w = resolution
    modules = entry_modules(space, resolution)
    jobs = [(k, m, ci, False) for k, (m, ci, _) in modules.items()]
    jobs += [(k, chain, ci, True) for k, (_, ci, chain) in modules.items() if chain is not None]
    reporter.phase(f"profile entries @ {h}x{w} LR", len(jobs))
    t1: dict[str, Timing] = {}
    t3: dict[str, Timing] = {}
    with tempfile.TemporaryDirectory(prefix="trisr-profile-") as tmp:
        for i, (key, module, ci, is_chain) in enumerate(jobs):
            timing = time_module(backend, module, (1, ci, h, w), protocol, Path(tmp) / f"{i}", entry=True,
                                 keep_float=ENTRY_KEEP_FLOAT.get(key, ()))
            (t3 if is_chain else t1)[key] = timing
            reporter.step(i + 1, {"entry": key + (" x3" if is_chain else ""), "ms": timing.median_ms})
    reporter.end_phase()

    fixed: dict[str, float] = {}
    for key, t in t3.items():
        fixed[key] = t1[key].median_ms - max(t.median_ms - t1[key].median_ms, 0.0) / 2
    entries: dict[str, LutEntry] = {}
    for key, t in t1.items():
        if key in t3:
            lat = max(t3[key].median_ms - t.median_ms, 0.0) / 2
            fix = t.median_ms - lat
        else:
            fix = _estimated_fixed(key, space, fixed)
            lat = t.median_ms - fix
        if lat <= 0:  # noise can exceed the entry on tiny layers: keep a positive floor, never 0
            lat = 0.1 * t.median_ms
            fix = t.median_ms - lat
        entries[key] = LutEntry(
            latency_ms=lat,
            fixed_ms=fix,
            t_x1_ms=t.median_ms,
            t_x3_ms=t3[key].median_ms if key in t3 else None,
            p10_ms=t.p10_ms,
            p90_ms=t.p90_ms,
            n=t.n,
            cv=t.cv,
            stable=t.stable,
        )
    return entries


def _estimated_fixed(key: str, space: SpaceConfig, fixed: dict[str, float]) -> float:
    nf = space.nf
    if key.startswith("op:"):
        _, name, ci, co = key.split(":")
        return 0.5 * (fixed[op_key(name, int(ci), int(ci))] + fixed[op_key(name, int(co), int(co))])
    # head / tail: one boundary at nf; take half of the mean full-width fixed cost over ops
    full = [fixed[op_key(name, nf, nf)] for name in space.ops] + [fixed["up"]]
    return 0.5 * float(np.mean(full))


# -- whole networks ----------------------------------------------------------------------------------------


def sample_genotypes(space: SpaceConfig, n: int, seed: int, dense: bool = False) -> list[Genotype]:
    """Architectures spread over the space: nodes (depths) cycled, ops and widths uniform. ``dense``: networks of
    the dense network level (``--strategy dcnas``): the chain's depths beyond the stem, and every block after the
    stem adds one earlier output drawn uniformly (never none, so each network exercises its table's ``add`` entry)."""
    rng = np.random.default_rng(seed)
    tree = Tree(space.num_cell_path_search, space.num_up, space.num_stem, chain=dense)
    depths = np.arange(1 if dense else 0, len(tree))  # dense: past the stem-only network, which has no block to link
    nodes = rng.permutation(np.resize(depths, max(n, len(depths))))[:n]
    out = []
    for v in nodes:
        path = tree.blocks(int(v))
        k = path.count("C")
        ops = rng.integers(0, space.num_ops, (k, space.ops_per_cell)).tolist()
        widths = rng.integers(0, space.num_widths, (k, space.edges_per_cell)).tolist()
        links = None
        if dense:
            links = [-1] * space.num_stem + [int(rng.integers(0, b - 1)) for b in range(space.num_stem + 1, len(path) + 1)]
        out.append(Genotype(space, path, ops, widths, node_index=int(v), links=links))
    return out


def measure_network(backend: Backend, genotype: Genotype, resolution: tuple[int, int], protocol: TimingProtocol, model: nn.Module | None = None) -> Timing:
    """End-to-end latency of a network of ``genotype`` (any architecture: a Genotype or a ``trisr.zoo.ZooSpec``;
    random weights unless ``model`` is given)."""
    if model is None:
        from trisr.rundir import build_model

        model = build_model(genotype)
    with tempfile.TemporaryDirectory(prefix="trisr-net-") as tmp:
        return time_module(backend, model, (1, 3, *resolution), protocol, Path(tmp))


def measure_networks(backend, genotypes, resolution, protocol, reporter: Reporter, title: str) -> list[float]:
    reporter.phase(title, len(genotypes))
    out = []
    for i, g in enumerate(genotypes):
        t = measure_network(backend, g, resolution, protocol)
        out.append(t.median_ms)
        reporter.step(i + 1, {"path": g.path, "ms": t.median_ms})
    reporter.end_phase()
    return out


def _fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares on relative error: rows weighted by 1/y, so small networks count as much as big ones."""
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)
    return coef


def _loo_rmspe(X: np.ndarray, y: np.ndarray) -> float:
    errs = []
    for i in range(len(y)):
        mask = np.arange(len(y)) != i
        coef = _fit(X[mask], y[mask])
        errs.append((X[i] @ coef - y[i]) / y[i])
    return float(np.sqrt(np.mean(np.square(errs))))


def fit_calibration(lut: LatencyTable, genotypes: list[Genotype], measured_ms: list[float]) -> Calibration:
    names = groups(lut.space)
    sums = np.array([[lut.group_sums(g)[k] for k in names] for g in genotypes])
    y = np.asarray(measured_ms, dtype=np.float64)
    designs = {"affine": np.column_stack([np.ones(len(y)), sums.sum(1)])}
    if len(y) >= 2 * (len(names) + 1):  # enough networks for one scale per group
        designs["per_op"] = np.column_stack([np.ones(len(y)), sums])
    loo = {name: _loo_rmspe(X, y) for name, X in designs.items()}
    best = min(loo, key=loo.get)
    coef = _fit(designs[best], y)
    scales = {k: float(coef[1]) for k in names} if best == "affine" else {k: float(c) for k, c in zip(names, coef[1:])}
    return Calibration(
        model=best,
        overhead_ms=float(coef[0]),
        scales=scales,
        n=len(y),
        loo_rmspe=loo,
        networks=[{"path": g.path, "digest": g.digest(), "raw_ms": float(s.sum()), "measured_ms": m} for g, s, m in zip(genotypes, sums, y)],
    )


def scorecard(predicted: list[float], measured: list[float]) -> dict:
    """nn-Meter's latency metrics (deployment.md §6.5)."""
    p, m = np.asarray(predicted), np.asarray(measured)
    rel = (p - m) / m
    worst = np.argsort(-np.abs(rel))[:3]
    return {
        "n": int(m.size),
        "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
        "rmspe": float(np.sqrt(np.mean(rel**2))),
        "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
        "within_15pct": float(np.mean(np.abs(rel) <= 0.15)),
        "max_abs_err_pct": float(100 * np.max(np.abs(rel))),
        "worst": [{"index": int(i), "predicted_ms": float(p[i]), "measured_ms": float(m[i]), "err_pct": float(100 * rel[i])} for i in worst],
    }


def profile(
    space: SpaceConfig,
    backend: Backend,
    resolution: tuple[int, int],
    protocol: TimingProtocol = TimingProtocol(),
    calibrate: int = 20,
    validate: int = 0,
    seed: int = 0,
    reporter: Reporter | None = None,
) -> LatencyTable:
    reporter = reporter or Reporter()
    if calibrate and calibrate < 3:
        raise TrisrError("--calibrate needs at least 3 networks (or 0 to skip calibration)")
    t0 = time.time()
    lut = LatencyTable(
        space=space,
        resolution=tuple(resolution),
        batch=1,
        target=backend.describe(),
        protocol=protocol.to_dict(),
        entries=profile_entries(space, backend, resolution, protocol, reporter),
    )
    if calibrate:
        gens = sample_genotypes(space, calibrate, seed)
        measured = measure_networks(backend, gens, resolution, protocol, reporter, "calibrate (whole networks)")
        lut.calibration = fit_calibration(lut, gens, measured)
    if validate:
        validate_lut(lut, backend, validate, seed + 1, protocol, reporter)
    lut.profiling_s = time.time() - t0
    return lut


def validate_lut(lut: LatencyTable, backend: Backend, n: int, seed: int, protocol: TimingProtocol, reporter: Reporter) -> dict:
    """Measure ``n`` fresh sampled architectures end to end; store and return the scorecard."""
    def card_of(gens: list[Genotype], title: str) -> dict:
        measured = measure_networks(backend, gens, lut.resolution, protocol, reporter, title)
        predicted = [lut.predict_ms(g) for g in gens]
        card = scorecard(predicted, measured)
        card["networks"] = [
            {"path": g.path, "digest": g.digest(), "links": g.links, "predicted_ms": p, "measured_ms": m}
            for g, p, m in zip(gens, predicted, measured)
        ]
        return card

    card = card_of(sample_genotypes(lut.space, n, seed + 7_000_003), "validate (fresh networks)")  # disjoint from calibration
    card["seed"] = seed
    if ADD_KEY in lut.entries and n >= 3:
        # Dense networks (dcnas) are priced with the add entry, fitted by no calibration network: check them apart.
        card["dense"] = card_of(sample_genotypes(lut.space, max(3, n // 3), seed + 9_000_011, dense=True),
                                "validate (fresh dense networks)")
    lut.validation = card
    return card
