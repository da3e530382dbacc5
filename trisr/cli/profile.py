"""``trisr profile``: build, show and validate latency lookup tables."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import DEVICE_HELP, Target, deploy_device, parse_hw, print_json
from trisr.errors import TrisrError


def _space_from(preset: str, config: Optional[Path], scale: Optional[int]):
    from trisr.search.config import RunConfig
    from trisr.search.config import preset as load_preset

    cfg = RunConfig.load(config) if config is not None else load_preset(preset)
    return cfg.space.replace(scale=scale) if scale else cfg.space


def lut_tables(lut) -> list[Table]:
    h, w = lut.resolution
    t = lut.target
    head = Table(title=f"latency table: {t.get('backend')} {t.get('version')} on {t.get('device')} ({t.get('cpu', t.get('gpu', ''))})", show_header=False)
    head.add_row("resolution", f"{h}x{w} LR, batch {lut.batch}")
    head.add_row("threads / precision", f"{t.get('threads')} / {t.get('precision')}")
    head.add_row("space", f"{lut.space_fingerprint} (nf {lut.space.nf}, x{lut.space.scale}, widths {list(lut.space.widths)})")
    head.add_row("created", f"{lut.created} on {lut.host}, profiling took {lut.profiling_s:.0f} s")
    if lut.calibration:
        c = lut.calibration
        scales = ", ".join(f"{k} {v:.3f}" for k, v in c.scales.items()) if c.model == "per_op" else f"{c.scales['fixed']:.3f}"
        loo = ", ".join(f"{k} {100 * v:.1f} %" for k, v in c.loo_rmspe.items())
        head.add_row("calibration", f"{c.model}: overhead {c.overhead_ms:.3f} ms, scale {scales}; {c.n} networks; LOO RMSPE {loo}")
    for label, v in (("validation", lut.validation), ("validation, dense", (lut.validation or {}).get("dense"))):
        if v:
            head.add_row(
                label,
                f"{v['n']} fresh networks: RMSPE {100 * v['rmspe']:.1f} %, within ±5 % {100 * v['within_5pct']:.0f} %, "
                f"±10 % {100 * v['within_10pct']:.0f} %, max {v['max_abs_err_pct']:.1f} %",
            )
    entries = Table(title=f"entries @ {h}x{w} LR (ms)")
    for col in ("entry", "latency_ms", "fixed_ms", "alone (x1)", "x3", "p10–p90", "cv", "n"):
        entries.add_column(col, justify="left" if col == "entry" else "right")
    for k, e in lut.entries.items():
        entries.add_row(
            k, f"{e.latency_ms:.3f}", f"{e.fixed_ms:.3f}", f"{e.t_x1_ms:.3f}", "-" if e.t_x3_ms is None else f"{e.t_x3_ms:.3f}",
            f"{e.p10_ms:.3f}–{e.p90_ms:.3f}", f"{100 * e.cv:.1f}%" + ("" if e.stable else " !"), str(e.n),
        )
    return [head, entries]


@user_errors
def profile_cmd(
    device: Optional[Target] = typer.Option(None, "--device", help=DEVICE_HELP),
    target_alias: Optional[Target] = typer.Option(None, "--target", hidden=True, help="Old name of --device."),
    backend: Optional[str] = typer.Option(None, "--backend", help="onnxruntime | openvino | torch (cpu); tensorrt | torch (cuda, jetson). Default: onnxruntime on cpu, tensorrt on GPUs (torch CUDA where TensorRT is absent)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32 | bf16 (OpenVINO on CPUs with AVX512-BF16 or AMX) | fp16 (TensorRT) | int8. "
        "Default: the runtime's own default on this device (OpenVINO: bf16 where the CPU has it; trisr info shows it)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime threads (default: all cores)."),
    input_hw: str = typer.Option("256x256", "--input", help="Deployment LR input HxW."),
    preset: str = typer.Option("quick", "--preset", help="Search space of this preset (quick | paper)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Search space from a run configuration JSON."),
    scale: Optional[int] = typer.Option(None, "--scale"),
    calibrate: int = typer.Option(20, "--calibrate", help="Sampled whole networks for the calibration fit (0: none)."),
    validate: int = typer.Option(0, "--validate", help="Fresh networks to validate on (RMSPE, share within ±5/±10 %)."),
    lut_file: Optional[Path] = typer.Option(None, "--lut", help="With --validate: validate this existing table instead of profiling."),
    repeats: int = typer.Option(3, "--repeats", help="Timed windows per measurement."),
    window_s: float = typer.Option(0.2, "--window-s", help="Minimum seconds per timed window."),
    seed: int = typer.Option(0, "--seed"),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default PROFILES/<target>-<backend>-...json)."),
    profiles: Optional[Path] = typer.Option(None, "--profiles", help="Folder PROFILES of latency tables (default: $TRISR_PROFILES, else ./profiles)."),
    show: Optional[Path] = typer.Option(None, "--show", help="Print a latency table and exit."),
    host: Optional[str] = typer.Option(None, "--host", help="Profile on user@address over SSH and bring the table back."),
    remote_trisr: str = typer.Option("trisr", "--remote-trisr", help="Shell command that runs trisr on the remote host, e.g. '~/venv/bin/trisr'."),
    ssh_config: Optional[Path] = typer.Option(None, "--ssh-config", help="ssh -F FILE (port, key, known hosts) for --host."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Measure every candidate op of the search space in the runtime it ships in on --device; write a latency table."""
    from trisr.profile.lut import default_lut_path, load_lut
    from trisr.profile.profiler import profile, validate_lut
    from trisr.profile.target import make_backend
    from trisr.progress import RichReporter
    from trisr.runtime.timing import TimingProtocol

    target = deploy_device(device, target_alias)
    for flag, value, low in (("--validate", validate, 0), ("--calibrate", calibrate, 0), ("--repeats", repeats, 1)):
        if value < low:
            raise TrisrError(f"{flag} must be >= {low}, got {value}")
    if not window_s > 0:
        raise TrisrError(f"--window-s must be > 0, got {window_s}")
    if show is not None:
        lut = load_lut(show)
        for t in lut_tables(lut):
            err_console.print(t)
        if as_json:
            print_json(lut.to_dict())
        return
    if host is not None:
        from trisr.profile.remote import profile_remote

        # --target, not --device: the hidden alias every trisr release knows, so an older trisr on the device works.
        args = ["--target", target.value, "--input", input_hw, "--preset", preset, "--calibrate", str(calibrate),
                "--validate", str(validate), "--repeats", str(repeats), "--window-s", str(window_s), "--seed", str(seed)]
        for flag, value in (("--backend", backend), ("--precision", precision), ("--threads", threads), ("--scale", scale)):
            if value is not None:
                args += [flag, str(value)]
        if config is not None or lut_file is not None:
            raise TrisrError("--config and --lut are local files; with --host use --preset/--scale")
        lut = profile_remote(host, args, remote_trisr, ssh_config)
        path = out or default_lut_path(lut.target, lut.space, lut.resolution, profiles)
        lut.save(path)
        err_console.print(f"latency table from {host} written to [bold]{path}[/]")
        if as_json:
            print_json({"path": str(path), **lut.to_dict()})
        return
    protocol = TimingProtocol(repeats=repeats, window_s=window_s)
    reporter = RichReporter(err_console)
    runtime = make_backend(target.value, backend, threads, precision)
    jetson = runtime.describe().get("jetson")
    if jetson is not None and jetson.get("clocks") != "pinned":
        # Warn, not fail: profiling at the deployment's own clock setting can be intended.
        err_console.print(
            f"[yellow]warning:[/] Jetson clocks are not pinned ({jetson.get('clocks', 'unknown')}); latencies will vary. "
            "Run `sudo jetson_clocks` for stable tables. Power mode: " + str(jetson.get("power_mode", "unknown"))
        )
    resolution = parse_hw(input_hw)
    from trisr.lock import locked

    if lut_file is not None:
        if not validate:
            raise TrisrError("--lut needs --validate N")
        with locked(lut_file, "file"):
            lut = load_lut(lut_file)
            lut.check(lut.space, runtime.describe(), resolution)
            validate_lut(lut, runtime, validate, seed + 1, protocol, reporter)
            path = lut.save(lut_file)
    else:
        space = _space_from(preset, config, scale)
        path = out or default_lut_path(runtime.describe(), space, resolution, profiles)
        with locked(path, "file"):  # a second profile of the same table refuses instead of racing it
            lut = profile(space, runtime, resolution, protocol, calibrate=calibrate, validate=validate, seed=seed, reporter=reporter)
            path = lut.save(path)
    for t in lut_tables(lut):
        err_console.print(t)
    err_console.print(f"latency table written to [bold]{path}[/]")
    if as_json:
        print_json({"path": str(path), **lut.to_dict()})


def register(app: typer.Typer) -> None:
    app.command("profile")(profile_cmd)
