"""The shareable report of one run folder (``trisr search``, ``trisr train``, or a zoo run): search curves,
the derived architecture as a diagram, cost and latency against the budget, the fine-tune curve, held-out
metrics and a bicubic / network / HR crop; ``report.md`` plus a self-contained ``report.html``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from trisr.errors import TrisrError
from trisr.report._doc import flatten, fmt, write_pair

CROP_HR_PX = 64

QUANTITY_TITLES = {
    "r": "sparsestmax radius r",
    "radius": "sparsestmax radius r",
    "tau": "Gumbel temperature τ",
    "temperature": "temperature",
    "nnz_op": "non-zero op weights per slot",
    "nnz_node": "non-zero tree-node weights",
    "frozen_op": "frozen op slots",
    "cost_weight": "cost weight λ (adaptive)",
    "lr": "learning rate",
}
FIXED_KEYS = {"time", "event", "step", "loss", "arch_loss", "psnr_db"}


def _read_json(path: Path, what: str) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrisrError(f"{what} {path} is not valid JSON: {exc}") from None


def read_events(run: Path) -> list[dict]:
    """``events.jsonl`` as a list of dicts; unreadable lines (a run killed mid-write) are skipped."""
    from trisr.rundir import EVENTS_FILE

    path = Path(run) / EVENTS_FILE
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(e, dict):
            events.append(e)
    return events


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ------------------------------------------------------------------------------------------------ plots


def plot_search_curves(events: list[dict], config: dict, summary: dict, path: Path) -> Path | None:
    """Warm-up and search curves from events.jsonl: loss, cost against the budget band, the argmax network's
    held-out PSNR, and one panel per other logged quantity (radius, sparsity, cost weight, ...)."""
    warm = [e for e in events if e.get("event") == "warmup" and _num(e.get("step"))]
    search = [e for e in events if e.get("event") == "search" and _num(e.get("step"))]
    if not warm and not search:
        return None
    from matplotlib.figure import Figure

    offset = (config.get("warmup") or {}).get("steps") or max((e["step"] for e in warm), default=0)

    def x(e):
        return e["step"] + (offset if e.get("event") == "search" else 0)

    extra = {k for e in warm + search for k, v in e.items() if _num(v) and k not in FIXED_KEYS and not k.startswith("cost_")}
    extra |= {"cost_weight"} if any(_num(e.get("cost_weight")) for e in search) else set()
    order = list(QUANTITY_TITLES)
    extra = sorted(extra, key=lambda k: (order.index(k) if k in order else len(order), k))
    panels = ["loss"] + (["cost"] if any(k.startswith("cost_") and k != "cost_weight" for e in search for k in e) else [])
    panels += ["psnr"] if any(_num(e.get("psnr_db")) for e in search) else []
    panels += extra
    ncols = 3
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(13, 3.3 * nrows), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    cost = summary.get("cost") or {}
    unit = cost.get("unit") or ""
    for ax, panel in zip(axes, panels):
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("step (warm-up, then search)")
        if offset and warm and search:
            ax.axvline(offset, color="#999999", lw=0.8, ls=":")
        if panel == "loss":
            for series, key, label in ((warm, "loss", "warm-up loss"), (search, "loss", "search loss (weights)"),
                                       (search, "arch_loss", "search loss (architecture)")):
                pts = [(x(e), e[key]) for e in series if _num(e.get(key))]
                if pts:
                    ax.plot(*zip(*pts), marker=".", label=label)
            if all(_num(e.get("loss")) and e["loss"] > 0 for e in warm + search):
                ax.set_yscale("log")
            ax.set_title("training loss")
            ax.legend(fontsize=7)
        elif panel == "cost":
            keys = sorted({k for e in search for k in e if k.startswith("cost_") and k != "cost_weight"})
            for key in keys:
                pts = [(x(e), e[key]) for e in search if _num(e.get(key))]
                if pts:
                    ax.plot(*zip(*pts), marker=".", label=key.removeprefix("cost_"))
            budget = cost.get("budget")
            if _num(budget):
                band = config.get("budget_band", 0.1) if _num(config.get("budget_band")) else 0.1
                ax.axhline(budget, color="#d62728", ls="--", lw=1, label=f"budget {budget:g} {unit}")
                ax.axhspan((1 - band) * budget, budget, color="#d62728", alpha=0.08)
            ax.set_title(f"cost ({unit or cost.get('metric', '?')})")
            ax.legend(fontsize=7)
        elif panel == "psnr":
            pts = [(x(e), e["psnr_db"]) for e in search if _num(e.get("psnr_db"))]
            ax.plot(*zip(*pts), marker=".", color="#2ca02c", label="argmax network")
            bic = (summary.get("metrics") or {}).get("bicubic_psnr_db")
            if _num(bic):
                ax.axhline(bic, color="black", ls=":", lw=1, label=f"bicubic {bic:.2f} dB")
            ax.set_title("held-out PSNR of the argmax network (dB)")
            ax.legend(fontsize=7)
        else:
            for series, label in ((warm, "warm-up"), (search, "search")):
                pts = [(x(e), e[panel]) for e in series if _num(e.get(panel))]
                if pts:
                    ax.plot(*zip(*pts), marker=".", label=label)
            ax.set_title(QUANTITY_TITLES.get(panel, panel))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def plot_finetune(events: list[dict], summary: dict, path: Path) -> Path | None:
    """Held-out PSNR during fine-tuning (``summary["finetune_curve"]``, else the fine-tune events) and the
    training loss on a second axis."""
    curve = [c for c in summary.get("finetune_curve") or [] if _num(c.get("step")) and _num(c.get("psnr_db"))]
    ft = [e for e in events if e.get("event") == "finetune" and _num(e.get("step"))]
    if not curve:
        curve = [e for e in ft if _num(e.get("psnr_db"))]
    if not curve and not ft:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.2), dpi=100)
    ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    handles = []
    if curve:
        handles += ax.plot([c["step"] for c in curve], [c["psnr_db"] for c in curve], marker=".", color="#2ca02c",
                           label="held-out PSNR (dB)")
    bic = (summary.get("metrics") or {}).get("bicubic_psnr_db")
    if _num(bic):
        handles.append(ax.axhline(bic, color="black", ls=":", lw=1, label=f"bicubic {bic:.2f} dB"))
    ax.set_xlabel("fine-tune step")
    ax.set_ylabel("PSNR (dB)")
    loss = [(e["step"], e["loss"]) for e in ft if _num(e.get("loss"))]
    if loss:
        ax2 = ax.twinx()
        handles += ax2.plot(*zip(*loss), color="#1f77b4", alpha=0.6, lw=1, label="training loss")
        ax2.set_ylabel("loss")
    ax.legend(handles=handles, labels=[h.get_label() for h in handles], fontsize=8, loc="lower right")
    ax.set_title("fine-tuning")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _box(ax, x: float, y: float, w: float, h: float, text: str, colour: str, fontsize: float = 9) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=colour, ec="#333333",
                                lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, family="monospace")


def _arrow(ax, x0: float, x1: float, y: float) -> None:
    ax.annotate("", xy=(x1, y), xytext=(x0, y), arrowprops=dict(arrowstyle="->", color="#333333", lw=1.2))


def architecture_blocks(genotype: dict) -> list[tuple[str, str, str]]:
    """``(kind, title, body)`` per box of the derived network, head to tail, from a genotype dict."""
    space = genotype.get("space") or {}
    nf, scale, variant = space.get("nf", "?"), space.get("scale", "?"), space.get("variant", "B")
    ops_names = space.get("ops") or []
    readable = genotype.get("readable")
    out = [("head", "head", f"conv3x3\n3→{nf}")]
    cell = 0
    for kind in genotype.get("path", ""):
        if kind == "C":
            lines = []
            if readable and cell < len(readable):
                ops, ch = readable[cell]["ops"], readable[cell]["channels"]
            else:  # no readable echo: op names from the space, widths unknown
                ops = [ops_names[o] if isinstance(o, int) and o < len(ops_names) else str(o)
                       for o in (genotype.get("ops") or [[]])[cell]]
                ch = None
            for j, op in enumerate(ops):
                lines.append(f"{op} {ch[j]}→{ch[j + 1]}" if ch else op)
            lines.append("×0.2 + x")
            out.append(("cell", f"cell {cell + 1}" + (" (stem)" if cell == 0 else ""), "\n".join(lines)))
            cell += 1
        else:
            body = f"conv3x3\n{nf}→{nf}" if variant == "B" else f"nearest ×2\nconv3x3 {nf}→{nf}\nLeakyReLU"
            out.append(("up", "up block", body))
    if variant == "B" and _num(scale):
        tail = f"conv3x3\n{nf}→{3 * scale * scale}\nPixelShuffle ×{scale}"
    else:
        tail = f"conv3x3\n{nf}→3"
    skip = space.get("skip", "none")
    if skip and skip != "none":
        tail += f"\n+ {skip} ×{scale}(LR)"
    out.append(("tail", "tail", tail))
    return out


def plot_architecture(genotype: dict | None, arch: dict | None, path: Path) -> Path | None:
    """The derived network as boxes and arrows (LR → head → cells / up blocks → tail → SR); a zoo network
    (``arch.json``) as one box with its family and knobs."""
    from matplotlib.figure import Figure

    colours = {"head": "#dfe9f7", "cell": "#fde7c8", "up": "#e3f3df", "tail": "#dfe9f7", "io": "#eeeeee", "zoo": "#fde7c8"}
    if genotype is not None:
        boxes = [("io", "LR", "")] + architecture_blocks(genotype) + [("io", "SR", "")]
    elif arch is not None:
        knobs = {k: v for k, v in arch.items() if k not in ("family", "schema_version", "kind") and not isinstance(v, (dict, list))}
        for k, v in arch.items():
            if isinstance(v, dict):
                knobs.update({f"{kk}": vv for kk, vv in v.items() if not isinstance(vv, (dict, list))})
        body = "\n".join(f"{k}={v}" for k, v in sorted(knobs.items()))
        boxes = [("io", "LR", ""), ("zoo", str(arch.get("family") or arch.get("kind") or "zoo network"), body), ("io", "SR", "")]
    else:
        return None
    lines = [len(b[2].splitlines()) for b in boxes]
    h = 0.5 + 0.28 * max(lines + [1])
    w, gap = 1.9, 0.55
    fig = Figure(figsize=(max(6.0, 0.95 * len(boxes) * (w + gap)), 1.2 + 1.1 * h), dpi=100)
    ax = fig.subplots()
    ax.set_axis_off()
    xpos = 0.0
    for i, (kind, title, body) in enumerate(boxes):
        bw = 0.8 if kind == "io" else w
        bh = 0.6 if kind == "io" else h
        _box(ax, xpos, -bh / 2, bw, bh, body or title, colours[kind])
        if kind != "io":
            ax.text(xpos + bw / 2, h / 2 + 0.12, title, ha="center", va="bottom", fontsize=9, fontweight="bold")
        if i + 1 < len(boxes):
            _arrow(ax, xpos + bw, xpos + bw + gap, 0.0)
        xpos += bw + gap
    ax.set_xlim(-0.2, xpos - gap + 0.2)
    ax.set_ylim(-h / 2 - 0.3, h / 2 + 0.6)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


# ------------------------------------------------------------------------------------------------ crops


def _crop_panels(run: Path, out: Path, summary: dict) -> tuple[list[tuple], str | None]:
    """Bicubic / this network / HR crops of the first embedded held-out photo; (gallery items, note)."""
    from trisr.data.pairs import load_pairs
    from trisr.data.metrics import evaluate_pair
    from trisr.data.resize import bicubic_upscale, quantize_uint8
    from trisr.evaluate import super_resolve
    from trisr.report.crops import pick_box, write_crop_panels
    from trisr.rundir import load_model

    try:
        model = load_model(run)
    except TrisrError as exc:
        return [], f"crops skipped: {exc}"
    scale = getattr(model, "scale", None) or getattr(getattr(model, "arch", None), "scale", None)
    if not scale:
        return [], "crops skipped: the network does not say its scale"
    pairs = load_pairs(None, int(scale), "val")
    if not pairs:
        return [], "crops skipped: no held-out photo"
    pair = pairs[0]
    sr = super_resolve(model, pair.lr)
    bic = quantize_uint8(bicubic_upscale(pair.lr, int(scale)))
    box = pick_box(pair.hr, CROP_HR_PX)
    ours = evaluate_pair(sr, pair.hr, int(scale))
    base = evaluate_pair(bic, pair.hr, int(scale))
    panels = write_crop_panels([("bicubic", bic), ("this network", sr), ("HR", pair.hr)], box, out / "crops")
    captions = [
        f"bicubic · {base['psnr_db']:.2f} dB on {pair.name}",
        f"{run.name} · {ours['psnr_db']:.2f} dB on {pair.name}",
        f"HR ({pair.name})",
    ]
    y, x, h, w = box
    note = f"{pair.name}, x{scale}, HR box y={y} x={x} {h}x{w} px, shown enlarged ×{panels[0]['zoom']} (nearest)"
    return [(Path(p["path"]), c) for p, c in zip(panels, captions)], note


# ------------------------------------------------------------------------------------------------ report


def _is_run(run: Path) -> bool:
    from trisr.rundir import ARCH_FILE, GENOTYPE_FILE, SUMMARY_FILE

    return any((run / f).exists() for f in (SUMMARY_FILE, GENOTYPE_FILE, ARCH_FILE))


def write_run_report(run: Path, out: Path | None = None) -> dict:
    """Write ``report.md``, ``report.html`` and their figures for a run folder into ``out`` (default
    ``RUN/report/``). Returns ``{"markdown", "html", <figure name>...: Path}``."""
    run = Path(run)
    if not run.is_dir():
        raise TrisrError(f"run folder not found: {run}")
    if not _is_run(run):
        raise TrisrError(
            f"{run} is neither a trisr run folder (no summary.json, genotype.json or arch.json) nor a study folder "
            "(no study.json)"
        )
    out = Path(out) if out is not None else run / "report"
    out.mkdir(parents=True, exist_ok=True)
    from trisr.rundir import ARCH_FILE, CONFIG_FILE, GENOTYPE_FILE, SUMMARY_FILE

    summary = _read_json(run / SUMMARY_FILE, "summary") or {}
    config = _read_json(run / CONFIG_FILE, "configuration") or {}
    genotype = _read_json(run / GENOTYPE_FILE, "genotype")
    arch = _read_json(run / ARCH_FILE, "architecture") if genotype is None else None
    events = read_events(run)
    written: dict[str, Path] = {}

    blocks: list[tuple] = [("h", 1, f"trisr run — {run.name}")]
    g = summary.get("genotype") or {}
    facts = []
    if genotype is not None:
        facts.append(f"architecture {genotype.get('path', '?')} (digest {g.get('digest', '?')})")
    elif arch is not None:
        facts.append(f"zoo network {arch.get('family', '?')}")
    preset = config.get("preset") or (summary.get("settings") or {}).get("preset")
    if preset:
        facts.append(f"preset {preset}")
    space = (genotype or {}).get("space") or config.get("space") or {}
    if space.get("scale"):
        facts.append(f"x{space['scale']}")
    wall = (summary.get("wall_time_s") or {}).get("total")
    if _num(wall):
        facts.append(f"wall time {wall:.0f} s")
    if summary.get("device"):
        facts.append(f"trained on {summary['device']}")
    blocks.append(("p", "; ".join(facts) + "." if facts else "A trisr run folder."))

    # cost and latency
    blocks.append(("h", 2, "Cost and latency"))
    kv = []
    if _num(summary.get("params")):
        kv.append(("parameters", f"{summary['params']:,}"))
    if _num(summary.get("macs")):
        res = summary.get("macs_resolution") or ["?", "?"]
        kv.append((f"MACs @ {res[0]}x{res[1]} LR", f"{summary['macs'] / 1e9:.4f} G"))
    cost = summary.get("cost")
    if cost:
        budget = "none" if cost.get("budget") is None else f"{cost['budget']:g} {cost.get('unit', '')}"
        within = cost.get("within_budget")
        kv.append(("cost (table)", f"{fmt(cost.get('derived'), '.4g')} {cost.get('unit', '')}, budget {budget}"
                   + ("" if within is None else ("  PASS" if within else "  FAIL"))))
    lat = summary.get("latency")
    if lat:
        m = lat.get("measured") or {}
        res = lat.get("resolution") or ["?", "?"]
        backend = lat.get("backend") or {}
        kv.append((f"measured latency @ {res[0]}x{res[1]} LR",
                   f"{fmt(m.get('median_ms'))} ms median (p10 {fmt(m.get('p10_ms'))}, p90 {fmt(m.get('p90_ms'))})"))
        kv.append(("predicted latency (table)", f"{fmt(lat.get('predicted_ms'))} ms "
                   f"({fmt(lat.get('error_pct'), '+.1f')} % against measured)"))
        if lat.get("budget_ms") is not None:
            kv.append(("latency budget", f"{lat['budget_ms']:g} ms: {lat.get('verdict') or '?'}"))
        if lat.get("rounds_ms"):
            kv.append(("measurement rounds", ", ".join(f"{r:.2f}" for r in lat["rounds_ms"]) + " ms"))
        kv.append(("runtime", ", ".join(f"{k}={v}" for k, v in backend.items() if not isinstance(v, (dict, list)))))
    else:
        kv.append(("measured latency", "not measured in this run (search with --latency-ms, or trisr bench)"))
    blocks.append(("kv", kv))

    # architecture
    blocks.append(("h", 2, "Architecture"))
    arch_png = plot_architecture(genotype, arch, out / "architecture.png")
    if arch_png is not None:
        written["architecture"] = arch_png
        blocks.append(("img", arch_png, "the derived network"))
        if genotype is not None and genotype.get("readable"):
            rows = [[str(i + 1), " → ".join(c["ops"]), " → ".join(str(x) for x in c["channels"])]
                    for i, c in enumerate(genotype["readable"])]
            blocks.append(("table", ["cell", "ops", "channels"], rows))
    else:
        blocks.append(("p", "No genotype.json or arch.json: no architecture to draw."))

    # search curves
    curves = plot_search_curves(events, config, summary, out / "search_curves.png")
    if curves is not None:
        written["search_curves"] = curves
        blocks.append(("h", 2, "Search"))
        blocks.append(("img", curves, "warm-up and search curves"))
        hist = summary.get("controller_history") or []
        if hist:
            stride = max(1, math.ceil(len(hist) / 30))
            shown = hist[::stride] + ([hist[-1]] if (len(hist) - 1) % stride else [])
            blocks.append(("h", 3, "Budget controller" + (f" (every {stride}th entry)" if stride > 1 else "")))
            blocks.append(("table", ["step", "radius", "argmax cost", "cost weight", "action", "argmax PSNR dB"], [
                [str(h.get("step")), fmt(h.get("radius"), ".3f"), fmt(h.get("derived_cost"), ".4g"),
                 fmt(h.get("cost_weight"), ".3g"), str(h.get("action", "")), fmt(h.get("argmax_psnr_db"), ".3f")]
                for h in shown]))
        derivation = summary.get("derivation")
        if derivation and derivation.get("budget_steps"):
            blocks.append(("p", "Derivation steps towards the budget: " + "; ".join(
                json.dumps(s) if isinstance(s, (dict, list)) else str(s) for s in derivation["budget_steps"])))

    ft = plot_finetune(events, summary, out / "finetune.png")
    if ft is not None:
        written["finetune"] = ft
        blocks.append(("h", 2, "Fine-tuning"))
        blocks.append(("img", ft, "fine-tune curve"))

    # held-out metrics
    metrics = summary.get("metrics")
    blocks.append(("h", 2, "Held-out metrics"))
    if metrics and metrics.get("images"):
        rows = [[r.get("name", "?"), fmt(r.get("psnr_db"), ".3f"), fmt(r.get("ssim"), ".4f"),
                 fmt(r.get("bicubic_psnr_db"), ".3f"), fmt(r.get("bicubic_ssim"), ".4f"),
                 fmt(r["psnr_db"] - r["bicubic_psnr_db"], "+.3f") if _num(r.get("psnr_db")) and _num(r.get("bicubic_psnr_db")) else "–"]
                for r in metrics["images"]]
        rows.append(["mean", fmt(metrics.get("psnr_db"), ".3f"), fmt(metrics.get("ssim"), ".4f"),
                     fmt(metrics.get("bicubic_psnr_db"), ".3f"), fmt(metrics.get("bicubic_ssim"), ".4f"),
                     fmt(metrics.get("gain_db"), "+.3f")])
        blocks.append(("table", ["image", "PSNR dB", "SSIM", "bicubic PSNR dB", "bicubic SSIM", "gain dB"], rows))
        conv = metrics.get("convention")
        if conv:
            blocks.append(("p", "Convention: " + ", ".join(f"{k} {v}" for k, v in conv.items()) + "."))
    else:
        blocks.append(("p", "No held-out metrics in summary.json."))

    # crops
    blocks.append(("h", 2, "Crops"))
    items, note = _crop_panels(run, out, summary)
    if note:
        blocks.append(("p", note))
    if items:
        blocks.append(("gallery", items))
        for i, (p, _) in enumerate(items):
            written[f"crop{i}"] = p

    # settings and versions
    if config:
        blocks.append(("h", 2, "Configuration"))
        blocks.append(("kv", flatten(config)))
    if summary.get("versions"):
        blocks.append(("h", 2, "Versions"))
        blocks.append(("kv", [(k, str(v)) for k, v in summary["versions"].items()]))

    written.update(write_pair(blocks, f"trisr run — {run.name}", out))
    return written
