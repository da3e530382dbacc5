"""``trisr bench``: every format of the table (or ``--format``) plus the PyTorch eager baseline, in one
process: export + verify, load (compile time apart), then latency measured in interleaved repetitions
(each one ``Runner.time``: warm-up, then time-based repetition) so slow drifts of the machine hit every
row alike. A format that cannot run here is a row with its reason; one that fails keeps the loop going.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from trisr.errors import TrisrError
from trisr.export.exporters import ExportOptions
from trisr.export.formats import BASELINE, Format
from trisr.export.lut import LutPrediction, lut_prediction
from trisr.export.pipeline import EXPORT_FAILED, UNAVAILABLE, VERIFIED, VERIFY_FAILED, ExportRequest, export_run
from trisr.export.shapes import InputSpec
from trisr.runtime.devices import device_descriptor
from trisr.runtime.timing import TimingProtocol, combine_repetitions

BENCH_SCHEMA_VERSION = 1
BASELINE_STATUS = "baseline"
LOAD_FAILED = "load failed"


@dataclass
class BenchRow:
    format: str
    precision: str
    backend: str
    device: str
    status: str
    reason: str | None = None
    artifact: str | None = None
    size_mb: float | None = None
    export_s: float | None = None
    compile_s: float | None = None  # session creation / compile / engine load: never inside latency
    psnr_db: float | None = None
    psnr_loss_db: float | None = None  # against PyTorch fp32, same tiles
    max_abs: float | None = None
    psnr_vs_torch_db: float | None = None
    latency_median_ms: float | None = None  # median of the repetition medians; model only, host buffers
    latency_p10_ms: float | None = None  # median of the repetition p10s
    latency_p90_ms: float | None = None  # median of the repetition p90s
    latency_cv: float | None = None  # coefficient of variation of the repetition medians
    latency_rep_medians_ms: list[float] = field(default_factory=list)
    latency_dropped_reps: int | None = None
    runs: int | None = None
    stable: bool | None = None
    throughput_img_s: float | None = None  # batch 1: 1000 / latency_median_ms
    achieved_gflop_s: float | None = None  # 2 * MACs / latency
    lut_predicted_ms: float | None = None
    lut_error_pct: float | None = None  # (predicted - measured) / measured
    runtime: dict = field(default_factory=dict)
    correction: str | None = None  # the kernel whose correction filter is folded in at the input (--kernel)
    weights: str | None = None  # "qat": the int8 row of the quantization-aware fine-tuned weights (--qat RUN)
    attainable_gflop_s: float | None = None  # best matrix-product GFLOP/s of any runtime at this row's runtime precision
    attainable_pct: float | None = None  # achieved_gflop_s / attainable_gflop_s
    attainable_ref: str | None = None  # which runtime reached it

    @property
    def failed(self) -> bool:
        return self.status in (EXPORT_FAILED, VERIFY_FAILED, LOAD_FAILED)


def _format_device(fmt: Format, device: str) -> str:
    return device if device in fmt.devices else fmt.devices[0]


def _jobs(formats: list[Format], precisions: list[str] | None) -> list[tuple[Format, str | None, str | None]]:
    """(format, precision, reason-if-unavailable) per row to produce."""
    jobs = []
    for fmt in formats:
        if precisions is None:
            jobs.append((fmt, fmt.default_precision, None))
            continue
        mine = [p for p in precisions if p in fmt.precisions]
        if not mine:
            jobs.append((fmt, None, f"{fmt.name} supports {', '.join(fmt.precisions)} only"))
        jobs += [(fmt, p, None) for p in mine]
    return jobs


def _one_line(exc: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _record_export(row: BenchRow, result):
    """Fill ``row`` from an export result and load its runner (None, with the row marked, when loading fails)."""
    v = result.verification
    row.status, row.reason = result.status, result.reason
    row.artifact, row.size_mb, row.export_s = str(result.artifact), result.size_mb, result.export_s
    row.psnr_db, row.psnr_loss_db, row.max_abs, row.psnr_vs_torch_db = v.psnr_db, v.psnr_loss_db, v.max_abs, v.psnr_vs_torch_db
    try:
        runner = result.model.runner()
        row.compile_s, row.runtime = runner.compile_s, result.model.describe()
    except Exception as exc:  # noqa: BLE001 - one broken format must not stop the benchmark
        row.status, row.reason = LOAD_FAILED, _one_line(exc)
        return None
    return runner


def bench_protocol(window_s: float, warmup_s: float = 0.2) -> TimingProtocol:
    """One timed window per ``Runner.time`` call: bench repeats the calls itself, interleaved across rows."""
    return replace(TimingProtocol(), window_s=window_s, repeats=1, warmup_s=min(warmup_s, window_s))


def _aggregate(row: BenchRow, timings: list, macs: int) -> None:
    """The repetitions combined by :func:`trisr.runtime.timing.combine_repetitions` (slow ones dropped by the
    1.25x rule, deployment.md §5.2-5.3); p10/p90 = medians of the kept repetitions' p10s/p90s."""
    agg = combine_repetitions(timings)
    row.latency_rep_medians_ms = agg["rep_medians_ms"]
    row.latency_dropped_reps = agg["dropped_reps"]
    row.latency_median_ms = agg["median_ms"]
    row.latency_p10_ms = agg["p10_ms"]
    row.latency_p90_ms = agg["p90_ms"]
    row.latency_cv = agg["cv"]
    row.runs = agg["n"]
    row.stable = agg["stable"]
    row.throughput_img_s = 1000.0 / row.latency_median_ms
    row.achieved_gflop_s = 2.0 * macs / (row.latency_median_ms * 1e6)


def bench_run(
    run: Path,
    formats: list[Format],
    precisions: list[str] | None = None,
    spec: InputSpec = InputSpec(),
    device: str = "cpu",
    threads: int | None = None,
    protocol: TimingProtocol | None = None,
    reps: int = 5,
    out: Path = Path("export"),
    lut_path: Path | None = None,
    options: ExportOptions = ExportOptions(),
    log=None,
    correction=None,
    peak_n: int | None = None,
    qat_run: Path | None = None,
) -> dict:
    """Export, verify, load and time ``run`` in every requested format; returns the JSON report. With
    ``correction`` (a KernelSpec), every row is measured a second time with that kernel's correction filter folded
    in, interleaved with the plain rows, so its latency cost is read side by side (int8 rows skip it). With
    ``peak_n``, an ``n``-cube matrix product is timed after the rows in every (runtime, precision) they ran at, and
    each row gets its share of the best of them at its own precision (:mod:`trisr.export.peak`). With ``qat_run``
    (``trisr train RUN --qat``'s output: the same architecture, QAT-adapted weights), every int8 row is measured a
    second time from those weights, labelled ``qat``: verified against its own PyTorch weights, its ΔPSNR taken
    against *this* run's PyTorch fp32, so PTQ and QAT rows read against the same float network."""
    from trisr.data.pairs import load_pairs
    from trisr.versions import tool_versions
    from trisr.export.verify import TorchReference
    from trisr.runtime.base import create_backend
    from trisr.rundir import load_model, read_summary
    from trisr.space.count import count_macs, count_params

    log = log or (lambda msg: None)
    protocol = protocol or bench_protocol(0.5)
    from trisr.checks import check_out_dir, check_threads

    if reps < 1:
        raise TrisrError("--reps must be >= 1")
    check_threads(threads)
    check_out_dir(out)
    t_start = time.perf_counter()
    model = load_model(run, "cpu")
    arch = model.arch
    scale = arch.scale
    nchw = spec.nchw(spec.shape)
    macs = count_macs(model, nchw)
    lut: LutPrediction | None = lut_prediction(arch, lut_path, spec.shape)  # fail before any work
    reference = TorchReference(model, load_pairs(None, scale, "val"), scale)

    rows: list[BenchRow] = []
    runners: list = []  # (row, Runner) to time
    torch_device = "cuda" if device == "jetson" else device  # a Jetson's PyTorch runs on its GPU
    variants = [(None, model, reference)]
    qat_model = None
    if qat_run is not None:
        qat_model = load_model(qat_run, "cpu")
        if qat_model.arch.digest() != arch.digest():
            raise TrisrError(f"--qat {qat_run} holds another architecture ({qat_model.arch.digest()}) than {run} ({arch.digest()})")
        if "qat" not in read_summary(Path(qat_run)):
            raise TrisrError(f"--qat {qat_run} is not a quantization-aware fine-tuned run (trisr train RUN --qat --out DIR)")
    if correction is not None:
        from trisr.correction.fold import fold_correction
        from trisr.correction.kernels import degraded_pairs

        folded = fold_correction(model, correction)
        variants.append((correction, folded, TorchReference(folded, degraded_pairs(reference.pairs, correction, scale), scale)))
    row_macs: dict[int, int] = {}  # the folded filter adds 3 * taps MACs per LR pixel
    for corr, net, ref in variants:
        label = None if corr is None else corr.describe()
        extra_macs = 0 if net is model else 3 * net.filter.taps_per_pixel * spec.shape[0] * spec.shape[1]
        torch_backend = create_backend(BASELINE, torch_device, threads, "fp32")
        base = BenchRow(BASELINE, "fp32", BASELINE, torch_device, BASELINE_STATUS, runtime=torch_backend.describe(), correction=label)
        base.psnr_db = float(np.mean([ref.psnr_db(i, spec.shape) for i in range(len(ref.pairs))]))
        rows.append(base)
        base_runner = torch_backend.load(None, net, nchw)
        base.compile_s = base_runner.compile_s
        runners.append((base, base_runner))

        for fmt, precision, reason in _jobs(formats, precisions):
            dev = _format_device(fmt, device)
            row = BenchRow(fmt.name, precision or "-", fmt.backend, dev, UNAVAILABLE, reason, correction=label)
            rows.append(row)
            if reason is not None:
                continue
            row.reason = fmt.missing(precision, dev)
            if row.reason is None and corr is not None and (precision or fmt.default_precision) == "int8":
                row.reason = "the correction filter is not folded into int8 artifacts yet"
            if row.reason is not None:
                continue
            try:
                result = export_run(
                    ExportRequest(run, fmt, precision, spec, out, options, dev, threads, corr), net, ref, log
                )
            except TrisrError as exc:
                from trisr.runtime.base import RuntimeUnavailable

                row.status = UNAVAILABLE if isinstance(exc, RuntimeUnavailable) else EXPORT_FAILED
                row.reason = str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - one broken format must not stop the benchmark
                row.status, row.reason = EXPORT_FAILED, _one_line(exc)
                log(f"{fmt.name} {precision}: {row.reason}\n{traceback.format_exc(limit=3)}")
                continue
            runner = _record_export(row, result)
            if runner is None:
                continue
            runners.append((row, runner))
            row_macs[id(row)] = macs + extra_macs
        row_macs[id(base)] = macs + extra_macs

    if qat_model is not None:
        qat_ref = TorchReference(qat_model, reference.pairs, scale)
        for fmt, precision, _ in _jobs(formats, ["int8"]):
            if precision is None:
                continue
            dev = _format_device(fmt, device)
            row = BenchRow(fmt.name, precision, fmt.backend, dev, UNAVAILABLE, fmt.missing(precision, dev), weights="qat")
            rows.append(row)
            if row.reason is not None:
                continue
            try:
                result = export_run(ExportRequest(Path(qat_run), fmt, precision, spec, out, options, dev, threads), qat_model, qat_ref, log)
            except Exception as exc:  # noqa: BLE001 - one broken format must not stop the benchmark
                row.status, row.reason = EXPORT_FAILED, _one_line(exc)
                continue
            runner = _record_export(row, result)
            row.psnr_loss_db = rows[0].psnr_db - row.psnr_db  # against this run's PyTorch fp32 (rows[0]), same tiles
            if runner is None:
                continue
            runners.append((row, runner))
            row_macs[id(row)] = macs

    timings: dict[int, list] = {id(r): [] for r, _ in runners}
    for rep in range(reps):
        log(f"timing repetition {rep + 1}/{reps} ({len(runners)} rows)")
        for row, runner in runners:
            timings[id(row)].append(runner.time(protocol))
    for row, _ in runners:
        _aggregate(row, timings[id(row)], row_macs[id(row)])
        if row.correction is None and row.weights is None and lut is not None and lut.predicted_ms is not None and lut.applies_to(row.backend, row.precision, threads):
            row.lut_predicted_ms = lut.predicted_ms
            row.lut_error_pct = 100.0 * (lut.predicted_ms - row.latency_median_ms) / row.latency_median_ms

    peaks = []
    if peak_n:
        from trisr.export.peak import attainable, measure_peaks

        timed = [r for r, _ in runners if r.latency_median_ms is not None]

        def compute_precision(r: BenchRow) -> str:
            # An int8 artifact's quantized ops compute in int8 whatever the runtime's float hint; fp16-weight
            # OpenVINO artifacts compute in the runtime precision (f32). A bf16 row runs the bf16 hint.
            return "int8" if r.precision == "int8" else r.runtime.get("precision", r.precision)

        targets = [(r.backend, compute_precision(r)) for r in timed]
        targets += [(b, p) for b, p in (("onnxruntime", "fp32"), ("openvino", "fp32")) if (b, p) not in targets]
        log(f"matrix-product references ({peak_n}^3) in {len(set(targets))} runtime/precision pairs")
        peaks = measure_peaks(targets, "cpu" if device == "jetson" else torch_device, threads, peak_n, protocol, reps, log)
        for r in timed:
            ref = attainable(peaks, compute_precision(r))
            if ref is not None:
                r.attainable_gflop_s, r.attainable_ref = ref.gflop_s, f"{ref.backend} {ref.precision}"
                r.attainable_pct = 100.0 * r.achieved_gflop_s / ref.gflop_s

    return {
        "schema_version": BENCH_SCHEMA_VERSION,
        "kind": "trisr-bench",
        "run": str(Path(run).resolve()),
        **({"genotype_digest": arch.digest()} if arch.kind == "trisr" else {}),
        "arch": {"kind": arch.kind, "digest": arch.digest(), **({"family": arch.family, "knobs": arch.knobs} if arch.kind == "zoo" else {})},
        "scale": scale,
        "params": count_params(model),
        "macs": macs,
        "input": spec.to_dict(),
        "device": device_descriptor(device, threads),
        "protocol": {**protocol.to_dict(), "reps": reps, "interleaved": True},
        "lut": None if lut is None else lut.to_dict(),
        "lut_note": lut.reason if lut is not None else "no --lut given",
        "psnr_metric": "Y (BT.601 studio), crop = scale, 8-bit output; held-out images in tiles of the input size",
        "rows": [asdict(r) for r in rows],
        "peaks": [p.to_dict() for p in peaks],
        "versions": tool_versions(),
        "wall_s": time.perf_counter() - t_start,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def failed_rows(report: dict) -> list[dict]:
    return [r for r in report["rows"] if r["status"] in (EXPORT_FAILED, VERIFY_FAILED, LOAD_FAILED)]


STATUS_LABEL = {VERIFIED: "[green]✅ verified", VERIFY_FAILED: "[yellow]❎ verify failed", EXPORT_FAILED: "[red]❌ export failed",
                LOAD_FAILED: "[red]❌ load failed", UNAVAILABLE: "[dim]– unavailable", BASELINE_STATUS: "[cyan]● baseline"}
TABLE_WIDTH = 150


def render_table(report: dict):
    from rich.table import Table

    h, w = InputSpec.from_dict(report["input"]).shape
    dev = report["device"]
    where = dev["cpu"] if dev["device"] == "cpu" else dev.get("gpu", {}).get("gpu", dev["device"])
    t = Table(
        title=f"trisr bench: {Path(report['run']).name} x{report['scale']} @ {h}x{w} LR, {where}, {dev['threads']} threads",
        caption=(f"latency: model only, batch 1, host buffers; median of {report['protocol']['reps']} interleaved repetitions "
                 "(p90: median of their p90s); img/s = 1000 / median; compile time apart; ΔPSNR against PyTorch on the same tiles; "
                 "GFLOP/s = 2 x MACs / median; % attain. = of the best matrix product any runtime reached at the row's runtime precision"
                 + "".join(f"; {p['backend']} {p['precision']} {p['n']}^3: {p['gflop_s']:.0f} GFLOP/s" for p in report.get("peaks", []))),
    )
    for col in ("format", "status", "size MB", "PSNR dB", "ΔPSNR dB", "median ms", "p90 ms", "img/s", "GFLOP/s",
                "% attain.", "compile s", "LUT ms", "LUT err"):
        t.add_column(col, justify="left" if col in ("format", "status") else "right", no_wrap=True)

    def f(v, spec):
        return "-" if v is None else format(v, spec)

    for r in report["rows"]:
        t.add_row(
            _label(r), STATUS_LABEL.get(r["status"], r["status"]), f(r["size_mb"], ".3f"),
            f(r["psnr_db"], ".3f"), f(None if r["psnr_loss_db"] is None else -r["psnr_loss_db"], "+.3f"),
            f(r["latency_median_ms"], ".2f"), f(r["latency_p90_ms"], ".2f"), f(r["throughput_img_s"], ".1f"),
            f(r.get("achieved_gflop_s"), ".0f"), "-" if r.get("attainable_pct") is None else f"{r['attainable_pct']:.0f} %",
            f(r["compile_s"], ".2f"), f(r["lut_predicted_ms"], ".2f"),
            "-" if r["lut_error_pct"] is None else f"{r['lut_error_pct']:+.1f} %",
        )
    return t


def reasons(report: dict) -> list[str]:
    """One line per row that did not produce numbers (or failed verification), with its reason."""
    return [f"{_label(r)}: {r['status']}: {r['reason']}" for r in report["rows"] if r["reason"]]


def _label(r: dict) -> str:
    """``onnx int8``, ``onnx int8 QAT``, ``onnx fp32 +gaussian:1.6``."""
    return (f"{r['format']} {r['precision']}" + (" QAT" if r.get("weights") == "qat" else "")
            + (f" +{r['correction']}" if r.get("correction") else ""))
