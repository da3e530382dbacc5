"""Rich tables that several commands print."""

from __future__ import annotations

from rich.table import Table


def metrics_table(title: str, metrics: dict) -> Table:
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
