"""The report of ``trisr deploy``: the verdict first, then each stage's evidence (``OUT/report.html``, self-contained,
and ``OUT/report.md``)."""

from __future__ import annotations

from pathlib import Path

from trisr.report._doc import fmt, write_pair


def _ms(v) -> str:
    return fmt(v, ".2f") + ("" if v is None else " ms")


def deploy_blocks(state: dict, figures: dict | None = None) -> list[tuple]:
    v, st = state["verdict"], state["stages"]
    table, search, exp, bench = (st.get(k) or {} for k in ("table", "search", "export", "bench"))
    scores = search.get("metrics") or {}
    torch_scores = f"{fmt(scores.get('psnr_db'), '.3f')} dB / {fmt(scores.get('ssim'), '.4f')}"
    rv = table.get("revalidation")
    revalidation = rv and (f"RMSPE {rv['rmspe_pct']:.1f} % on {rv['n']} fresh networks "
                           f"(re-profiled above {rv['threshold_pct']:.0f} %)")
    blocks: list[tuple] = [
        ("h", 1, f"trisr deploy: {v['format']} {v['precision']} on {v['device']}, budget {v['budget_ms']:g} ms — {v['verdict']}"),
        ("table", ["budget", "measured (p10–p90)", "verdict", "PSNR as shipped", "SSIM as shipped", "bicubic", "artifact"],
         [[f"{v['budget_ms']:g} ms", f"{_ms(v['measured_ms'])} ({fmt(v['p10_ms'])}–{fmt(v['p90_ms'])})", v["verdict"] or "unfinished",
           f"{fmt(v['psnr_db'], '.3f')} dB ({fmt(v['gain_db'], '+.3f')})", fmt(v["ssim"], ".4f"),
           f"{fmt(v['bicubic_psnr_db'], '.3f')} dB / {fmt(v['bicubic_ssim'], '.4f')}", str(v["artifact"])]]),
    ]
    if v["reasons"]:
        blocks.append(("p", "Why it failed: " + "; ".join(v["reasons"])))
    blocks += [
        ("h", 2, "Latency"),
        ("table", ["", "ms"], [["table's prediction", _ms(bench.get("predicted_ms"))],
                               [f"measured, {v['backend']} {v['precision']} (median of {len(bench.get('rep_medians_ms') or [])} interleaved rounds)", _ms(v["measured_ms"])],
                               [f"PyTorch eager fp32 ({bench.get('pytorch_eager_device', '?')})", _ms(bench.get("pytorch_eager_ms"))],
                               ["measured during the search's derivation", _ms(search.get("measured_ms"))]]),
        ("h", 2, "Latency table"),
        ("kv", [("file", str(table.get("path"))), ("digest", str(table.get("digest"))),
                ("found cached", str(table.get("cached"))), ("re-profiled", str(table.get("reprofiled")))]
         + ([("re-validation", revalidation)] if revalidation else [])),
        ("h", 2, "Network"),
        ("kv", [("path (stem first)", str(search.get("genotype"))), ("params", fmt(search.get("params"), ",")),
                ("MACs", f"{fmt((search.get('macs') or 0) / 1e9, '.3f')} G"), ("weights shipped", str(exp.get("weights"))),
                ("PyTorch fp32 PSNR / SSIM", torch_scores)]),
        ("h", 2, "Export and verification"),
        ("kv", [("status", str(exp.get("status"))), ("artifact", str(exp.get("artifact"))), ("sidecar", str(exp.get("sidecar"))),
                ("size", f"{fmt(exp.get('size_mb'), '.3f')} MB"),
                ("against PyTorch", str(exp.get("verified_summary") or exp.get("reason") or "–"))]),
        ("h", 2, "Wall time"),
        ("table", ["stage", "s"], [[k, f"{s:.1f}"] for k, s in state["elapsed_s"].items()]),
    ]
    for name, path in (figures or {}).items():
        if str(path).endswith(".png"):
            blocks.append(("img", Path(path), name))
    return blocks


def write_deploy_report(state: dict, path: Path, run_report_html: Path | None = None, figures: dict | None = None) -> Path:
    blocks = deploy_blocks(state, figures)
    if run_report_html is not None:
        blocks.append(("p", f"The search run's own report: {run_report_html}"))
    return write_pair(blocks, "trisr deploy", Path(path).parent, Path(path).stem)["html"]
