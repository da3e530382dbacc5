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


def degraded_table(title: str, kernel_result: dict) -> Table:
    """One kernel of ``trisr eval --degrade``: PSNR / SSIM per input, per image and mean, and the share of the
    mismatch loss the corrections win back."""
    from trisr.correction.evaluate import INPUTS

    table = Table(title=title)
    table.add_column("image")
    for i in INPUTS:
        table.add_column(f"{i} PSNR dB / SSIM", justify="right")
    table.add_column("estimated σ px", justify="right")

    def cells(row: dict, bold: str = "") -> list[str]:
        return [f"{bold}{row[f'{i}_psnr_db']:.3f}[/] / {row[f'{i}_ssim']:.4f}" if bold else
                f"{row[f'{i}_psnr_db']:.3f} / {row[f'{i}_ssim']:.4f}" for i in INPUTS]

    for r in kernel_result["images"]:
        table.add_row(r["name"], *cells(r), f"{r['estimate']['sigma_px']:.2f}")
    table.add_row("[bold]mean", *cells(kernel_result["mean"], "[bold]"), "")
    share = lambda v: "–" if v is None else f"{v:.0%}"  # noqa: E731
    f = kernel_result["filter"]
    table.caption = (f"recovered of the mismatch loss: known {share(kernel_result['recovered_known'])}, "
                     f"estimated {share(kernel_result['recovered_estimated'])}; known filter {f['size']}x{f['size']} LR px "
                     f"(eps {f['eps']:g}, assume {f['assume']})")
    return table
