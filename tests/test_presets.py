"""The preset table that ``trisr search --help`` prints says what the preset builders make."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from trisr.cli import app
from trisr.search.config import PRESETS, RunConfig, preset
from trisr.search.presets import PRESET_TABLE
from trisr.space.sample import space_tree


def test_every_preset_is_described_once():
    assert [p.name for p in PRESET_TABLE] == list(PRESETS)


def test_described_shape_is_the_built_config():
    for info in PRESET_TABLE:
        cfg = preset(info.name)
        steps = f"{cfg.warmup.steps:,} + {cfg.search.steps:,} + {cfg.finetune.steps:,} steps"
        limit = f", at most {cfg.max_wall_min:g} min (fewer fine-tune steps where slower)" if cfg.max_wall_min else ""
        expected = f"nf {cfg.space.nf}, {len(space_tree(cfg.space))} tree nodes, x{cfg.space.scale}, {steps}{limit}"
        assert info.shape == expected, info.name


def test_presets_round_trip_through_json():
    for name in PRESETS:
        cfg = preset(name)
        assert RunConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_search_help_lists_every_preset():
    result = CliRunner().invoke(app, ["search", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.replace("│", " ").split())  # rich wraps help inside a box
    for info in PRESET_TABLE:
        assert f"{info.name}: {info.purpose}" in out
        assert info.wall_time in out


def test_info_lists_the_preset_table():
    result = CliRunner().invoke(app, ["info", "--json"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["presets"] == list(PRESETS)
    assert [row["name"] for row in report["preset_table"]] == list(PRESETS)
    assert all(row["wall_time"] and row["purpose"] for row in report["preset_table"])
