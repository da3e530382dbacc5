"""The latency/accuracy Pareto front of a study, and its plot (measured latency against held-out PSNR)."""

from __future__ import annotations

import math
from pathlib import Path

KIND_STYLE = {
    # kind: (marker, colour, size, label)
    "searched": ("*", "#d62728", 320, "searched (trisr)"),
    "zoo": ("o", "#1f77b4", 60, "zoo (hand-designed)"),
    "random": ("^", "#7f7f7f", 50, "random (same space)"),
    "strategy": ("D", "#ff7f0e", 90, "other search strategies (same table)"),
    "bicubic": ("x", "#000000", 60, "bicubic"),
}
OTHER_STYLE = ("s", "#9467bd", 50, None)


def _latency(row: dict) -> float | None:
    lat = row.get("latency_ms")
    value = lat.get("median") if isinstance(lat, dict) else lat
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _psnr(row: dict) -> float | None:
    value = row.get("psnr_db")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def usable(row: dict) -> bool:
    """A row that can be placed on the plot: status ok, a measured median latency and a PSNR."""
    return row.get("status", "ok") == "ok" and _latency(row) is not None and _psnr(row) is not None


def pareto_front(rows: list[dict]) -> list[dict]:
    """The non-dominated rows, fastest first.

    A row is dominated when another row has latency ≤ and PSNR ≥ with at least one strict; rows that are
    not ``status == "ok"`` or lack a measured median latency or a PSNR take no part. Rows at exactly the same
    point do not dominate each other, so both stay on the front."""
    pts = [(r, _latency(r), _psnr(r)) for r in rows if usable(r)]
    front = []
    for r, lat, psnr in pts:
        dominated = any(
            lo <= lat and po >= psnr and (lo < lat or po > psnr) for o, lo, po in pts if o is not r
        )
        if not dominated:
            front.append((lat, -psnr, len(front), r))
    return [r for *_, r in sorted(front, key=lambda t: t[:3])]


def machine_cpu(machine: dict | None) -> str:
    """A readable CPU/device name from a free-form machine descriptor."""
    machine = machine or {}
    for key in ("cpu", "cpu_model", "cpu_name", "model", "gpu", "device_name", "processor", "platform"):
        value = machine.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, dict):
            for sub in ("model", "name", "brand"):
                if isinstance(value.get(sub), str):
                    return value[sub]
    return "unknown machine"


def _plain(text) -> str:
    """Text for matplotlib with ``$`` escaped, so names are never parsed as mathtext."""
    return str(text).replace("$", r"\$")


def plot_title(study: dict) -> str:
    s = study.get("settings", {})
    res = s.get("resolution") or ["?", "?"]
    return (
        f"{machine_cpu(study.get('machine'))} · {s.get('backend', '?')} ({s.get('device', '?')}) · "
        f"{res[0]}x{res[1]} LR · x{s.get('scale', '?')}"
    )


def plot_pareto(study: dict, path: Path) -> Path:
    """Write the study's Pareto plot (PNG): measured median latency (p10–p90 error bars) against held-out PSNR,
    one marker per kind, searched networks as large annotated stars, zoo points annotated with their family,
    a dashed line per budget, the bicubic PSNR as a horizontal line and the Pareto front as a step line."""
    from matplotlib.figure import Figure  # lazily: `import trisr` stays light; Figure needs no pyplot/backend

    path = Path(path)
    rows = study.get("rows", [])
    fig = Figure(figsize=(10, 6.2), dpi=110)
    ax = fig.subplots()
    kinds_seen: set[str] = set()
    for row in rows:
        if not usable(row):
            continue
        kind = row.get("kind", "?")
        marker, colour, size, label = KIND_STYLE.get(kind, OTHER_STYLE)
        lat, psnr = _latency(row), _psnr(row)
        p = row["latency_ms"] if isinstance(row["latency_ms"], dict) else {}
        p10, p90 = p.get("p10", lat), p.get("p90", lat)
        xerr = [[max(lat - (p10 if p10 is not None else lat), 0.0)], [max((p90 if p90 is not None else lat) - lat, 0.0)]]
        ax.errorbar(lat, psnr, xerr=xerr, fmt="none", ecolor=colour, alpha=0.6, capsize=3, lw=1, zorder=2)
        ax.scatter(
            [lat], [psnr], marker=marker, s=size, c=colour, zorder=4 if kind == "searched" else 3,
            **({"edgecolors": "black", "linewidths": 0.8} if kind == "searched" else {}),
            label=(label or kind) if kind not in kinds_seen else None,
        )
        kinds_seen.add(kind)
        if kind == "searched":
            ax.annotate(
                _plain(row.get("name", "")), (lat, psnr), xytext=(8, 8), textcoords="offset points", fontsize=9,
                fontweight="bold", color=colour, zorder=5,
            )
        elif kind in ("zoo", "strategy"):  # family: the zoo family or the strategy's name
            ax.annotate(
                _plain(row.get("family") or row.get("name", "")), (lat, psnr), xytext=(5, -11), textcoords="offset points",
                fontsize=8, color=colour,
            )
    front = pareto_front(rows)
    if len(front) >= 1:
        xs = [_latency(r) for r in front]
        ys = [_psnr(r) for r in front]
        ax.step(xs, ys, where="post", color="#2ca02c", lw=1.5, alpha=0.8, zorder=1, label="Pareto front")
    for i, budget in enumerate(study.get("settings", {}).get("budgets_ms") or []):
        ax.axvline(float(budget), ls="--", color="#555555", lw=1, zorder=0, label="budget" if i == 0 else None)
        ax.annotate(f"{float(budget):g} ms", (float(budget), 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -12), textcoords="offset points", fontsize=8, color="#555555")
    bic = (study.get("bicubic") or {}).get("psnr_db")
    if isinstance(bic, (int, float)):
        ax.axhline(float(bic), ls=":", color="black", lw=1, zorder=0, label=f"bicubic {bic:.2f} dB")
    ax.set_xlabel("measured latency, median (ms); bars: p10–p90")
    ax.set_ylabel("held-out PSNR, Y (dB)")
    ax.set_title(_plain(plot_title(study)), fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
