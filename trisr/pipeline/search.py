"""A search under a deployment target: what ``trisr search`` and ``trisr deploy`` run.

With a latency budget the target is resolved (:mod:`trisr.pipeline.target`), recorded in ``RUN/target.json`` and
checked on a resume; derivation measures its pick in the target runtime; the summary gets the measured latency
against the budget and the held-out PSNR of what ships (the exported artifact at the table's precision); an int8
target then runs quantization-aware fine-tuning into ``RUN/qat``. The run folder is owned for the whole command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trisr.errors import TrisrError
from trisr.lock import locked
from trisr.pipeline.target import (
    ResolvedTarget, TargetRequest, check_resumed, load_target, request_for_resume, resolve_target,
)
from trisr.progress import Reporter


@dataclass(frozen=True)
class SearchRequest:
    cfg: object  # trisr.search.config.RunConfig, every flag applied
    out: Path
    data: Path | None = None
    resume: bool = False
    target: TargetRequest = TargetRequest()
    train_device: str = "cpu"  # where PyTorch trains (resolved: cpu or cuda)
    qat_steps: int | None = None  # int8 targets: QAT steps after the search (None: the default; 0: none)
    table_resolution: bool = False  # take the cost resolution from --profile's table (no --cost-resolution given)


def run_config_for(req: SearchRequest):
    """The configuration the run goes with: a resume's own (``RUN/config.json``), else the request's."""
    from trisr.rundir import CONFIG_FILE
    from trisr.search.config import RunConfig

    if req.resume and (req.out / CONFIG_FILE).exists():
        return RunConfig.load(req.out / CONFIG_FILE)
    return req.cfg


def resolve_for_run(req: SearchRequest, cfg, reporter: Reporter) -> ResolvedTarget:
    """The target of a latency-budget run; on a resume, the run's own (flags that differ are refused)."""
    saved = load_target(req.out) if req.resume else None
    resolved = resolve_target(cfg.space, cfg.cost_resolution, request_for_resume(saved, req.target), reporter)
    check_resumed(saved, resolved.target)
    return resolved


def run_search(req: SearchRequest, reporter: Reporter) -> dict:
    """Search, derive, fine-tune and evaluate into ``req.out``; returns the run summary (``{}`` on ranks > 0)."""
    from trisr.checks import check_out_dir
    from trisr.search.engine import SearchRun

    with locked(check_out_dir(req.out), "run folder"):
        cfg = run_config_for(req)
        resolved = None
        if cfg.budget_metric == "latency_ms":
            if req.table_resolution and req.target.profile is not None and not req.resume:
                from trisr.profile.lut import load_lut

                cfg = cfg.replace(cost_resolution=tuple(load_lut(req.target.profile).resolution))  # the table's size
            resolved = resolve_for_run(req, cfg, reporter)
            h, w = resolved.lut.resolution
            rt = resolved.runtime
            reporter.message(f"latency budget {cfg.budget:g} ms on {rt.name}/{rt.device} {rt.precision} ({rt.threads} threads) @ {h}x{w} LR")
        elif req.target.precision is not None:
            raise TrisrError("--precision applies to --latency-ms (the precision the latency is measured at)")
        int8 = resolved is not None and resolved.runtime.precision == "int8"
        if req.qat_steps is not None and not int8:
            raise TrisrError("--qat-steps applies to --latency-ms with --precision int8")
        if req.qat_steps is not None and req.qat_steps < 0:
            raise TrisrError("--qat-steps must be >= 0")
        run = SearchRun(cfg, req.out, req.data, resume=req.resume, reporter=reporter, device=req.train_device,
                        **_target_hooks(resolved, cfg, req))
        if resolved is not None and run.info.is_main:
            resolved.target.save(req.out)  # after SearchRun accepted the folder: a refused --out is left as it was
        summary = run.run()
        if not summary:  # non-zero ranks
            return summary
        if resolved is not None:
            summary["target"] = resolved.target.to_dict()
        if int8 and (req.qat_steps is None or req.qat_steps > 0):
            from trisr.quant.fakequant import QAT_STEPS
            from trisr.quant.qat import qat_after_search

            summary.update(qat_after_search(req.out, resolved.runtime, resolved.lut.resolution, req.data, cfg.seed, reporter,
                                            QAT_STEPS if req.qat_steps is None else req.qat_steps, req.train_device))
        if resolved is not None:
            from trisr.rundir import write_summary

            write_summary(req.out, summary)
        return summary


def _target_hooks(resolved: ResolvedTarget | None, cfg, req: SearchRequest) -> dict:
    """SearchRun's cost table, derivation-time measurement and summary additions for a latency target."""
    if resolved is None:
        return {}
    from trisr.data.pairs import load_pairs
    from trisr.profile.target import latency_report, measure_genotype_ms, shipped_metrics

    lut, runtime = resolved.lut, resolved.runtime

    def extra(model) -> dict:
        return {**latency_report(model, lut, runtime, cfg.budget),
                **shipped_metrics(model, runtime, load_pairs(req.data, cfg.space.scale, "val"), cfg.space.scale, lut.resolution, req.out)}

    def measure(genotype) -> float:
        return measure_genotype_ms(runtime, genotype, lut.resolution)

    return {"cost_table": lut.to_cost_table(), "extra_summary": extra, "measure": measure}
