"""``trisr zoo``: the hand-designed efficient SR networks, with their cost."""

from __future__ import annotations

import typer
from rich.table import Table

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import print_json
from trisr.errors import TrisrError


def zoo_rows(scale: int, resolution: tuple[int, int] = (256, 256)) -> list[dict]:
    """One row per zoo family: default knobs, params and GMAC of the default and of the smallest and largest ladder
    rungs at ``resolution`` LR, and its note."""
    from trisr.space.count import count_macs, count_params
    from trisr.zoo import list_zoo

    shape = (1, 3, *resolution)
    rows = []
    for fam in list_zoo():
        if scale not in fam.scales:
            continue

        def cost(knobs: dict) -> dict:
            spec = fam.spec(scale, **knobs)
            model = spec.build()
            return {"knobs": spec.knobs, "params": count_params(model), "gmac": count_macs(model, shape) / 1e9}

        rows.append({
            "family": fam.name, "scale": scale, "default": cost({}), "smallest": cost(fam.ladder[0]),
            "largest": cost(fam.ladder[-1]), "ladder_rungs": len(fam.ladder), "note": fam.note,
            "knobs": {k: knob.describe() for k, knob in sorted(fam.knobs.items())},
        })
    return rows


@user_errors
def zoo(
    scale: int = typer.Option(2, "--scale", help="Upscaling factor."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """The zoo of hand-designed efficient SR networks (train one with trisr train --arch FAMILY)."""
    rows = zoo_rows(scale)
    if not rows:
        raise TrisrError(f"no zoo family supports scale {scale}")
    table = Table(title=f"trisr zoo, x{scale}: params and GMAC at 256x256 LR")
    for col in ("family", "default knobs", "params", "GMAC", "smallest rung", "largest rung", "note"):
        table.add_column(col, justify="right" if col in ("params", "GMAC") else "left", overflow="fold")

    def rung(r: dict) -> str:
        knobs = " ".join(f"{k}={v}" for k, v in r["knobs"].items() if k != "skip") or "-"
        return f"{knobs}\n{r['params'] / 1e3:,.1f}k, {r['gmac']:.3f} G"

    for r in rows:
        d = r["default"]
        knobs = " ".join(f"{k}={v}" for k, v in d["knobs"].items()) or "-"
        table.add_row(r["family"], knobs, f"{d['params']:,}", f"{d['gmac']:.3f}", rung(r["smallest"]),
                      rung(r["largest"]), r["note"])
    err_console.print(table)
    if as_json:
        print_json(rows)


def register(app: typer.Typer) -> None:
    app.command("zoo")(zoo)
