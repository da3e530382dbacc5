"""What a dense connection (``--strategy dcnas``) costs inside a network, measured, against the latency table's
``add`` entry: pairs of networks with the same ops, widths and weights, one a plain chain and one with a link
on every block after the stem, timed in alternation in the table's runtime.

    python -m benchmarks.dense_links --lut profiles/cpu-onnxruntime-fp32-t2-256x256-<fp>.json --pairs 8 --rounds 3

Prints a rich table and JSON (per pair: chain and dense medians over the rounds, measured ms per link, the
table's calibrated ms per link). Run it alone: every other process on the machine is noise in the figures.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import statistics


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from trisr.profile.lut import load_lut
    from trisr.profile.profiler import measure_network, sample_genotypes
    from trisr.profile.target import make_backend
    from trisr.rundir import build_model
    from trisr.runtime.timing import TimingProtocol
    from trisr.space.cost import ADD_KEY
    from trisr.space.genotype import Genotype

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lut", type=Path, required=True)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="alternating chain/dense measurements per pair")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()

    lut = load_lut(args.lut)
    t = lut.target
    backend = make_backend("cpu", t["backend"], t.get("threads"), t.get("precision"))
    lut.check(lut.space, backend.describe(), lut.resolution)
    add_ms = lut.to_cost_table().get(ADD_KEY)
    protocol = TimingProtocol()
    rows = []
    dense = [g for g in sample_genotypes(lut.space, 4 * args.pairs, args.seed, dense=True) if g.num_links][: args.pairs]
    for i, g in enumerate(dense):
        chain = Genotype(g.space, g.path, g.ops, g.widths, g.node_index)
        m_dense = build_model(g).eval()
        m_chain = build_model(chain).eval()
        m_chain.load_state_dict(m_dense.state_dict())  # same weights: the links are the only difference
        times = {"chain": [], "dense": []}
        for _ in range(args.rounds):
            for name, model, geno in (("chain", m_chain, chain), ("dense", m_dense, g)):
                times[name].append(measure_network(backend, geno, lut.resolution, protocol, model).median_ms)
        c, d = statistics.median(times["chain"]), statistics.median(times["dense"])
        rows.append({"path": g.path, "links": g.links, "n_links": g.num_links, "chain_ms": c, "dense_ms": d,
                     "measured_ms_per_link": (d - c) / g.num_links, "table_ms_per_link": add_ms,
                     "predicted_chain_ms": lut.predict_ms(chain), "predicted_dense_ms": lut.predict_ms(g),
                     "rounds": times})
        Console(stderr=True).print(f"pair {i + 1}/{len(dense)}: {g.path} {g.links}: chain {c:.2f} ms, dense {d:.2f} ms")
    per_link = [r["measured_ms_per_link"] for r in rows]
    summary = {"lut": str(args.lut), "target": t, "resolution": list(lut.resolution), "table_ms_per_link": add_ms,
               "measured_ms_per_link_median": statistics.median(per_link),
               "measured_ms_per_link_spread": [min(per_link), max(per_link)], "pairs": rows}
    table = Table(title=f"dense connections in {t['backend']} {t.get('version')} ({t.get('cpu', '')}), "
                        f"{lut.resolution[0]}x{lut.resolution[1]} LR")
    for col in ("path", "links", "chain ms", "dense ms", "ms / link", "table ms / link"):
        table.add_column(col, justify="left" if col in ("path", "links") else "right")
    for r in rows:
        table.add_row(r["path"], str(r["links"]), f"{r['chain_ms']:.2f}", f"{r['dense_ms']:.2f}",
                      f"{r['measured_ms_per_link']:+.3f}", f"{add_ms:.3f}")
    Console(stderr=True).print(table)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
