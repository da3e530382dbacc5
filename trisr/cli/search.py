"""``trisr search``: search an architecture, derive it, inherit weights, fine-tune and evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import DEVICE_HELP, TRAIN_DEVICE_HELP, Target, TorchDevice, deploy_device, parse_hw, print_json, run_config_changes, train_device
from trisr.cli.tables import metrics_table
from trisr.errors import TrisrError
from trisr.search.presets import preset_help
from trisr.search.strategies import strategy_help


def summary_table(summary: dict) -> Table:
    t = Table(title="derived network", show_header=False)
    g = summary.get("genotype")
    if g is not None:
        t.add_row("path (stem first)", f"{g['path']}  (node {g.get('node_index')})")
        if g.get("links") is not None:
            t.add_row("dense links (per block: earlier output added, -1 none)", str(g["links"]))
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
            f"{predicted}, {lat['backend']['backend']} {lat['backend'].get('precision', '')}"
            + (f", budget {lat['budget_ms']:g} ms  {lat['verdict']}" if lat["budget_ms"] is not None else ""),
        )
    shipped = summary.get("metrics_shipped")
    if shipped:
        h, w = shipped["input_hw"]
        t.add_row(
            "held-out PSNR as shipped",
            f"{shipped['psnr_db']:.3f} dB: {shipped['format']} {shipped['precision']} in {h}x{w} tiles "
            f"({-shipped['psnr_loss_db']:+.3f} dB vs PyTorch fp32 on the same tiles){'' if shipped['verified'] else ', verification FAILED'}"
            + (" (post-training quantization)" if summary.get("qat") else ""),
        )
    qat = (summary.get("qat") or {}).get("metrics_shipped")
    if qat:
        t.add_row(
            "... after QAT",
            f"{qat['psnr_db']:.3f} dB: {qat['format']} {qat['precision']} of the quantization-aware fine-tuned weights "
            f"({summary['qat']['steps']} steps, run {summary['qat']['run']}/; "
            f"{qat['psnr_db'] - summary['metrics_shipped']['psnr_db']:+.3f} dB vs post-training)",
        )
    cost = summary.get("cost")
    if cost:
        budget = "none" if cost["budget"] is None else f"{cost['budget']:g} {cost['unit']}"
        verdict = "" if cost["within_budget"] is None else ("  PASS" if cost["within_budget"] else "  FAIL")
        t.add_row("cost (table)", f"{cost['derived']:.4g} {cost['unit']}, budget {budget}{verdict}")
    t.add_row("wall time", f"{summary['wall_time_s']['total']:.1f} s")
    return t


@user_errors
def search(
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (DIV2K, Set5, ... layouts or plain HR images). Default: the embedded scikit-image photos."),
    preset: str = typer.Option(
        "quick", "--preset",
        help=preset_help(),
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="Run configuration JSON (e.g. a run's config.json); replaces --preset."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Search strategy (default trilevel). " + strategy_help()
        + " Same data, budget, table, fine-tuning and measurement (docs/strategies.md)."),
    search_loss: Optional[str] = typer.Option(None, "--search-loss", help="Loss of the search phase: l1 (default) | "
        "l1+logssim (HiNAS: L1 + 0.6 * -log SSIM)."),
    scale: Optional[int] = typer.Option(None, "--scale", help="Upscaling factor 2, 3 or 4 (default: the preset's)."),
    macs_g: Optional[float] = typer.Option(None, "--macs-g", help="Budget in GMACs at the cost resolution."),
    params_k: Optional[float] = typer.Option(None, "--params-k", help="Budget in thousands of parameters."),
    latency_ms: Optional[float] = typer.Option(None, "--latency-ms", help="Budget in ms measured on the deployment device (--device/--backend) at the cost resolution."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Latency table (trisr profile); default: the cached one under the profiles folder for the target, profiled first if missing."),
    profiles: Optional[Path] = typer.Option(None, "--profiles", help="Folder of latency tables, looked up and written (default: $TRISR_PROFILES, else ./profiles)."),
    device: Optional[Target] = typer.Option(None, "--device", help=DEVICE_HELP + " Used with --latency-ms."),
    target_alias: Optional[Target] = typer.Option(None, "--target", hidden=True, help="Old name of --device."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Target runtime: onnxruntime, openvino, torch or tensorrt (default per target)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Target runtime threads (default: all cores)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Precision the network ships at in the target runtime "
        "(fp32; with OpenVINO also bf16 on CPUs with AVX512-BF16/AMX; int8 with OpenVINO and ONNX Runtime on CPUs with VNNI; "
        "fp16 with TensorRT). Default: the runtime's own default "
        "on this device (OpenVINO: bf16 where the CPU has it). The table, the measurement and the shipped PSNR use it; "
        "int8 then also runs quantization-aware fine-tuning (--qat-steps) into RUN/qat and reports both."),
    qat_steps: Optional[int] = typer.Option(None, "--qat-steps", help="With --precision int8: quantization-aware fine-tuning steps after the search (default 2000; 0: post-training quantization only)."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Use a latency table measured on another device or runtime version."),
    no_fail: bool = typer.Option(False, "--no-fail", help="Exit 0 even when the measured latency misses the budget."),
    cost_resolution: Optional[str] = typer.Option(None, "--cost-resolution", help="Deployment LR size HxW for cost tables (default 256x256)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/search-<preset>-x<scale>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run in --out."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 0)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Override the preset's warm-up steps."),
    search_steps: Optional[int] = typer.Option(None, "--search-steps", help="Override the preset's search steps."),
    finetune_steps: Optional[int] = typer.Option(None, "--finetune-steps", help="Override the preset's fine-tune steps (trained in full: the preset's time limit is dropped unless --max-minutes is given too)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="End-to-end time limit: the fine-tune's steps are cut to what fits in the time the supernet phases leave, at the step time measured here when it starts (default: the preset's, cpu 45; 0 = none)."),
    relax_op: Optional[str] = typer.Option(None, "--relax-op", help="softmax | sparsemax | sparsestmax"),
    relax_node: Optional[str] = typer.Option(None, "--relax-node", help="softmax | sparsemax | sparsestmax"),
    relax_width: Optional[str] = typer.Option(None, "--relax-width", help="gumbel | softmax | sparsemax | sparsestmax"),
    order_penalty: Optional[str] = typer.Option(None, "--order-penalty", help="linear (code) | hinge (stronger) | none"),
    order_lambda: Optional[float] = typer.Option(None, "--order-lambda"),
    train_on: Optional[TorchDevice] = typer.Option(None, "--train-device", help=TRAIN_DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Search an architecture (trilevel NAS, or another --strategy), derive it, inherit weights, fine-tune and evaluate."""
    from dataclasses import replace

    from trisr.pipeline.search import SearchRequest, run_config_for, run_search
    from trisr.pipeline.target import TargetRequest
    from trisr.progress import RichReporter
    from trisr.search.config import RunConfig
    from trisr.search.config import preset as load_preset

    dev = deploy_device(device, target_alias, default=None)
    cfg = RunConfig.load(config) if config is not None else load_preset(preset)
    if sum(b is not None for b in (macs_g, params_k, latency_ms)) > 1:
        raise TrisrError("give one budget: --macs-g, --params-k or --latency-ms")
    changes = run_config_changes(cfg, strategy, seed, scale, warmup_steps, search_steps, finetune_steps, max_minutes)
    if search_loss is not None:
        changes["search_loss"] = search_loss
    if cost_resolution is not None:
        changes["cost_resolution"] = parse_hw(cost_resolution)
    if macs_g is not None:
        changes.update(budget_metric="macs_g", budget=macs_g)
    if params_k is not None:
        changes.update(budget_metric="params_k", budget=params_k)
    if latency_ms is not None:
        changes.update(budget_metric="latency_ms", budget=latency_ms)
    relax = {k: v for k, v in (("op", relax_op), ("node", relax_node), ("width", relax_width)) if v is not None}
    if relax:
        try:
            changes["relax"] = replace(changes.get("relax", cfg.relax), **relax)
        except ValueError as exc:
            raise TrisrError(str(exc)) from None
    if order_penalty is not None:
        changes["order_penalty"] = order_penalty
    if order_lambda is not None:
        changes["order_lambda"] = order_lambda
    cfg = cfg.replace(**changes)
    out = out or Path("runs") / f"search-{cfg.preset}-x{cfg.space.scale}"
    request = SearchRequest(
        cfg, out, data, resume,
        TargetRequest(None if dev is None else dev.value, backend, threads, precision, profile, profiles, allow_mismatch),
        train_device(train_on, names="--train-device"), qat_steps, table_resolution=cost_resolution is None,
    )
    summary = run_search(request, RichReporter(err_console))
    if not summary:  # non-zero ranks print nothing
        return
    cfg = run_config_for(request)  # a resume's own settings
    err_console.print(summary_table(summary))
    from trisr.evaluate import validation_images

    err_console.print(metrics_table(f"{validation_images(data, cfg.space.scale)}, x{cfg.space.scale}", summary["metrics"]))
    err_console.print(f"run written to [bold]{out}[/]")
    if as_json:
        print_json(summary)
    lat = summary.get("latency")
    if lat and lat["verdict"] == "FAIL" and not no_fail:
        err_console.print(f"[bold red]FAIL:[/] measured {lat['measured']['median_ms']:.2f} ms > budget {lat['budget_ms']:g} ms")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("search")(search)
