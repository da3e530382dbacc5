"""``trisr study``: the Pareto study of PSNR against measured latency (parsing and printing only)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import DEVICE_HELP, TRAIN_DEVICE_HELP, Target, TorchDevice, deploy_device, parse_hw, print_json, train_device
from trisr.errors import TrisrError


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise TrisrError(f"{flag} takes comma-separated numbers, e.g. 10,20,40; got {text!r}") from None


def study_table(study: dict) -> Table:
    from trisr.evaluate import validation_images

    settings = study.get("settings", {})
    scored = validation_images(settings.get("data"), settings["scale"]) if settings.get("scale") else "held-out images"
    t = Table(title=f"study: PSNR on {scored} against measured latency ({study['machine']['runtime']['backend']}, "
              f"{study['machine']['cpu']})")
    for col in ("network", "kind", "budget ms", "params", "GMAC", "pred. ms", "measured ms (p10-p90)", "PSNR dB", "gain dB"):
        t.add_column(col, justify="left" if col in ("network", "kind") else "right")
    rows = sorted(study["rows"], key=lambda r: (r["budget_ms"] or 0.0, (r["latency_ms"] or {}).get("median", 1e9)))
    for r in rows:
        lat = r["latency_ms"]
        t.add_row(
            ("[bold]" if r["kind"] == "searched" else "") + r["name"],
            r["kind"],
            "-" if r["budget_ms"] is None else ",".join(f"{b:g}" for b in r["budgets_ms"]),
            "-" if r["params"] is None else f"{r['params']:,}",
            "-" if r["macs"] is None else f"{r['macs'] / 1e9:.2f}",
            "-" if r["predicted_ms"] is None else f"{r['predicted_ms']:.2f}",
            f"[red]{r['status']}: {r['reason']}" if lat is None else f"{lat['median']:.2f} ({lat['p10']:.2f}-{lat['p90']:.2f})",
            "-" if r["psnr_db"] is None else f"{r['psnr_db']:.3f}",
            "-" if r["gain_db"] is None else f"{r['gain_db']:+.3f}",
        )
    return t


def verdict_lines(study: dict) -> list[str]:
    lines = []
    for v in study["verdicts"]:
        b = f"{v['budget_ms']:g} ms"
        if v["searched"] is None:
            lines.append(f"{b}: [red]no searched network[/] ({v.get('note')})")
        elif v["margin_db"] is None:
            lines.append(f"{b}: no zoo or random network is as fast as the searched one ({v['searched_latency_ms']:.2f} ms)")
        else:
            mark = "[green]goal met[/]" if v["met"] else "[red]goal NOT met[/]"
            lines.append(f"{b}: searched {v['margin_db']:+.3f} dB against {v['best_rival']} (measured latency <= its own "
                         f"{v['searched_latency_ms']:.2f} ms); goal +{v['goal_db']:g} dB: {mark}")
    return lines


@user_errors
def study_cmd(
    budgets_ms: str = typer.Option(..., "--budgets-ms", help="Latency budgets in ms, comma-separated (e.g. 10,20,40)."),
    device: Optional[Target] = typer.Option(None, "--device", help=DEVICE_HELP),
    target_alias: Optional[Target] = typer.Option(None, "--target", hidden=True, help="Old name of --device."),
    train_on: Optional[TorchDevice] = typer.Option(None, "--train-device", help=TRAIN_DEVICE_HELP),
    backend: Optional[str] = typer.Option(None, "--backend", help="Target runtime (default per target: onnxruntime on cpu)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime threads (default: all cores)."),
    input_hw: str = typer.Option("256x256", "--input", help="LR size latency is measured at (HxW)."),
    preset: str = typer.Option("quick", "--preset", help="Search preset; its fine-tune recipe trains every network."),
    config: Optional[Path] = typer.Option(None, "--config", help="Run configuration JSON (e.g. a run's config.json); replaces --preset."),
    scale: Optional[int] = typer.Option(None, "--scale"),
    zoo: str = typer.Option("espcn,fsrcnn,span,imdn,esrt_lite", "--zoo", help="Zoo families to scale to each budget ('' for none; see trisr zoo)."),
    random: int = typer.Option(3, "--random", help="Random architectures of the space per budget, predicted cost in [0.9 B, B]."),
    strategies: str = typer.Option("trilevel", "--strategies", help="Search strategies run at every budget, comma-separated "
        "(trilevel, hinas, dcnas, netadapt, random; trilevel is always run: the verdicts judge it against every other row)."),
    finetune_steps: Optional[int] = typer.Option(None, "--finetune-steps", help="Training steps of every network (default: the preset's fine-tune)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Supernet warm-up steps of each search."),
    search_steps: Optional[int] = typer.Option(None, "--search-steps", help="Search steps of each search."),
    reps: int = typer.Option(5, "--reps", help="Interleaved timing rounds over all networks."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder; default the embedded photos."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Latency table (default: cached under the profiles folder, profiled if missing)."),
    profiles: Optional[Path] = typer.Option(None, "--profiles", help="Folder of latency tables, looked up and written (default: $TRISR_PROFILES, else ./profiles)."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("runs/study"), "--out", help="Study folder; rerun the same command to resume."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Searched networks against the zoo and random picks: PSNR against measured latency, with a report."""
    from trisr.progress import RichReporter
    from trisr.study.config import StudyConfig
    from trisr.study.run import run_study
    from trisr.zoo import ZOO

    families = tuple(f for f in zoo.split(",") if f.strip())
    unknown = [f for f in families if f not in ZOO or f == "bicubic"]
    if unknown:
        raise TrisrError(f"unknown zoo famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                         f"choose from {', '.join(n for n in ZOO.names() if n != 'bicubic')} (bicubic is always included)")
    if data is not None and not data.exists():
        raise TrisrError(f"--data {data} does not exist")
    cfg = StudyConfig(
        budgets_ms=_floats(budgets_ms, "--budgets-ms"), device=deploy_device(device, target_alias).value, backend=backend, threads=threads,
        resolution=parse_hw(input_hw), preset=preset, config=None if config is None else str(config), scale=scale, finetune_steps=finetune_steps,
        warmup_steps=warmup_steps, search_steps=search_steps, zoo=families, random=random, seed=seed, reps=reps,
        data=None if data is None else str(data), profile=None if profile is None else str(profile),
        allow_mismatch=allow_mismatch, strategies=tuple(x.strip() for x in strategies.split(",") if x.strip()),
    )
    study = run_study(cfg, out, RichReporter(err_console), profiles=profiles, train_device=train_device(train_on, names="--train-device"))
    err_console.print(study_table(study))
    for line in verdict_lines(study):
        err_console.print(line)
    err_console.print(f"study written to [bold]{out}[/] (study.json, report.md, report.html, pareto.png)")
    if as_json:
        print_json(study)


def register(app: typer.Typer) -> None:
    app.command("study")(study_cmd)
