"""``trisr study``: searched networks beside the zoo and random picks, all trained with one recipe and step
count, all exported and timed the same way in the target runtime, scored on the held-out photos.

Layout of a study folder::

    OUT/settings.json        the StudyConfig (a resumed study must match it)
    OUT/zoo_latency.json     measured latency of zoo rungs in the target runtime (scaling zoo nets to budgets)
    OUT/runs/<row>/          one run folder per network (searched, zoo, random, bicubic), each resumable
    OUT/artifacts/<row>/     the exported, verified artifact that was timed
    OUT/crops/<budget>/      bicubic / best zoo / searched / HR crops of one held-out photo
    OUT/study.json           one row per network + verdicts (schema-versioned); then report.md/html, pareto.png

A killed study continues where it stopped: finished run folders are read back (never retrained), a half-trained
one continues from its checkpoint; exports and timing are redone together at the end so that every network is
timed in the same session.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from trisr.errors import BudgetError, TrisrError
from trisr.progress import Reporter
from trisr.io import atomic_write_json
from trisr.study.config import GOAL_DB, SETTINGS_FILE, STUDY_FILE, STUDY_SCHEMA_VERSION, StudyConfig

STATE_FILE = "state.json"
CROP_SIZE = 64  # LR pixels of the crop panels (HR crop = CROP_SIZE * scale)


@dataclass
class Job:
    """One network of the study. ``arch`` is a Genotype or a ZooSpec (None for searched: the search makes it)."""

    name: str
    kind: str  # searched (trilevel) | strategy (another search strategy) | zoo | random | bicubic
    folder: Path
    budgets_ms: list[float] = field(default_factory=list)
    arch: object | None = None
    family: str | None = None
    config: dict | None = None
    predicted_ms: float | None = None
    status: str = "pending"
    reason: str | None = None
    strategy: str | None = None  # searched and strategy rows


class StudyReporter(Reporter):
    """Prefixes every phase of the inner work with the study's position and elapsed time, so the progress
    bar always shows how far the whole study is; row results are printed as they finish."""

    def __init__(self, inner: Reporter, total: int, t0: float) -> None:
        self.inner, self.total, self.t0, self.done = inner, total, t0, 0

    def _prefix(self) -> str:
        from rich.markup import escape

        m, s = divmod(int(time.time() - self.t0), 60)
        return escape(f"[study {self.done}/{self.total} · {m}m{s:02d}s] ")  # brackets are rich markup otherwise

    def phase(self, name, total, done=0):
        self.inner.phase(self._prefix() + name, total, done)

    def step(self, done, metrics):
        self.inner.step(done, metrics)

    def end_phase(self):
        self.inner.end_phase()

    def message(self, text):
        self.inner.message(self._prefix() + text)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def _check_settings(cfg: StudyConfig, out: Path) -> None:
    if (out / SETTINGS_FILE).exists():
        old = StudyConfig.load(out)
        if old != cfg:
            diff = [k for k, v in cfg.to_dict().items() if old.to_dict().get(k) != v]
            raise TrisrError(
                f"{out} holds a study with other settings ({', '.join(diff)} differ); "
                "rerun with the same settings to resume, or choose another --out"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out)


def _run_config(cfg: StudyConfig, resolution: tuple[int, int]):
    from trisr.search.config import RunConfig, preset

    run_cfg = RunConfig.load(cfg.config) if cfg.config else preset(cfg.preset)
    # Every network of a study trains the same steps, searched ones too: no time limit (the cpu preset's would cut
    # a slow searched network's fine-tune and not the zoo's).
    changes: dict = {"seed": cfg.seed, "cost_resolution": tuple(resolution), "max_wall_min": 0.0}
    if cfg.scale is not None:
        changes["space"] = run_cfg.space.replace(scale=cfg.scale)
    for name in ("warmup", "search", "finetune"):
        steps = getattr(cfg, f"{name}_steps")
        if steps is not None:
            changes[name] = replace(getattr(run_cfg, name), steps=steps)
    return run_cfg.replace(**changes)


def plan_jobs(cfg: StudyConfig, run_cfg, lut, backend, out: Path, reporter: Reporter) -> list[Job]:
    """Every network of the study, in training order: bicubic, then per budget the searched network and the other
    strategies' networks, the zoo families scaled to it by measured latency, and the random picks in its band."""
    from trisr.space.cost import CostModel
    from trisr.space.sample import sample_in_band, space_tree
    from trisr.study.fit import CACHE_FILE, LatencyCache, fit_family
    from trisr.zoo import ZooSpec

    space = run_cfg.space
    runs = out / "runs"
    jobs = [Job("bicubic", "bicubic", runs / "bicubic", arch=ZooSpec("bicubic", space.scale, {}), family="bicubic", config={})]
    cache = LatencyCache(out / CACHE_FILE, backend.describe())
    fits = {f: fit_family(f, space.scale, list(cfg.budgets_ms), backend, cfg.resolution, cache, reporter) for f in cfg.zoo}
    zoo_jobs: dict[str, Job] = {}
    cost_model = CostModel(lut.to_cost_table(), space, space_tree(space))
    for b in cfg.budgets_ms:
        jobs.append(Job(f"searched@{b:g}ms", "searched", runs / f"searched-{b:g}ms", [b], strategy="trilevel"))
        for s in cfg.strategies[1:]:
            jobs.append(Job(f"{s}@{b:g}ms", "strategy", runs / f"{s}-{b:g}ms", [b], family=s, strategy=s))
        for family in cfg.zoo:
            rung = fits[family][b]
            if rung is None:
                reporter.message(f"{family}: even its smallest configuration is slower than {b:g} ms here; no row at this budget")
                continue
            if rung.digest in zoo_jobs:  # the same configuration fits several budgets: one network, one row
                zoo_jobs[rung.digest].budgets_ms.append(b)
                continue
            spec = ZooSpec(family, space.scale, rung.knobs)
            job = Job(rung.label, "zoo", runs / f"zoo-{_safe(rung.label)}", [b], spec, family, rung.knobs)
            zoo_jobs[rung.digest] = job
            jobs.append(job)
        if cfg.random:
            try:
                picks = sample_in_band(cost_model, 0.9 * b, b, cfg.random, seed=cfg.seed)
            except BudgetError as exc:
                reporter.message(f"random picks at {b:g} ms: {exc}")
                picks = []
            for i, g in enumerate(picks):
                jobs.append(Job(f"random{i}@{b:g}ms", "random", runs / f"random{i}-{b:g}ms", [b], g,
                                predicted_ms=float(lut.predict_ms(g))))
    return jobs


def _train_job(job: Job, cfg: StudyConfig, run_cfg, lut, backend, reporter: Reporter, device: str = "cpu") -> dict:
    """Train (or read back) one network; returns its run summary."""
    from trisr.baselines import train_arch
    from trisr.rundir import CHECKPOINT_FILE, is_finished, read_summary

    data = Path(cfg.data) if cfg.data else None
    if is_finished(job.folder):
        return read_summary(job.folder)
    if job.strategy is not None:
        from trisr.profile.target import latency_report, measure_genotype_ms
        from trisr.search.engine import SearchRun
        from trisr.search.strategies import get_strategy

        b = job.budgets_ms[0]
        run_b = run_cfg.replace(**get_strategy(job.strategy).config_changes(run_cfg), budget_metric="latency_ms",
                                budget=b, cost_resolution=tuple(lut.resolution))
        resume = (job.folder / CHECKPOINT_FILE).exists()
        # As `trisr search --latency-ms`: derivation measures its pick in the target runtime.
        run = SearchRun(run_b, job.folder, data, resume=resume, reporter=reporter, device=device,
                        cost_table=lut.to_cost_table(), extra_summary=lambda m: latency_report(m, lut, backend, b),
                        measure=lambda g: measure_genotype_ms(backend, g, tuple(lut.resolution)))
        return run.run()
    if job.kind == "bicubic":
        return _bicubic_run(job, cfg, run_cfg)
    return train_arch(job.arch, job.folder, run_cfg.recipe(), data=data, seed=cfg.seed, reporter=reporter, device=device)


def _bicubic_run(job: Job, cfg: StudyConfig, run_cfg) -> dict:
    """Bicubic has nothing to train: its run folder holds the fixed network and its held-out scores."""
    from trisr.data.pairs import load_pairs
    from trisr.evaluate import evaluate
    from trisr.rundir import save_model, write_summary
    from trisr.versions import versions
    from trisr.space.count import count_macs, count_params

    model = job.arch.build().eval()
    scale = run_cfg.space.scale
    metrics = evaluate(model, load_pairs(Path(cfg.data) if cfg.data else None, scale, "val"), scale)
    summary = {"origin": "fixed (no parameters)", "params": count_params(model),
               "macs": count_macs(model, (1, 3, 256, 256)), "macs_resolution": [256, 256], "metrics": metrics,
               "versions": versions(), "wall_time_s": {"total": 0.0}}
    save_model(job.folder, model)
    write_summary(job.folder, summary)
    return summary


def _row(job: Job, summary: dict | None, timed, out: Path, resolution: tuple[int, int]) -> dict:
    from trisr.rundir import load_model
    from trisr.space.count import count_macs, count_params

    m = (summary or {}).get("metrics") or {}
    # Params and MACs from the network itself, at the study's resolution: run summaries count MACs at their
    # own resolution (a search at its cost resolution, training at 256x256).
    model = load_model(job.folder) if summary is not None else None
    predicted = job.predicted_ms
    search = None
    if job.strategy is not None and summary:
        predicted = (summary.get("latency") or {}).get("predicted_ms")
        s = summary.get("settings") or {}
        search = {"strategy": job.strategy, "wall_time_s": summary.get("wall_time_s"),
                  "supernet_steps": {k: (s.get(k) or {}).get("steps") for k in ("warmup", "search")},
                  "finetune_steps": (s.get("finetune") or {}).get("steps")}
    ok = summary is not None and timed is not None and timed.verified and timed.median_ms is not None
    reason = job.reason or (None if timed is None or timed.verified else timed.reason)
    return {
        "name": job.name,
        "kind": job.kind,
        "strategy": job.strategy,
        "search": search,
        "family": job.family,
        "config": job.config,
        "budget_ms": job.budgets_ms[0] if job.budgets_ms else None,
        "budgets_ms": list(job.budgets_ms),
        "params": None if model is None else count_params(model),
        "macs": None if model is None else count_macs(model, (1, 3, *resolution)),
        "macs_resolution": list(resolution),
        "predicted_ms": predicted,
        "latency_ms": None if not ok else {"median": timed.median_ms, "p10": timed.p10_ms, "p90": timed.p90_ms,
                                           "rep_medians": timed.rep_medians_ms},
        "psnr_db": m.get("psnr_db"),
        "ssim": m.get("ssim"),
        "gain_db": m.get("gain_db"),
        "per_image": {r["name"]: {"psnr_db": r["psnr_db"], "ssim": r["ssim"]} for r in m.get("images", [])},
        "artifact": None if timed is None or timed.artifact is None else str(Path(timed.artifact).resolve().relative_to(out.resolve())),
        "run": str(job.folder.resolve().relative_to(out.resolve())),
        "status": "ok" if ok else "failed",
        "reason": reason if not ok else None,
    }


def verdicts(rows: list[dict], budgets_ms: tuple[float, ...], goal_db: float = GOAL_DB) -> list[dict]:
    """Per budget: the searched (trilevel) network against the most accurate zoo, random or other-strategy network
    whose measured latency is at most its own (any budget's row). ``met`` is None when no rival is that fast."""
    out = []
    ok = [r for r in rows if r["status"] == "ok"]
    for b in budgets_ms:
        s = next((r for r in ok if r["kind"] == "searched" and r["budget_ms"] == b), None)
        if s is None:
            out.append({"budget_ms": b, "searched": None, "best_rival": None, "margin_db": None, "goal_db": goal_db, "met": False,
                        "note": "the searched network failed"})
            continue
        rivals = [r for r in ok if r["kind"] in ("zoo", "random", "strategy") and r["latency_ms"]["median"] <= s["latency_ms"]["median"]]
        best = max(rivals, key=lambda r: r["psnr_db"], default=None)
        margin = None if best is None else s["psnr_db"] - best["psnr_db"]
        out.append({"budget_ms": b, "searched": s["name"], "best_rival": None if best is None else best["name"],
                    "margin_db": margin, "goal_db": goal_db, "met": None if margin is None else margin >= goal_db,
                    "searched_latency_ms": s["latency_ms"]["median"], "within_budget": s["latency_ms"]["median"] <= b})
    return out


def write_crops(rows: list[dict], cfg: StudyConfig, scale: int, out: Path) -> list[dict]:
    """Per budget, one held-out photo: bicubic / best zoo at that budget / searched / HR, same box."""
    from trisr.data.pairs import load_pairs
    from trisr.data.resize import bicubic_upscale, quantize_uint8
    from trisr.evaluate import super_resolve
    from trisr.report.crops import pick_box, write_crop_panels
    from trisr.rundir import load_model

    pair = load_pairs(Path(cfg.data) if cfg.data else None, scale, "val")[0]
    box = pick_box(pair.hr, CROP_SIZE * scale)
    bicubic = quantize_uint8(bicubic_upscale(pair.lr, scale))
    crops = []
    ok = [r for r in rows if r["status"] == "ok"]
    for b in cfg.budgets_ms:
        searched = next((r for r in ok if r["kind"] == "searched" and r["budget_ms"] == b), None)
        zoo = max((r for r in ok if r["kind"] == "zoo" and b in r["budgets_ms"]), key=lambda r: r["psnr_db"], default=None)
        panels = [("bicubic", None, bicubic)]
        for label, row in (("best zoo", zoo), ("searched", searched)):
            if row is not None:
                panels.append((label, row["name"], super_resolve(load_model(out / row["run"]), pair.lr)))
        panels.append(("HR", None, pair.hr))
        folder = out / "crops" / f"{b:g}ms"
        written = write_crop_panels([(label, img) for label, _, img in panels], box, folder, relative_to=out)
        for w, (_, name, _) in zip(written, panels):
            w["row"] = name
        crops.append({"budget_ms": b, "image": pair.name, "box": list(box), "panels": written})
    return crops


def _lut_summary(lut, cfg: StudyConfig, profiles: Path | None = None) -> dict:
    """Which latency table predicted the searched networks, and how well it predicts on this target."""
    from trisr.profile.lut import default_lut_path

    v = lut.validation or {}
    path = cfg.profile or str(default_lut_path(lut.target, lut.space, tuple(lut.resolution), profiles))
    return {"path": path, "resolution": list(lut.resolution), "target": lut.target, "created": lut.created,
            "rmspe_pct": None if "rmspe" not in v else 100 * v["rmspe"],
            "within_10pct": v.get("within_10pct"), "validated_on": v.get("n")}


def _check_table_covers(cfg: StudyConfig, lut) -> None:
    """Refuse before any training a table that a listed strategy cannot be priced with (dcnas needs ``add``)."""
    from trisr.errors import CostTableError
    from trisr.search.strategies import STRATEGY_BY_NAME
    from trisr.space.cost import ADD_KEY

    dense = [s for s in cfg.strategies if STRATEGY_BY_NAME[s].network == "dense"]
    if dense and ADD_KEY not in lut.entries:
        raise CostTableError(
            f"--strategies {','.join(dense)} needs the latency table's '{ADD_KEY}' entry (dense connections), which this "
            "table lacks; profile the target again with this trisr version"
        )


def run_study(cfg: StudyConfig, out: Path, reporter: Reporter | None = None, profiles: Path | None = None,
              train_device: str = "cpu") -> dict:
    """Run (or resume) the study in ``out``; returns the study.json content and writes the reports. ``profiles``:
    the folder of latency tables (where the files live, not a setting; default ``$TRISR_PROFILES`` or ./profiles).
    ``train_device``: where PyTorch trains every row (not a setting either: the networks are timed on the target).
    The study folder is owned while the study runs (:mod:`trisr.lock`)."""
    from trisr.checks import check_out_dir
    from trisr.lock import locked

    with locked(check_out_dir(out), "study folder"):
        return _run_study(cfg, out, reporter, profiles, train_device)


def _run_study(cfg: StudyConfig, out: Path, reporter: Reporter | None, profiles: Path | None, train_device: str) -> dict:
    from trisr.checks import check_out_dir
    from trisr.runtime.devices import device_descriptor
    from trisr.pipeline.target import TargetRequest, resolve_target
    from trisr.study.timing import export_and_time

    out = check_out_dir(out)
    run_cfg = _run_config(cfg, cfg.resolution)  # a bad --config fails before the study folder is written
    _check_settings(cfg, out)
    state = json.loads((out / STATE_FILE).read_text()) if (out / STATE_FILE).exists() else {"elapsed_s": 0.0}
    t0 = time.time()
    base = reporter or Reporter()
    # The one target resolution of trisr search and deploy (trisr.pipeline.target): every network is then exported
    # and timed at the precision this table was measured at.
    resolved = resolve_target(run_cfg.space, cfg.resolution,
                              TargetRequest(cfg.device, cfg.backend, cfg.threads, None, Path(cfg.profile) if cfg.profile else None,
                                            profiles, cfg.allow_mismatch), base)
    lut, backend = resolved.lut, resolved.runtime
    _check_table_covers(cfg, lut)
    rep = StudyReporter(base, 0, t0 - state["elapsed_s"])
    jobs = plan_jobs(cfg, run_cfg, lut, backend, out, rep)
    rep.total = len(jobs) + 1  # + the final export/timing step
    summaries: dict[str, dict | None] = {}
    for job in jobs:
        try:
            summaries[job.name] = _train_job(job, cfg, run_cfg, lut, backend, rep, train_device)
        except BudgetError as exc:  # e.g. a budget no architecture of the space can meet
            job.reason, summaries[job.name] = str(exc), None
        rep.done += 1
        s = summaries[job.name]
        state["elapsed_s"] = time.time() - rep.t0
        atomic_write_json(out / STATE_FILE, state)
        if s is not None:
            rep.message(f"{job.name}: held-out {s['metrics']['psnr_db']:.3f} dB ({s['metrics']['gain_db']:+.3f} over bicubic)")
        else:
            rep.message(f"{job.name}: no network ({job.reason})")
    trained = {j.name: j.folder for j in jobs if summaries.get(j.name) is not None}
    timed = export_and_time(trained, out / "artifacts", backend, cfg.resolution, cfg.reps, rep)
    rep.done += 1
    rows = [_row(j, summaries.get(j.name), timed.get(j.name), out, cfg.resolution) for j in jobs]
    for r in rows:
        if r["status"] == "ok":
            rep.message(f"{r['name']}: {r['latency_ms']['median']:.2f} ms measured, {r['psnr_db']:.3f} dB")
    bic = summaries.get("bicubic") or {}
    study = {
        "schema_version": STUDY_SCHEMA_VERSION,
        "kind": "trisr-study",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "wall_s": time.time() - rep.t0,
        "settings": {**cfg.to_dict(), "backend": backend.name, "threads": backend.threads, "scale": run_cfg.space.scale,
                     "finetune_steps": run_cfg.finetune.steps, "recipe": run_cfg.recipe().to_dict()},
        "machine": {**device_descriptor(cfg.device, backend.threads), "runtime": backend.describe()},
        "lut": _lut_summary(lut, cfg, profiles),
        "target": resolved.target.to_dict(),
        "bicubic": {"psnr_db": bic.get("metrics", {}).get("bicubic_psnr_db"), "ssim": bic.get("metrics", {}).get("bicubic_ssim")},
        "rows": rows,
        "verdicts": verdicts(rows, cfg.budgets_ms),
    }
    study["crops"] = write_crops(rows, cfg, run_cfg.space.scale, out)
    state["elapsed_s"] = study["wall_s"] = time.time() - rep.t0
    atomic_write_json(out / STATE_FILE, state)
    atomic_write_json(out / STUDY_FILE, study)
    from trisr.report.study_report import write_study_report

    study["report"] = {k: str(v) for k, v in write_study_report(out).items()}
    return study
