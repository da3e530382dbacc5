"""What each preset of ``trisr search`` is for and how long it takes here, without importing torch.

``trisr search --help`` prints this table (and the README repeats it); the builders live in ``trisr/search/config.py``
(``PRESETS``), and ``tests/test_presets.py`` checks that every figure written here (width, tree nodes, scale,
steps, time limit) is the one the builder makes, so the words and the code cannot drift apart. Wall times are measured on
the 2-core CPU of docs/benchmarks.md."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PresetInfo:
    name: str
    purpose: str
    #: The space and schedule in words: "nf N, K tree nodes, xS, warm-up + search + fine-tune steps", and the
    #: run's time limit where it has one (the fine-tune's steps are cut to what fits on the machine it runs on).
    shape: str
    wall_time: str

    def describe(self) -> str:
        return f"{self.name}: {self.purpose}; {self.shape}; {self.wall_time}"


PRESET_TABLE: tuple[PresetInfo, ...] = (
    PresetInfo("quick", "demo-sized search on the embedded photos",
               "nf 32, 9 tree nodes, x2, 100 + 150 + 14,000 steps", "5-9 min end to end on a 2-core CPU (by the size of the derived network)"),
    PresetInfo("cpu",
               "a larger space and a longer fine-tune, above all for your own data (embedded photos: +1.88 dB over 3 seeds vs quick's +1.76)",
               "nf 48, 14 tree nodes, x2, 150 + 200 + 32,000 steps, at most 45 min (fewer fine-tune steps where slower)",
               "34-45 min end to end on a 2-core CPU (14-18 GMAC networks)"),
    PresetInfo("paper", "the reference configuration (method.md §13)",
               "nf 64, 55 tree nodes, x4, 86,200 + 86,200 + 64,500 steps", "a multi-day GPU job"),
)


def preset_help() -> str:
    return "; ".join(p.describe() for p in PRESET_TABLE) + "."
