"""``trisr deploy``: the whole job — latency table, search under the budget, export, verify, benchmark, report.

Exit status: 0 when the shipped artifact verified and its measured latency meets the budget, 1 when it does not
(the verdict says why), 2 for a user error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from trisr.cli.errors import EXIT_CHECK_FAILED, err_console, user_errors
from trisr.cli.options import (
    DEVICE_HELP, TRAIN_DEVICE_HELP, Target, TorchDevice, deploy_device, parse_hw, print_json, run_config_changes, train_device,
)
from trisr.errors import TrisrError
from trisr.export.formats import help_text
from trisr.search.presets import preset_help
from trisr.search.strategies import strategy_help


def verdict_table(v: dict) -> Table:
    t = Table(title=f"deploy verdict: {v['format']} {v['precision']} on {v['device']}")
    for col in ("budget", "measured ms (p10–p90)", "verdict", "PSNR dB as shipped", "SSIM", "bicubic dB / SSIM", "artifact"):
        t.add_column(col, justify="left" if col in ("verdict", "artifact") else "right")

    def f(x, spec=".2f"):
        return "–" if x is None else format(x, spec)

    mark = {"PASS": "[bold green]PASS[/]", "FAIL": "[bold red]FAIL[/]"}.get(v["verdict"], "unfinished")
    t.add_row(f"{v['budget_ms']:g} ms", f"{f(v['measured_ms'])} ({f(v['p10_ms'])}–{f(v['p90_ms'])})", mark,
              f"{f(v['psnr_db'], '.3f')} ({f(v['gain_db'], '+.3f')})", f(v["ssim"], ".4f"),
              f"{f(v['bicubic_psnr_db'], '.3f')} / {f(v['bicubic_ssim'], '.4f')}", str(v["artifact"]))
    return t


def side_by_side(v: dict) -> Table:
    t = Table(title="latency beside the table's prediction and PyTorch eager", show_header=False)
    t.add_row("table's prediction", "–" if v["predicted_ms"] is None else f"{v['predicted_ms']:.2f} ms")
    t.add_row(f"measured {v['backend']} {v['precision']}", "–" if v["measured_ms"] is None else f"{v['measured_ms']:.2f} ms")
    t.add_row("PyTorch eager fp32", "–" if v["pytorch_eager_ms"] is None else f"{v['pytorch_eager_ms']:.2f} ms")
    return t


@user_errors
def deploy_cmd(
    latency_ms: float = typer.Option(..., "--latency-ms", help="Budget in ms, measured on --device in the format's runtime at the input size."),
    device: Optional[Target] = typer.Option(None, "--device", help=DEVICE_HELP),
    target_alias: Optional[Target] = typer.Option(None, "--target", hidden=True, help="Old name of --device."),
    fmt_name: Optional[str] = typer.Option(None, "--format", "-f", help=f"Artifact format (default: onnx on cpu, trt on cuda/jetson): {help_text()}."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help="Precision the network ships and is timed at "
        "(default: the runtime's own on this device where the format has it, e.g. bf16 for OpenVINO on CPUs with AVX512-BF16/AMX; "
        "else the format's). int8 adds quantization-aware fine-tuning, whose weights ship."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (DIV2K, Set5, ... layouts). Default: the embedded photos."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Search strategy (default trilevel). " + strategy_help()),
    preset: str = typer.Option("quick", "--preset", help=preset_help()),
    config: Optional[Path] = typer.Option(None, "--config", help="Run configuration JSON; replaces --preset."),
    scale: Optional[int] = typer.Option(None, "--scale", help="Upscaling factor (default: the preset's)."),
    input_hw: Optional[str] = typer.Option(None, "--input", help="Deployment LR input HxW the budget holds at (default 256x256; with --profile, the table's)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime threads (default: all cores)."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Latency table to use (re-validated first); default: the cached one, else profiled."),
    profiles: Optional[Path] = typer.Option(None, "--profiles", help="Folder of latency tables (default: $TRISR_PROFILES, else ./profiles)."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Use a latency table measured on another machine or runtime version."),
    revalidate: int = typer.Option(3, "--revalidate", help="Fresh networks a cached table is re-validated on (re-profiled above 15 % RMSPE; 0: trust it)."),
    reps: int = typer.Option(5, "--reps", help="Interleaved timing rounds of the benchmark."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps"),
    search_steps: Optional[int] = typer.Option(None, "--search-steps"),
    finetune_steps: Optional[int] = typer.Option(None, "--finetune-steps"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="The search's end-to-end time limit (see trisr search)."),
    qat_steps: Optional[int] = typer.Option(None, "--qat-steps", help="With --precision int8: QAT steps (default 2000; 0: post-training only)."),
    train_on: Optional[TorchDevice] = typer.Option(None, "--train-device", help=TRAIN_DEVICE_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="Deploy folder (default runs/deploy-<device>-<format>-<budget>ms); rerun the same command to resume."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON on stdout."),
) -> None:
    """Photos in, a verified artifact out: table, search under --latency-ms, export, verify, benchmark, report.html."""
    from trisr.export.formats import format_for_backend, get_format
    from trisr.pipeline.deploy import DeployRequest, run_deploy
    from trisr.progress import RichReporter
    from trisr.runtime.base import DEFAULT_BACKEND
    from trisr.search.config import RunConfig
    from trisr.search.config import preset as load_preset

    dev = deploy_device(device, target_alias)
    fmt = get_format(fmt_name) if fmt_name else format_for_backend(DEFAULT_BACKEND[dev.value])
    cfg = RunConfig.load(config) if config is not None else load_preset(preset)
    for name, value in (("warmup", warmup_steps), ("search", search_steps), ("finetune", finetune_steps)):
        if value is not None and value < 1:
            raise TrisrError(f"--{name}-steps must be >= 1")
    changes = run_config_changes(cfg, strategy, seed, scale, warmup_steps, search_steps, finetune_steps, max_minutes)
    if input_hw is not None:
        if profile is not None:
            raise TrisrError("--input is the table's own size with --profile; give one of them")
        changes["cost_resolution"] = parse_hw(input_hw)
    cfg = cfg.replace(**changes)
    budget_tag = f"{latency_ms:g}".replace(".", "p")
    out = out or Path("runs") / f"deploy-{dev.value}-{fmt.name}-{budget_tag}ms"
    req = DeployRequest(dev.value, latency_ms, fmt.name, cfg, out, precision, data, threads, profile, profiles, allow_mismatch,
                        train_device(train_on, names="--train-device"), revalidate, reps, qat_steps)
    state = run_deploy(req, RichReporter(err_console))
    v = state["verdict"]
    from rich.console import Console

    wide = Console(stderr=True, width=max(err_console.width, 150))  # rich squeezes to 80 columns off a terminal
    wide.print(side_by_side(v))
    wide.print(verdict_table(v))
    for reason in v["reasons"]:
        err_console.print(f"  [red]{reason}[/]")
    err_console.print(f"deploy written to [bold]{out}[/] (deploy.json, report.html; artifact under export/)")
    if as_json:
        print_json(v)
    if v["verdict"] != "PASS":
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy_cmd)
