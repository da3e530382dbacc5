"""The zoo registry: hand-designed SR network families, their knobs and ladders, and :class:`ZooSpec`, the
JSON-serialised architecture of one zoo network (what a zoo run folder keeps in ``arch.json``).

Add a family with ``@register_zoo("name", note=..., knobs={...}, ladder=[...])`` on an ``nn.Module`` class
whose ``__init__`` takes ``scale`` and the knobs as keyword arguments (the house style of ``OPS`` in
:mod:`trisr.space.ops`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from torch import nn

from trisr.errors import TrisrError
from trisr.io import read_json
from trisr.registry import Registry

ZOO_SCHEMA_VERSION = 1
KNOB_TYPES = {"int": int, "float": float, "str": str}


@dataclass(frozen=True)
class Knob:
    """One knob of a family: its type (``int``, ``float`` or ``str``), default, and the values it accepts."""

    type: str
    default: Any
    choices: tuple | None = None
    minimum: float | None = None
    multiple_of: int | None = None
    help: str = ""

    def parse(self, family: str, name: str, value: Any) -> Any:
        """``value`` (a typed value, or text from the command line) as this knob's type; TrisrError if invalid."""
        cast = KNOB_TYPES[self.type]
        bad = f"{family}: knob {name}={value!r}"
        if isinstance(value, bool) or (isinstance(value, float) and cast is int and not value.is_integer()):
            raise TrisrError(f"{bad} must be {self._expect()}")
        try:
            parsed = cast(value.strip()) if isinstance(value, str) else cast(value)
        except (TypeError, ValueError):
            raise TrisrError(f"{bad} must be {self._expect()}") from None
        if cast is str and not isinstance(value, str):
            raise TrisrError(f"{bad} must be {self._expect()}")
        if self.choices is not None and parsed not in self.choices:
            raise TrisrError(f"{bad} must be {self._expect()}")
        if self.minimum is not None and parsed < self.minimum:
            raise TrisrError(f"{bad} must be {self._expect()}")
        if self.multiple_of is not None and parsed % self.multiple_of:
            raise TrisrError(f"{bad} must be {self._expect()}")
        return parsed

    def _expect(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        text = "an integer" if self.type == "int" else ("a number" if self.type == "float" else "text")
        if self.minimum is not None:
            text += f" >= {self.minimum:g}"
        if self.multiple_of is not None:
            text += f", a multiple of {self.multiple_of}"
        return text

    def describe(self) -> str:
        return f"{self.type}, default {self.default!r}: {self._expect()}" + (f"; {self.help}" if self.help else "")


#: The global nearest-neighbour skip every learned zoo network takes (see trisr.zoo's docstring).
SKIP_KNOB = Knob("str", "nearest", choices=("nearest", "none"), help="global skip: + nearest_s(LR), or none (published form)")


@dataclass(frozen=True)
class ZooFamily:
    """A registered family: ``factory(scale=..., **knobs)`` builds it; ``ladder`` lists knob settings from
    the smallest to the largest network (MACs strictly increasing)."""

    name: str
    factory: Callable[..., nn.Module]
    note: str
    knobs: dict[str, Knob]
    ladder: tuple[dict, ...]
    scales: tuple[int, ...] = (2, 3, 4)

    @property
    def learned(self) -> bool:
        return "skip" in self.knobs

    def defaults(self) -> dict:
        return {k: knob.default for k, knob in sorted(self.knobs.items())}

    def resolve(self, knobs: dict) -> dict:
        """Every knob of the family, typed and checked, defaults filled in, sorted by name."""
        unknown = sorted(set(knobs) - set(self.knobs))
        if unknown:
            valid = ", ".join(sorted(self.knobs)) or "none"
            raise TrisrError(f"{self.name} has no knob {', '.join(map(repr, unknown))}; its knobs: {valid}")
        out = {k: self.knobs[k].parse(self.name, k, knobs.get(k, knob.default)) for k, knob in self.knobs.items()}
        return dict(sorted(out.items()))

    def spec(self, scale: int, **knobs) -> "ZooSpec":
        return ZooSpec(self.name, scale, knobs)


ZOO: Registry[ZooFamily] = Registry("zoo family")


def register_zoo(
    name: str,
    *,
    note: str,
    knobs: dict[str, Knob],
    ladder: list[dict],
    scales: tuple[int, ...] = (2, 3, 4),
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register an ``nn.Module`` class as the zoo family ``name``."""

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        family = ZooFamily(name, cls, note, dict(knobs), tuple(dict(r) for r in ladder), tuple(scales))
        for rung in family.ladder:
            family.resolve(rung)  # a typo in a ladder fails at import, not in a study
        ZOO.register(name)(family)
        return cls

    return decorator


def get_family(name: str) -> ZooFamily:
    if name not in ZOO:
        raise TrisrError(f"unknown zoo family {name!r}; choose from {', '.join(ZOO.names())}")
    return ZOO.get(name)


def list_zoo() -> list[ZooFamily]:
    """Every registered family, in registration order."""
    return [ZOO.get(n) for n in ZOO.names()]


@dataclass(frozen=True)
class ZooSpec:
    """One zoo network: ``family``, ``scale`` and its ``knobs`` (every knob of the family, defaults filled in,
    sorted by name; so equal networks have equal digests however they were asked for)."""

    family: str
    scale: int
    knobs: dict = field(default_factory=dict)
    schema_version: int = ZOO_SCHEMA_VERSION

    kind: ClassVar[str] = "zoo"

    def __post_init__(self) -> None:
        if self.schema_version != ZOO_SCHEMA_VERSION:
            raise TrisrError(f"zoo arch schema version {self.schema_version} is not supported (expected {ZOO_SCHEMA_VERSION})")
        family = get_family(self.family)
        if isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale not in family.scales:
            raise TrisrError(f"{self.family} supports scale {', '.join(map(str, family.scales))}, not {self.scale!r}")
        object.__setattr__(self, "knobs", family.resolve(dict(self.knobs)))

    def __hash__(self) -> int:
        return hash(self.digest())

    @property
    def family_info(self) -> ZooFamily:
        return get_family(self.family)

    def to_dict(self) -> dict:
        return {
            "schema_version": self.schema_version,
            "kind": self.kind,
            "family": self.family,
            "scale": self.scale,
            "knobs": dict(self.knobs),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ZooSpec":
        if not isinstance(d, dict) or d.get("kind", "zoo") != "zoo" or "family" not in d:
            raise TrisrError("not a zoo architecture (expected kind 'zoo' and a family)")
        version = d.get("schema_version")
        if version != ZOO_SCHEMA_VERSION:
            raise TrisrError(f"zoo arch schema version {version} is not supported (expected {ZOO_SCHEMA_VERSION})")
        knobs = d.get("knobs", {})
        if not isinstance(knobs, dict):
            raise TrisrError("invalid zoo arch: knobs must be an object")
        return cls(str(d["family"]), d.get("scale"), knobs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: str | Path) -> "ZooSpec":
        return cls.from_dict(read_json(path, "arch file"))

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def build(self) -> nn.Module:
        """A freshly initialised network (``.arch`` is this spec, ``.scale`` its scale)."""
        model = self.family_info.factory(scale=self.scale, **self.knobs)
        model.arch = self
        return model


def create_zoo_model(family: str, scale: int = 2, **knobs) -> nn.Module:
    """A fresh ``family`` network at ``scale`` (unknown family, scale or knob: TrisrError naming the valid ones)."""
    return ZooSpec(family, scale, knobs).build()
