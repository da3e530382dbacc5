"""``trisr deploy``: photos in, a verified artifact and a verdict out, one resumable command.

Stages, each a call into the library (never a second implementation of it):

1. ``table``  — the latency table of this device, runtime and precision: the cached one only after a quick
   re-validation on fresh networks (re-profiled when it mispredicts this machine by more than
   :data:`STALE_RMSPE`), else profiled now.
2. ``search`` — the search under the budget with that table (:func:`trisr.pipeline.search.run_search`) into
   ``OUT/search``; an int8 target adds quantization-aware fine-tuning, whose weights then ship.
3. ``export`` — the network in the chosen format and precision, verified against PyTorch, then scored as it
   ships (the artifact itself, in tiles of its input size) on the held-out photos: PSNR/SSIM beside bicubic.
4. ``bench``  — the run benchmarked in that format beside PyTorch eager and the table's prediction
   (:func:`trisr.export.bench.bench_run`), interleaved repetitions.
5. ``report`` — ``OUT/report.html`` and the run's own report.

``OUT/deploy.json`` holds the settings, every finished stage's record and the verdict, written atomically after
each stage: a killed deploy, rerun with the same command, continues in the stage it stopped in (the search
resumes from its checkpoint) and never redoes a finished one; other settings in the same folder are refused.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

from trisr.errors import TrisrError
from trisr.io import atomic_write_json, read_json
from trisr.lock import locked
from trisr.progress import Reporter

DEPLOY_FILE = "deploy.json"
DEPLOY_SCHEMA_VERSION = 1
STAGES = ("table", "search", "export", "bench", "report")
#: Fresh networks a cached table is re-validated on before a deploy trusts it (0: trust it as it is).
REVALIDATE_N = 3
#: Re-validation RMSPE above which the cached table no longer describes this machine and is profiled again. The
#: tables' own leave-one-out error on a quiet machine is a few per cent; a day-old table on these VMs was 15-25 %
#: off, which is where budgets start to be missed or wasted.
STALE_RMSPE = 0.15
SEARCH_DIR, EXPORT_DIR, BENCH_DIR = "search", "export", "bench"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class DeployRequest:
    device: str  # where the network is deployed and timed
    latency_ms: float
    format: str  # export format name (trisr.export.formats)
    cfg: object  # RunConfig of the search (preset and overrides applied; the budget is set here)
    out: Path
    precision: str | None = None  # default: the runtime's own on this device, where the format has it
    data: Path | None = None
    threads: int | None = None
    profile: Path | None = None
    profiles: Path | None = None
    allow_mismatch: bool = False
    train_device: str = "cpu"  # where PyTorch trains: not a setting of the result
    revalidate: int = REVALIDATE_N
    reps: int = 5
    qat_steps: int | None = None

    def settings(self) -> dict:
        """What a resume must match (everything that changes the result)."""
        return {
            "device": self.device, "latency_ms": self.latency_ms, "format": self.format, "precision": self.precision,
            "data": None if self.data is None else str(self.data), "threads": self.threads,
            "profile": None if self.profile is None else str(self.profile), "allow_mismatch": self.allow_mismatch,
            "revalidate": self.revalidate, "reps": self.reps, "qat_steps": self.qat_steps,
            "config": json.loads(self.cfg.to_json()),
        }


def _fail_on_bad_request(req: DeployRequest) -> None:
    import math

    if not (math.isfinite(req.latency_ms) and req.latency_ms > 0):
        raise TrisrError(f"--latency-ms must be a finite positive budget, got {req.latency_ms}")
    if req.revalidate < 0 or req.reps < 1:
        raise TrisrError("--revalidate must be >= 0 and --reps >= 1")


def resolve_format(req: DeployRequest):
    """The format and precision that ship, checked before any work: the format runs on ``req.device``, its runtime
    is installed (else one line naming what to install), it has the precision."""
    from trisr.export.formats import get_format
    from trisr.runtime.base import create_backend

    fmt = get_format(req.format)
    if req.device not in fmt.devices:
        raise TrisrError(f"format {fmt.name} runs on {', '.join(fmt.devices)}, not --device {req.device}")
    fmt.require(None, req.device)
    precision = req.precision
    if precision is None:
        own = create_backend(fmt.backend, req.device, req.threads).precision  # what `trisr profile` measures by default
        precision = own if own in fmt.precisions else fmt.default_precision
    precision = fmt.check_precision(precision.lower())
    fmt.require(precision, req.device)
    return fmt, precision


class Deploy:
    """One deploy folder: its state file and its stages (see the module docstring)."""

    def __init__(self, req: DeployRequest, reporter: Reporter) -> None:
        from trisr.checks import check_out_dir

        _fail_on_bad_request(req)
        self.req, self.reporter = req, reporter
        self.out = check_out_dir(req.out)
        self.fmt, self.precision = resolve_format(req)
        cfg = req.cfg
        if req.profile is not None:
            from trisr.profile.lut import load_lut

            cfg = cfg.replace(cost_resolution=tuple(load_lut(req.profile).resolution))  # the table's deployment size
        self.cfg = cfg.replace(budget_metric="latency_ms", budget=float(req.latency_ms))
        self.state = self._load_state()

    # -- state ---------------------------------------------------------------------------------------------

    def _load_state(self) -> dict:
        settings = {**self.req.settings(), "precision": self.precision}
        path = self.out / DEPLOY_FILE
        state = read_json(path, "deploy state") if path.exists() else None
        if state is None or (isinstance(state, dict) and not state.get("stages")):
            # Nothing finished yet (e.g. the first attempt was refused in its table stage): new settings may start over.
            return {"schema_version": DEPLOY_SCHEMA_VERSION, "kind": "trisr-deploy", "settings": settings, "stages": {},
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "elapsed_s": {}}
        if not isinstance(state, dict) or state.get("schema_version") != DEPLOY_SCHEMA_VERSION:
            raise TrisrError(f"{path} is not a deploy state file of this trisr version")
        if state.get("settings") != json.loads(json.dumps(settings)):
            old = state.get("settings") or {}
            differ = sorted(k for k in set(old) | set(settings) if json.dumps(old.get(k), sort_keys=True) != json.dumps(settings.get(k), sort_keys=True))
            raise TrisrError(f"{self.out} holds a deploy with other settings ({', '.join(differ)} differ); rerun it with "
                             "its own settings to resume, or choose another --out")
        return state

    def _save(self) -> None:
        atomic_write_json(self.out / DEPLOY_FILE, self.state)

    def run(self) -> dict:
        with locked(self.out, "deploy folder"):
            self.out.mkdir(parents=True, exist_ok=True)
            self._save()
            for i, stage in enumerate(STAGES, 1):
                if stage in self.state["stages"]:
                    self.reporter.message(f"stage {i}/{len(STAGES)} {stage}: finished before, kept")
                    continue
                self.reporter.message(f"stage {i}/{len(STAGES)}: {stage}")
                t0 = time.time()
                self.state["stages"][stage] = getattr(self, f"_{stage}")()
                self.state["elapsed_s"][stage] = time.time() - t0
                self._save()
            self.state["verdict"] = self.verdict()
            self._save()
            return self.state

    # -- stages --------------------------------------------------------------------------------------------

    def _target_request(self, profile: Path | None):
        from trisr.pipeline.target import TargetRequest

        r = self.req
        return TargetRequest(r.device, self.fmt.backend, r.threads, self.precision, profile, r.profiles, r.allow_mismatch)

    def _table(self) -> dict:
        from trisr.pipeline.target import resolve_target, table_digest
        from trisr.profile.lut import default_lut_path
        from trisr.profile.profiler import profile, validate_lut
        from trisr.profile.target import make_backend
        from trisr.runtime.timing import TimingProtocol

        r, space, hw = self.req, self.cfg.space, tuple(self.cfg.cost_resolution)
        runtime = make_backend(r.device, self.fmt.backend, r.threads, self.precision)
        path = r.profile or default_lut_path(runtime.describe(), space, hw, r.profiles)
        cached = path.exists()
        resolved = resolve_target(space, hw, self._target_request(r.profile), self.reporter)
        record: dict = {"cached": cached, "revalidation": None, "reprofiled": False}
        if cached and r.revalidate > 0:
            # On a copy: the check must not change the cached table (its digest names it in every run's target).
            card = validate_lut(copy.deepcopy(resolved.lut), resolved.runtime, r.revalidate, self.cfg.seed + 1,
                                TimingProtocol(), self.reporter)
            record["revalidation"] = {"n": card["n"], "rmspe_pct": 100 * card["rmspe"], "max_abs_err_pct": card["max_abs_err_pct"],
                                      "networks": card["networks"], "threshold_pct": 100 * STALE_RMSPE}
            self.reporter.message(f"cached table {path}: RMSPE {100 * card['rmspe']:.1f} % on {card['n']} fresh networks")
            if card["rmspe"] > STALE_RMSPE:
                self.reporter.message(f"the table no longer describes this machine (> {100 * STALE_RMSPE:.0f} %): profiling again")
                fresh = profile(space, resolved.runtime, hw, TimingProtocol(), calibrate=20, reporter=self.reporter)
                # A given --profile is the user's file: the fresh table goes into the deploy folder instead.
                path = self.out / "table.json" if r.profile is not None else path
                with locked(path, "file"):
                    fresh.save(path)
                resolved = resolve_target(space, hw, self._target_request(path), self.reporter)
                record["reprofiled"] = True
        record.update(path=str(resolved.path), digest=table_digest(resolved.lut), target=resolved.target.to_dict())
        return record

    def _search(self) -> dict:
        from trisr.pipeline.search import SearchRequest, run_search
        from trisr.rundir import CHECKPOINT_FILE

        run = self.out / SEARCH_DIR
        table = Path(self.state["stages"]["table"]["path"])
        req = SearchRequest(self.cfg, run, self.req.data, (run / CHECKPOINT_FILE).exists(), self._target_request(table),
                            self.req.train_device, self.req.qat_steps)
        s = run_search(req, self.reporter)
        lat = s.get("latency") or {}
        return {
            "run": str(run), "genotype": (s.get("genotype") or {}).get("path"), "params": s["params"], "macs": s["macs"],
            "predicted_ms": lat.get("predicted_ms"), "measured_ms": (lat.get("measured") or {}).get("median_ms"),
            "verdict": lat.get("verdict"), "metrics": {k: s["metrics"][k] for k in ("psnr_db", "ssim", "bicubic_psnr_db", "bicubic_ssim", "gain_db")},
            "qat": "qat" in s,
        }

    def _shipped_run(self) -> Path:
        from trisr.quant.qat import QAT_DIR

        run = Path(self.state["stages"]["search"]["run"])
        return run / QAT_DIR if self.state["stages"]["search"].get("qat") else run

    def _export(self) -> dict:
        from trisr.data.pairs import load_pairs
        from trisr.evaluate import evaluate_sr
        from trisr.export.pipeline import ExportRequest, export_run
        from trisr.export.shapes import InputSpec
        from trisr.export.verify import TorchReference
        from trisr.rundir import load_model

        run = self._shipped_run()
        model = load_model(run, "cpu")
        scale = model.arch.scale
        pairs = load_pairs(self.req.data, scale, "val")
        spec = InputSpec(tuple(self.cfg.cost_resolution))
        result = export_run(ExportRequest(run, self.fmt, self.precision, spec, self.out / EXPORT_DIR, device=self.req.device,
                                          threads=self.req.threads), model, TorchReference(model, pairs, scale),
                            log=self.reporter.message)
        record = {"run": str(run), "weights": "qat" if run.name != SEARCH_DIR else "search", **result.to_dict(),
                  "verified_summary": None if result.verification is None else result.verification.summary()}
        if result.ok:
            self.reporter.message(f"scoring {result.artifact.name} as it ships on {len(pairs)} held-out image(s)")
            m = evaluate_sr(result.model.upscale, pairs, scale)
            record["metrics_shipped"] = {k: m[k] for k in ("psnr_db", "ssim", "bicubic_psnr_db", "bicubic_ssim", "gain_db")}
            record["metrics_shipped"]["images"] = m["images"]
        return record

    def _bench(self) -> dict:
        from trisr.export.bench import bench_protocol, bench_run
        from trisr.export.formats import BASELINE
        from trisr.export.shapes import InputSpec

        report = bench_run(self._shipped_run(), [self.fmt], [self.precision], InputSpec(tuple(self.cfg.cost_resolution)),
                           self.req.device, self.req.threads, bench_protocol(0.5), self.req.reps, self.out / BENCH_DIR,
                           Path(self.state["stages"]["table"]["path"]), log=self.reporter.message)
        atomic_write_json(self.out / BENCH_DIR / "bench.json", report)
        rows = report["rows"]
        row = next(r for r in rows if r["format"] == self.fmt.name and r.get("correction") is None and r.get("weights") is None)
        base = next(r for r in rows if r["format"] == BASELINE)
        return {
            "report": str(self.out / BENCH_DIR / "bench.json"), "status": row["status"], "reason": row["reason"],
            "median_ms": row["latency_median_ms"], "p10_ms": row["latency_p10_ms"], "p90_ms": row["latency_p90_ms"],
            "rep_medians_ms": row["latency_rep_medians_ms"], "predicted_ms": row["lut_predicted_ms"],
            "lut_error_pct": row["lut_error_pct"], "pytorch_eager_ms": base["latency_median_ms"],
            "pytorch_eager_device": base["device"], "runtime": row["runtime"],
        }

    def _report(self) -> dict:
        from trisr.report.deploy_report import write_deploy_report
        from trisr.report.run_report import write_run_report

        run_report = write_run_report(Path(self.state["stages"]["search"]["run"]))
        self.state["verdict"] = self.verdict()
        figures = {k: v for k, v in run_report.items() if k not in ("markdown", "html")}
        path = write_deploy_report(self.state, self.out / REPORT_FILE, Path(run_report["html"]), figures)
        return {"html": str(path), "run_report": str(run_report["html"])}

    # -- verdict -------------------------------------------------------------------------------------------

    def verdict(self) -> dict:
        st = self.state["stages"]
        exp, bench = st.get("export") or {}, st.get("bench") or {}
        shipped = exp.get("metrics_shipped") or {}
        measured = bench.get("median_ms")
        reasons = []
        if exp and exp.get("status") != "exported+verified":
            reasons.append(f"export {exp.get('status')}: {exp.get('reason')}")
        if bench and measured is None:
            reasons.append(f"benchmark {bench.get('status')}: {bench.get('reason')}")
        if measured is not None and measured > self.req.latency_ms:
            reasons.append(f"measured {measured:.2f} ms > budget {self.req.latency_ms:g} ms")
        done = "bench" in st
        return {
            "budget_ms": self.req.latency_ms, "device": self.req.device, "format": self.fmt.name, "precision": self.precision,
            "backend": self.fmt.backend, "measured_ms": measured, "p10_ms": bench.get("p10_ms"), "p90_ms": bench.get("p90_ms"),
            "predicted_ms": bench.get("predicted_ms"), "pytorch_eager_ms": bench.get("pytorch_eager_ms"),
            "psnr_db": shipped.get("psnr_db"), "ssim": shipped.get("ssim"), "bicubic_psnr_db": shipped.get("bicubic_psnr_db"),
            "bicubic_ssim": shipped.get("bicubic_ssim"), "gain_db": shipped.get("gain_db"), "artifact": exp.get("artifact"),
            "verdict": None if not done else ("FAIL" if reasons else "PASS"), "reasons": reasons,
            "wall_s": sum(self.state["elapsed_s"].values()),
        }


def run_deploy(req: DeployRequest, reporter: Reporter | None = None) -> dict:
    """Run or resume the deploy in ``req.out``; returns the state (``["verdict"]`` is the result)."""
    return Deploy(req, reporter or Reporter()).run()
