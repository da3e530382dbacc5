"""The shareable report of a ``trisr study`` folder, from its ``study.json``: ``pareto.png``, ``report.md``
and a self-contained ``report.html``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from trisr.errors import TrisrError
from trisr.report._doc import flatten, fmt, write_pair
from trisr.report.pareto import machine_cpu, pareto_front, plot_pareto, plot_title

STUDY_FILE = "study.json"
STUDY_SCHEMA_VERSION = 1


def load_study(study_dir: Path) -> dict:
    """``study.json`` of a study folder, checked for kind and schema version (TrisrError otherwise)."""
    path = Path(study_dir) / STUDY_FILE
    try:
        study = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrisrError(f"{study_dir} holds no {STUDY_FILE}; is it a trisr study folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrisrError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(study, dict) or study.get("kind") != "trisr-study":
        raise TrisrError(f"{path} is not a trisr study (kind {study.get('kind') if isinstance(study, dict) else None!r})")
    if study.get("schema_version") != STUDY_SCHEMA_VERSION:
        raise TrisrError(
            f"{path}: study schema version {study.get('schema_version')} is not supported (expected {STUDY_SCHEMA_VERSION})"
        )
    if not isinstance(study.get("rows"), list):
        raise TrisrError(f"{path} has no rows")
    return study


def _signed(x: float, spec: str = "+.2f") -> str:
    return format(x, spec).replace("-", "\u2212")


def _lat(row: dict | None) -> float | None:
    lat = (row or {}).get("latency_ms")
    return lat.get("median") if isinstance(lat, dict) else None


def _lat_cell(row: dict) -> str:
    lat = row.get("latency_ms")
    if not isinstance(lat, dict) or lat.get("median") is None:
        return "–"
    return f"{lat['median']:.2f} ({fmt(lat.get('p10'))}–{fmt(lat.get('p90'))})"


def _sort_key(row: dict):
    b = row.get("budget_ms")
    lat = _lat(row)
    return (b is None, b if b is not None else 0.0, lat if lat is not None else math.inf, str(row.get("name")))


def verdict_sentence(v: dict, rows_by_name: dict) -> str:
    """One plain-language sentence for a verdict of ``study.json``."""
    b = v.get("budget_ms")
    at = f"at {b:g} ms" if isinstance(b, (int, float)) else "without a budget"
    name = v.get("searched")
    searched = rows_by_name.get(name)
    goal = v.get("goal_db")
    goal_txt = f" (goal {_signed(goal)} dB)" if isinstance(goal, (int, float)) else ""
    outcome = {True: "goal met", False: "goal NOT met"}.get(v.get("met"), "nothing to compare with")
    if searched is None or searched.get("status", "ok") != "ok":
        reason = (searched or {}).get("reason") or "no result"
        return f"{at} the searched network ({name}) failed: {reason}: {outcome}."
    own = _lat(searched)
    own_txt = f"{own:.2f} ms measured" if own is not None else "latency not measured"
    rival = v.get("best_rival")
    margin = v.get("margin_db")
    if rival is None or margin is None:
        return (
            f"{at} the searched network ({name}, {own_txt}) has no rival whose measured latency is ≤ its own"
            f"{goal_txt}: {outcome}."
        )
    rival_lat = _lat(rows_by_name.get(rival))
    rival_txt = f", {rival_lat:.2f} ms" if rival_lat is not None else ""
    side = f"{_signed(margin)} dB above" if margin >= 0 else f"{abs(margin):.2f} dB below ({_signed(margin)} dB)"
    return (
        f"{at} the searched network ({name}, {own_txt}) is {side} the best rival ({rival}{rival_txt}) whose measured "
        f"latency is ≤ its own{goal_txt}: {outcome}."
    )


def study_blocks(study: dict, study_dir: Path, pareto_png: Path) -> list[tuple]:
    s = study.get("settings", {})
    rows = study["rows"]
    by_name = {r.get("name"): r for r in rows}
    on_front = {id(r) for r in pareto_front(rows)}
    blocks: list[tuple] = [("h", 1, f"trisr study — {plot_title(study)}")]
    created = study.get("created", "?")
    wall = study.get("wall_s")
    blocks.append((
        "p",
        f"Created {created}; wall time {fmt(wall, '.0f')} s. {len(rows)} networks measured with "
        f"{s.get('backend', '?')} on {machine_cpu(study.get('machine'))} at {_res(s)} LR, x{s.get('scale', '?')}; "
        f"PSNR/SSIM on Y of the held-out photos. Bicubic: {fmt((study.get('bicubic') or {}).get('psnr_db'))} dB, "
        f"SSIM {fmt((study.get('bicubic') or {}).get('ssim'), '.4f')}.",
    ))
    blocks.append(("h", 2, "Verdicts"))
    verdicts = sorted(study.get("verdicts") or [], key=lambda v: (v.get("budget_ms") is None, v.get("budget_ms") or 0))
    if not verdicts:
        blocks.append(("p", "No verdicts in this study."))
    for v in verdicts:
        blocks.append(("p", verdict_sentence(v, by_name)))
    blocks.append(("h", 2, "Latency against accuracy"))
    blocks.append(("img", pareto_png, "Pareto plot: measured latency against held-out PSNR"))
    blocks.append(("h", 2, "Networks"))
    headers = ["name", "kind", "budget ms", "params", "GMAC", "predicted ms", "measured ms (p10–p90)", "PSNR dB",
               "SSIM", "gain dB", "Pareto", "status"]
    table = []
    for r in sorted(rows, key=_sort_key):
        ok = r.get("status", "ok") == "ok"
        status = "ok" if ok else f"{r.get('status')}: {r.get('reason') or ''}".rstrip(": ")
        table.append([
            str(r.get("name")), str(r.get("kind")), fmt(r.get("budget_ms"), "g"),
            fmt(r.get("params"), ",d") if isinstance(r.get("params"), int) else fmt(r.get("params")),
            fmt(r["macs"] / 1e9, ".3f") if isinstance(r.get("macs"), (int, float)) else "–",
            fmt(r.get("predicted_ms")), _lat_cell(r), fmt(r.get("psnr_db"), ".3f"), fmt(r.get("ssim"), ".4f"),
            _signed(r["gain_db"], "+.3f") if isinstance(r.get("gain_db"), (int, float)) else "–",
            "yes" if id(r) in on_front else "", status,
        ])
    blocks.append(("table", headers, table))
    images = sorted({k for r in rows for k in (r.get("per_image") or {})})
    if images:
        blocks.append(("h", 3, "Per held-out image (PSNR dB / SSIM)"))
        per = []
        for r in sorted(rows, key=_sort_key):
            pi = r.get("per_image") or {}
            per.append([str(r.get("name"))] + [
                f"{fmt(pi[i].get('psnr_db'), '.3f')} / {fmt(pi[i].get('ssim'), '.4f')}" if i in pi else "–"
                for i in images
            ])
        blocks.append(("table", ["name", *images], per))
    crops = study.get("crops") or []
    if crops:
        blocks.append(("h", 2, "Crops"))
    for c in sorted(crops, key=lambda c: (c.get("budget_ms") is None, c.get("budget_ms") or 0)):
        b = c.get("budget_ms")
        box = c.get("box")
        blocks.append(("h", 3, f"{'at ' + format(b, 'g') + ' ms' if b is not None else 'crops'} — {c.get('image', '?')}"
                       + (f", box y={box[0]} x={box[1]} {box[2]}x{box[3]} px (HR)" if box and len(box) == 4 else "")))
        items = []
        for p in c.get("panels") or []:
            caption = str(p.get("label", "?"))
            row = by_name.get(p.get("row")) if p.get("row") else None
            if row is not None:
                img = (row.get("per_image") or {}).get(c.get("image"), {})
                caption += f" · {row.get('name')}"
                if isinstance(img.get("psnr_db"), (int, float)):
                    caption += f" · {img['psnr_db']:.2f} dB"
                if _lat(row) is not None:
                    caption += f" · {_lat(row):.2f} ms"
            path = p.get("path")
            items.append(((Path(study_dir) / path) if path else None, caption))
        if items:
            blocks.append(("gallery", items))
    blocks.append(("h", 2, "Settings"))
    blocks.append(("kv", flatten(s)))
    blocks.append(("h", 2, "Machine"))
    blocks.append(("kv", flatten(study.get("machine") or {})))
    lut = study.get("lut")
    blocks.append(("h", 2, "Latency table"))
    if lut:
        blocks.append(("kv", flatten(lut)))
    else:
        blocks.append(("p", "No latency table: searched networks were not predicted from a table."))
    return blocks


def _res(s: dict) -> str:
    res = s.get("resolution")
    return f"{res[0]}x{res[1]}" if isinstance(res, (list, tuple)) and len(res) == 2 else "?"


def write_study_report(study_dir: Path, out: Path | None = None) -> dict:
    """Read ``study_dir/study.json`` and write ``pareto.png``, ``report.md`` and ``report.html`` into ``out``
    (default: the study folder). Returns ``{"pareto": Path, "markdown": Path, "html": Path}``."""
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise TrisrError(f"study folder not found: {study_dir}")
    study = load_study(study_dir)
    out = Path(out) if out is not None else study_dir
    out.mkdir(parents=True, exist_ok=True)
    pareto_png = plot_pareto(study, out / "pareto.png")
    title = f"trisr study — {plot_title(study)}"
    written = write_pair(study_blocks(study, study_dir, pareto_png), title, out)
    return {"pareto": pareto_png, **written}
