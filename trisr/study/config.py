"""The settings of a study: which budgets, which target, which rivals, which recipe. Serialised into the
study folder so that a resumed study runs with exactly the settings it started with."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trisr.errors import TrisrError

STUDY_SCHEMA_VERSION = 1
STUDY_FILE = "study.json"
SETTINGS_FILE = "settings.json"
#: What the searched network must beat every faster rival by (issue 8's goal), in dB of held-out PSNR.
GOAL_DB = 0.2
DEFAULT_ZOO = ("espcn", "fsrcnn", "span", "imdn", "esrt_lite")


@dataclass(frozen=True)
class StudyConfig:
    budgets_ms: tuple[float, ...]
    device: str = "cpu"
    backend: str | None = None  # default per device (trisr.runtime.base.DEFAULT_BACKEND)
    threads: int | None = None  # runtime threads for every timing (default: all cores)
    resolution: tuple[int, int] = (256, 256)  # LR size latency is measured at
    preset: str = "quick"  # search preset; its fine-tune recipe trains every network of the study
    config: str | None = None  # a run configuration JSON instead of the preset (e.g. a run's config.json)
    scale: int | None = None  # default: the preset's
    finetune_steps: int | None = None  # the one step count every network is trained for (default: the preset's)
    warmup_steps: int | None = None
    search_steps: int | None = None
    zoo: tuple[str, ...] = DEFAULT_ZOO
    random: int = 3  # random architectures of the space per budget, cost in [0.9 B, B]
    #: Search strategies run at every budget (trisr/search/strategies.py); trilevel is always first: the
    #: verdicts judge it against every other row, the other strategies included.
    strategies: tuple[str, ...] = ("trilevel",)
    seed: int = 0
    reps: int = 5  # interleaved timing repetitions across all networks
    data: str | None = None  # training/held-out images (default: the embedded photos)
    profile: str | None = None  # latency table (default: the cached one for the target, profiled if missing)
    allow_mismatch: bool = False
    schema_version: int = field(default=STUDY_SCHEMA_VERSION)

    def __post_init__(self) -> None:
        problems = []
        if not self.budgets_ms or any(not (math.isfinite(b) and b > 0) for b in self.budgets_ms):
            problems.append("--budgets-ms needs one or more finite positive budgets")
        if self.threads is not None and self.threads < 1:
            problems.append(f"--threads must be a positive number of threads, got {self.threads}")
        if self.random < 0 or self.reps < 1:
            problems.append("--random must be >= 0 and --reps >= 1")
        for name in ("finetune_steps", "warmup_steps", "search_steps"):
            v = getattr(self, name)
            if v is not None and v < 1:
                problems.append(f"{name.replace('_', '-')} must be >= 1")
        if len(set(self.budgets_ms)) != len(self.budgets_ms):
            problems.append("budgets must be distinct")
        from trisr.search.strategies import get_strategy

        try:
            names = [get_strategy(s).name for s in self.strategies]
        except TrisrError as exc:
            problems.append(str(exc).replace("--strategy", "--strategies"))
            names = []
        object.__setattr__(self, "strategies", tuple(dict.fromkeys(["trilevel", *names])))
        if problems:
            raise TrisrError("invalid study settings: " + "; ".join(problems))
        object.__setattr__(self, "budgets_ms", tuple(sorted(float(b) for b in self.budgets_ms)))
        object.__setattr__(self, "resolution", tuple(self.resolution))
        object.__setattr__(self, "zoo", tuple(self.zoo))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudyConfig":
        if d.get("schema_version") != STUDY_SCHEMA_VERSION:
            raise TrisrError(f"study settings schema version {d.get('schema_version')} is not supported")
        return cls(**d)

    def save(self, folder: Path) -> None:
        from trisr.io import atomic_write_json

        atomic_write_json(folder / SETTINGS_FILE, self.to_dict())

    @classmethod
    def load(cls, folder: Path) -> "StudyConfig":
        try:
            return cls.from_dict(json.loads((folder / SETTINGS_FILE).read_text()))
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise TrisrError(f"{folder / SETTINGS_FILE} is not a valid study settings file: {exc}") from None
