"""The ``trisr`` command line (typer + rich).

User errors (:class:`~trisr.errors.TrisrError`) print one line and exit with status 2; results print
as rich tables and, with ``--json``, as JSON on stdout.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trisr import __version__
from trisr.errors import TrisrError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
out_console = Console()
err_console = Console(stderr=True)

EXIT_USER_ERROR = 2


def _user_errors(fn):
    """Turn TrisrError into one line on stderr and a non-zero exit; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TrisrError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; a run can be continued with --resume")
            raise typer.Exit(130) from None

    return wrapper


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrisrError("--device cuda asked for, but torch sees no CUDA GPU")
    if name not in ("cpu", "cuda"):
        raise TrisrError(f"unknown device {name!r}; use cpu, cuda or auto")
    return name


def _resolution(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise TrisrError(f"resolution must look like 256x256 (HxW), got {text!r}") from None
    if h < 1 or w < 1:
        raise TrisrError(f"resolution must be positive, got {text!r}")
    return h, w


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title)
    for col in ("image", "PSNR dB", "SSIM", "bicubic PSNR dB", "bicubic SSIM", "gain dB"):
        table.add_column(col, justify="right" if col != "image" else "left")
    for r in metrics["images"]:
        table.add_row(
            r["name"],
            f"{r['psnr_db']:.3f}",
            f"{r['ssim']:.4f}",
            f"{r['bicubic_psnr_db']:.3f}",
            f"{r['bicubic_ssim']:.4f}",
            f"{r['psnr_db'] - r['bicubic_psnr_db']:+.3f}",
        )
    table.add_row(
        "[bold]mean",
        f"[bold]{metrics['psnr_db']:.3f}",
        f"{metrics['ssim']:.4f}",
        f"{metrics['bicubic_psnr_db']:.3f}",
        f"{metrics['bicubic_ssim']:.4f}",
        f"[bold]{metrics['gain_db']:+.3f}",
    )
    return table


def _summary_table(summary: dict) -> Table:
    t = Table(title="derived network", show_header=False)
    g = summary.get("genotype")
    if g is not None:
        t.add_row("path (stem first)", f"{g['path']}  (node {g.get('node_index')})")
    else:
        arch = summary.get("arch", {})
        t.add_row("network", f"{arch.get('family')} x{arch.get('scale')} {json.dumps(arch.get('knobs', {}))}")
    t.add_row("params", f"{summary['params']:,}")
    h, w = summary["macs_resolution"]
    t.add_row(f"MACs @ {h}x{w} LR", f"{summary['macs'] / 1e9:.3f} G")
    lat = summary.get("latency")
    if lat:
        h, w = lat["resolution"]
        predicted = (
            f"{lat['predicted_ms']:.2f} ms ({lat['error_pct']:+.1f} %)" if lat["predicted_ms"] is not None
            else f"none ({lat.get('predicted_reason')})"
        )
        t.add_row(
            f"latency @ {h}x{w} LR",
            f"measured {lat['measured']['median_ms']:.2f} ms (p90 {lat['measured']['p90_ms']:.2f}), predicted "
            f"{predicted}, {lat['backend']['backend']}"
            + (f", budget {lat['budget_ms']:g} ms  {lat['verdict']}" if lat["budget_ms"] is not None else ""),
        )
    cost = summary.get("cost")
    if cost:
        budget = "none" if cost["budget"] is None else f"{cost['budget']:g} {cost['unit']}"
        verdict = "" if cost["within_budget"] is None else ("  PASS" if cost["within_budget"] else "  FAIL")
        t.add_row("cost (table)", f"{cost['derived']:.4g} {cost['unit']}, budget {budget}{verdict}")
    t.add_row("wall time", f"{summary['wall_time_s']['total']:.1f} s")
    return t


@app.command()
@_user_errors
def search(
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (DIV2K, Set5, ... layouts or plain HR images). Default: the embedded scikit-image photos."),
    preset: str = typer.Option(
        "quick", "--preset",
        help="quick: demo run, nf 32, 9 tree nodes, x2, ~9 min end to end on a 2-core CPU; "
        "cpu: larger space, nf 48, 14 nodes, x2, 60 min measured on one shared core (no PSNR gain over quick yet); "
        "paper: the reference configuration (nf 64, 55 nodes, x4, 86k+86k+64k steps), a multi-day GPU job.",
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="Run configuration JSON (e.g. a run's config.json); replaces --preset."),
    scale: Optional[int] = typer.Option(None, "--scale", help="Upscaling factor 2, 3 or 4 (default: the preset's)."),
    macs_g: Optional[float] = typer.Option(None, "--macs-g", help="Budget in GMACs at the cost resolution."),
    params_k: Optional[float] = typer.Option(None, "--params-k", help="Budget in thousands of parameters."),
    latency_ms: Optional[float] = typer.Option(None, "--latency-ms", help="Budget in ms measured on the target (--device/--backend) at the cost resolution."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Latency table (trisr profile); default: the cached one under profiles/ for the target, profiled first if missing."),
    target_device: str = typer.Option("cpu", "--device", help="Deployment target for --latency-ms: cpu, cuda or jetson."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Target runtime: onnxruntime, openvino, torch or tensorrt (default per device)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Target runtime threads (default: all cores)."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Use a latency table measured on another device or runtime version."),
    no_fail: bool = typer.Option(False, "--no-fail", help="Exit 0 even when the measured latency misses the budget."),
    cost_resolution: Optional[str] = typer.Option(None, "--cost-resolution", help="Deployment LR size HxW for cost tables (default 256x256)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/search-<preset>-x<scale>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run in --out."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 0)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Override the preset's warm-up steps."),
    search_steps: Optional[int] = typer.Option(None, "--search-steps", help="Override the preset's search steps."),
    finetune_steps: Optional[int] = typer.Option(None, "--finetune-steps", help="Override the preset's fine-tune steps."),
    relax_op: Optional[str] = typer.Option(None, "--relax-op", help="softmax | sparsemax | sparsestmax"),
    relax_node: Optional[str] = typer.Option(None, "--relax-node", help="softmax | sparsemax | sparsestmax"),
    relax_width: Optional[str] = typer.Option(None, "--relax-width", help="gumbel | softmax | sparsemax | sparsestmax"),
    order_penalty: Optional[str] = typer.Option(None, "--order-penalty", help="linear (code) | hinge (stronger) | none"),
    order_lambda: Optional[float] = typer.Option(None, "--order-lambda"),
    train_device: str = typer.Option("auto", "--train-device", help="Where search and training run: cpu, cuda or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Search an architecture (trilevel NAS), derive it, inherit weights, fine-tune and evaluate."""
    from dataclasses import replace

    from trisr.progress import RichReporter
    from trisr.search.config import RunConfig
    from trisr.search.config import preset as load_preset
    from trisr.search.engine import SearchRun

    cfg = RunConfig.load(config) if config is not None else load_preset(preset)
    if sum(b is not None for b in (macs_g, params_k, latency_ms)) > 1:
        raise TrisrError("give one budget: --macs-g, --params-k or --latency-ms")
    changes: dict = {}
    if seed is not None:
        changes["seed"] = seed
    if cost_resolution is not None:
        changes["cost_resolution"] = _resolution(cost_resolution)
    if scale is not None:
        changes["space"] = cfg.space.replace(scale=scale)
    if macs_g is not None:
        changes.update(budget_metric="macs_g", budget=macs_g)
    if params_k is not None:
        changes.update(budget_metric="params_k", budget=params_k)
    if latency_ms is not None:
        changes.update(budget_metric="latency_ms", budget=latency_ms)
    for name, value in (("warmup", warmup_steps), ("search", search_steps), ("finetune", finetune_steps)):
        if value is not None:
            changes[name] = replace(getattr(cfg, name), steps=value)
    relax = {k: v for k, v in (("op", relax_op), ("node", relax_node), ("width", relax_width)) if v is not None}
    if relax:
        try:
            changes["relax"] = replace(cfg.relax, **relax)
        except ValueError as exc:
            raise TrisrError(str(exc)) from None
    if order_penalty is not None:
        changes["order_penalty"] = order_penalty
    if order_lambda is not None:
        changes["order_lambda"] = order_lambda
    cfg = cfg.replace(**changes)
    out = out or Path("runs") / f"search-{cfg.preset}-x{cfg.space.scale}"
    reporter = RichReporter(err_console)
    cost_table, extra = None, None
    if resume and (out / "config.json").exists():
        cfg = RunConfig.load(out / "config.json")  # the run's own settings
    if cfg.budget_metric == "latency_ms":
        from trisr.profile.lut import load_lut
        from trisr.profile.target import latency_report, resolve_latency_table

        if profile is not None and cost_resolution is None and not resume:
            cfg = cfg.replace(cost_resolution=tuple(load_lut(profile).resolution))  # the table's deployment size
        lut, target = resolve_latency_table(
            cfg.space, cfg.cost_resolution, profile, target_device, backend, threads, allow_mismatch, reporter
        )
        cost_table = lut.to_cost_table()
        h, w = lut.resolution
        reporter.message(
            f"latency budget {cfg.budget:g} ms on {target.name}/{target.device} ({target.threads} threads) @ {h}x{w} LR"
        )
        extra = lambda model: latency_report(model, lut, target, cfg.budget)  # noqa: E731
    run = SearchRun(cfg, out, data, resume=resume, reporter=reporter, device=_device(train_device), cost_table=cost_table, extra_summary=extra)
    summary = run.run()
    if not summary:  # non-zero ranks print nothing
        return
    err_console.print(_summary_table(summary))
    err_console.print(_metrics_table(f"held-out images, x{cfg.space.scale}", summary["metrics"]))
    err_console.print(f"run written to [bold]{out}[/]")
    if as_json:
        _print_json(summary)
    lat = summary.get("latency")
    if lat and lat["verdict"] == "FAIL" and not no_fail:
        err_console.print(f"[bold red]FAIL:[/] measured {lat['measured']['median_ms']:.2f} ms > budget {lat['budget_ms']:g} ms")
        raise typer.Exit(1)


def _zoo_spec(arch: str, scale: Optional[int], width: Optional[int], knobs: list[str]):
    """The ZooSpec of ``trisr train --arch``: knob values parsed by each knob's declared type (never evaluated)."""
    from trisr.zoo import ZooSpec, get_family

    family = get_family(arch)
    values: dict = {}
    for item in knobs:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise TrisrError(f"--knob takes NAME=VALUE, got {item!r}")
        if name in values:
            raise TrisrError(f"--knob {name} given twice")
        values[name] = value
    if width is not None:
        if "width" in values:
            raise TrisrError("give the width once: --width or --knob width=...")
        values["width"] = width
    return ZooSpec(family.name, 2 if scale is None else scale, values)


@app.command()
@_user_errors
def train(
    source: Optional[Path] = typer.Argument(None, help="A run folder (fine-tune its weights) or a genotype / arch JSON (train from scratch). Or give --arch."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Train a zoo network (trisr zoo lists them) from scratch instead of SOURCE."),
    width: Optional[int] = typer.Option(None, "--width", help="With --arch: the family's width knob."),
    knob: list[str] = typer.Option([], "--knob", help="With --arch: NAME=VALUE, repeatable (e.g. --knob blocks=4 --knob skip=none)."),
    scale: Optional[int] = typer.Option(None, "--scale", help="With --arch: upscaling factor (default 2)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder; default the embedded photos."),
    out: Path = typer.Option(..., "--out", help="Output run folder."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Take the fine-tuning recipe of this preset (what searched networks get after derivation). Default: the source run's own recipe, else quick's."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override the recipe's step count."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Override the recipe's learning rate."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override the recipe's batch size."),
    lr_patch: Optional[int] = typer.Option(None, "--patch", help="Override the recipe's LR patch size."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume"),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train or fine-tune a network with a preset's fine-tuning recipe (method.md §8.1 step 5): a run's network,
    a genotype, or a zoo network (--arch) from scratch, exactly as searched networks are trained after derivation.
    --arch bicubic has nothing to train: it is evaluated and written as a run folder as it is."""
    from dataclasses import replace

    from trisr.progress import RichReporter
    from trisr.search.config import preset as get_preset
    from trisr.train import train as run_train

    if (source is None) == (arch is None):
        raise TrisrError("give exactly one of SOURCE (run folder or architecture file) and --arch FAMILY")
    if arch is None and (width is not None or knob or scale is not None):
        raise TrisrError("--width, --knob and --scale apply to --arch only")
    start = _zoo_spec(arch, scale, width, knob) if arch is not None else source
    if preset is None and source is not None and source.is_dir() and (source / "config.json").exists():
        from trisr.search.config import RunConfig

        recipe = RunConfig.load(source / "config.json").recipe()
    else:
        recipe = get_preset(preset or "quick").recipe()
    too_small = (steps, 1), (batch_size, 1), (lr_patch, 4)
    if any(v is not None and v < least for v, least in too_small) or (lr is not None and lr <= 0):
        raise TrisrError("--steps and --batch-size must be >= 1, --lr > 0 and --patch >= 4")
    changes = {k: v for k, v in (("steps", steps), ("lr", lr), ("batch_size", batch_size)) if v is not None}
    recipe = recipe.replace(**changes)
    if lr_patch is not None:
        recipe = replace(recipe, lr_patch=lr_patch)
    if source is not None and not source.exists():
        raise TrisrError(f"{source} does not exist")
    summary = run_train(start, out, recipe, data, seed, resume, RichReporter(err_console), _device(device))
    if summary:
        err_console.print(_metrics_table("held-out images", summary["metrics"]))
        if as_json:
            _print_json(summary)


@app.command("eval")
@_user_errors
def eval_cmd(
    run: Path = typer.Argument(..., help="Run folder with genotype.json or arch.json, and model.safetensors."),
    data: Optional[Path] = typer.Option(None, "--data", help="Benchmark folder (Set5, DIV2K valid, ...); default the embedded held-out photos."),
    crop: Optional[int] = typer.Option(None, "--crop", help="Border crop (default: scale)."),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """PSNR/SSIM on Y (BT.601, crop = scale) of a run, beside bicubic."""
    from trisr.data.datasets import load_pairs
    from trisr.evaluate import evaluate
    from trisr.rundir import load_model

    dev = _device(device)
    model = load_model(run, dev)
    scale = model.arch.scale
    pairs = load_pairs(data, scale, "val")
    metrics = evaluate(model, pairs, scale, dev, crop=crop)
    metrics["data"] = str(data) if data else "embedded held-out"
    err_console.print(_metrics_table(f"{run} on {metrics['data']}, x{scale}", metrics))
    if as_json:
        _print_json(metrics)


@app.command()
@_user_errors
def upscale(
    run: Path = typer.Argument(..., help="Run folder, or an exported artifact (.onnx, .xml, .engine with its sidecar)."),
    images: list[Path] = typer.Argument(..., help="Input images."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (or a .png file for one image)."),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Super-resolve images with a run's network or an exported artifact; writes PNGs."""
    from rich.progress import track

    from trisr.data.images import load_image, save_image
    from trisr.evaluate import super_resolve
    from trisr.rundir import load_model

    if run.is_file():  # an exported artifact: the deployed file is what runs
        from trisr.export.artifacts import load_artifact

        artifact = load_artifact(run, device)
        scale, sr_fn = artifact.scale, artifact.upscale
    else:
        dev = _device(device)
        model = load_model(run, dev)
        scale = model.arch.scale
        sr_fn = lambda img: super_resolve(model, img, dev)  # noqa: E731
    single_file = output.suffix.lower() == ".png"
    if single_file and len(images) != 1:
        raise TrisrError("-o names a .png file but several images were given; pass a folder")
    inputs = [(p, load_image(p)) for p in images]  # fail on a bad image before any work
    for path, img in track(inputs, description="upscaling", console=err_console):
        target = output if single_file else output / f"{path.stem}_x{scale}.png"
        save_image(target, sr_fn(img))
        err_console.print(f"{path} {img.shape[1]}x{img.shape[0]} -> {target}")


def zoo_rows(scale: int, resolution: tuple[int, int] = (256, 256)) -> list[dict]:
    """One row per zoo family: default knobs, params and GMAC of the default and of the smallest and largest ladder
    rungs at ``resolution`` LR, and its note."""
    from trisr.space.count import count_macs, count_params
    from trisr.zoo import list_zoo

    shape = (1, 3, *resolution)
    rows = []
    for fam in list_zoo():
        if scale not in fam.scales:
            continue

        def cost(knobs: dict) -> dict:
            spec = fam.spec(scale, **knobs)
            model = spec.build()
            return {"knobs": spec.knobs, "params": count_params(model), "gmac": count_macs(model, shape) / 1e9}

        rows.append({
            "family": fam.name, "scale": scale, "default": cost({}), "smallest": cost(fam.ladder[0]),
            "largest": cost(fam.ladder[-1]), "ladder_rungs": len(fam.ladder), "note": fam.note,
            "knobs": {k: knob.describe() for k, knob in sorted(fam.knobs.items())},
        })
    return rows


@app.command()
@_user_errors
def zoo(
    scale: int = typer.Option(2, "--scale", help="Upscaling factor."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """The zoo of hand-designed efficient SR networks (train one with trisr train --arch FAMILY)."""
    rows = zoo_rows(scale)
    if not rows:
        raise TrisrError(f"no zoo family supports scale {scale}")
    table = Table(title=f"trisr zoo, x{scale}: params and GMAC at 256x256 LR")
    for col in ("family", "default knobs", "params", "GMAC", "smallest rung", "largest rung", "note"):
        table.add_column(col, justify="right" if col in ("params", "GMAC") else "left", overflow="fold")

    def rung(r: dict) -> str:
        knobs = " ".join(f"{k}={v}" for k, v in r["knobs"].items() if k != "skip") or "-"
        return f"{knobs}\n{r['params'] / 1e3:,.1f}k, {r['gmac']:.3f} G"

    for r in rows:
        d = r["default"]
        knobs = " ".join(f"{k}={v}" for k, v in d["knobs"].items()) or "-"
        table.add_row(r["family"], knobs, f"{d['params']:,}", f"{d['gmac']:.3f}", rung(r["smallest"]),
                      rung(r["largest"]), r["note"])
    err_console.print(table)
    if as_json:
        _print_json(rows)


RUNTIMES = (("onnx", "onnx"), ("onnxruntime", "onnxruntime"), ("openvino", "openvino"), ("tensorrt", "tensorrt"))


@app.command()
@_user_errors
def info(as_json: bool = typer.Option(False, "--json")) -> None:
    """Versions, devices and deployment runtimes found."""
    import torch

    from trisr.rundir import versions
    from trisr.search.config import PRESETS

    report: dict = {"versions": versions(), "runtimes": {}, "devices": {"cpu_threads": torch.get_num_threads()}}
    report["devices"]["cuda"] = [
        {"name": torch.cuda.get_device_name(i), "capability": ".".join(map(str, torch.cuda.get_device_capability(i)))}
        for i in range(torch.cuda.device_count())
    ] if torch.cuda.is_available() else []
    for label, module in RUNTIMES:
        try:
            mod = importlib.import_module(module)
            report["runtimes"][label] = getattr(mod, "__version__", "installed")
        except Exception:  # noqa: BLE001 - any import failure means "not usable here"
            report["runtimes"][label] = None
    report["presets"] = list(PRESETS)
    table = Table(title=f"trisr {__version__}", show_header=False)
    for k, v in report["versions"].items():
        table.add_row(k, str(v))
    table.add_row("CPU threads", str(report["devices"]["cpu_threads"]))
    table.add_row("CUDA GPUs", ", ".join(d["name"] for d in report["devices"]["cuda"]) or "none")
    for k, v in report["runtimes"].items():
        hint = " (pip install 'trisr[tensorrt]' on an NVIDIA machine)" if k == "tensorrt" else ""
        table.add_row(k, escape(v or f"not installed{hint}"))
    table.add_row("presets", ", ".join(report["presets"]))
    err_console.print(table)
    if as_json:
        _print_json(report)


def _register_plugins() -> None:
    # Commands that live with their subsystem register themselves here.
    from trisr.profile.cli import register as register_profile
    from trisr.report.cli import register as register_report
    from trisr.study.cli import register as register_study

    register_profile(app)
    register_study(app)
    register_report(app)


_register_plugins()


from trisr.export.cli import register as _register_export  # noqa: E402 - `export` and `bench` commands

_register_export(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
