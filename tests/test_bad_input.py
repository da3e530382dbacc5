"""Issue 9: bad input ends in one clear line and exit status 2, never a traceback, and leaves nothing half-written.

Each case builds its bad files under ``tmp_path``, runs one command through :class:`typer.testing.CliRunner` and
checks: exit status 2, exactly one non-empty output line naming the problem (a distinctive substring), no
"Traceback", and that the paths the command would have written do not exist (or exist empty).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from trisr.cli import app
from trisr.rundir import GENOTYPE_FILE, save_model
from trisr.search.config import preset
from trisr.space.config import SpaceConfig
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype

runner = CliRunner()


def tiny_genotype() -> Genotype:
    space = SpaceConfig(nf=16, num_cell=2, num_up=1, num_cell_path_search=1, scale=2)
    return Genotype(space, "CCU", [[1, 2, 3, 0, 1], [3, 1, 2, 1, 0]], [[0, 1, 1, 0], [1, 0, 1, 1]])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("runs") / "tiny-x2"
    save_model(out, DerivedNet(tiny_genotype()))
    return out


def _png(path: Path, size=(12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _file(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _config(tmp: Path, **changes) -> Path:
    d = preset("quick").to_dict()
    for k, v in changes.items():
        d[k] = v
    return _file(tmp / "config.json", json.dumps(d))


def _run_copy(tiny_run: Path, tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(tiny_run, run)
    return run


def _edit_genotype(run: Path, edit) -> Path:
    path = run / GENOTYPE_FILE
    d = json.loads(path.read_text())
    path.write_text(json.dumps(edit(d)))
    return run


def _widths_changed(d: dict) -> dict:
    d["widths"][0] = [0, 1, 1, 1]  # same tensor names, other shapes
    return d


def _zero_division(d: dict) -> dict:
    d["space"]["width_multipliers"] = ["1/0", "1"]
    return d


def _artifact(tmp: Path, sidecar: dict) -> Path:
    art = _file(tmp / "art" / "m.onnx", b"not really onnx")
    _file(tmp / "art" / "m.onnx.json", json.dumps(sidecar))
    return art


def _checkpoint(tmp: Path) -> Path:
    out = tmp / "trained"
    out.mkdir()
    torch.save({"something": torch.zeros(1), "else": 3}, out / "checkpoint.pt")
    return out


# Each case: id -> (build(tmp, tiny_run) -> (argv, paths that must not be left behind (or only empty)), substring)
CASES = {
    # --out below a regular file
    "search-out-below-file": (lambda t, r: (["search", "--out", str(_file(t / "f", "x") / "sub"), "--macs-g", "0.5"], []),
                              "not a folder"),
    "export-out-below-file": (lambda t, r: (["export", str(r), "--format", "onnx", "--out", str(_file(t / "f", "x") / "sub")], []),
                              "not a folder"),
    "train-out-below-file": (lambda t, r: (["train", "--arch", "bicubic", "--out", str(_file(t / "f", "x") / "sub")], []),
                             "not a folder"),
    # --config files
    "search-config-list": (lambda t, r: (["search", "--config", str(_file(t / "c.json", "[1, 2]")), "--out", str(t / "o")], [t / "o"]),
                           "not a valid run configuration"),
    "search-config-folder": (lambda t, r: (["search", "--config", str(t), "--out", str(t / "o")], [t / "o"]), "is a folder"),
    "search-config-binary": (lambda t, r: (["search", "--config", str(_file(t / "c.json", b"\x89PNG\xff\xfe\x00")), "--out", str(t / "o")], [t / "o"]),
                             "not a valid run configuration"),
    "search-config-bad-field": (lambda t, r: (["search", "--config", str(_config(t, relax={"op": "nope"})), "--out", str(t / "o")], [t / "o"]),
                                "not a valid run configuration"),
    "search-config-bad-space": (lambda t, r: (["search", "--config", str(_config(t, space={"nf": "wide"})), "--out", str(t / "o")], [t / "o"]),
                                "not a valid run configuration"),
    "profile-config-list": (lambda t, r: (["profile", "--config", str(_file(t / "c.json", "[]")), "--out", str(t / "o.json")], [t / "o.json"]),
                            "not a valid run configuration"),
    "study-config-list": (lambda t, r: (["study", "--budgets-ms", "10", "--config", str(_file(t / "c.json", "[]")), "--out", str(t / "o")], [t / "o"]),
                          "not a valid run configuration"),
    # genotype.json of a run
    "eval-genotype-list": (lambda t, r: (["eval", str(_edit_genotype(_run_copy(r, t), lambda d: [d]))], []), "expected a JSON object"),
    "eval-genotype-zero-division": (lambda t, r: (["eval", str(_edit_genotype(_run_copy(r, t), _zero_division))], []),
                                    "width multiplier"),
    "eval-genotype-widths-vs-weights": (lambda t, r: (["eval", str(_edit_genotype(_run_copy(r, t), _widths_changed))], []),
                                        "do not match the architecture"),
    "upscale-genotype-widths-vs-weights": (lambda t, r: (["upscale", str(_edit_genotype(_run_copy(r, t), _widths_changed)),
                                                          str(_png(t / "a.png")), "-o", str(t / "o")], [t / "o"]),
                                           "do not match the architecture"),
    "eval-genotype-binary": (lambda t, r: (["eval", str(_edit_genotype_raw(_run_copy(r, t)))], []), "not valid JSON"),
    "train-genotype-file-list": (lambda t, r: (["train", str(_file(t / "g.json", "[]")), "--out", str(t / "o")], [t / "o"]),
                                 "expected a JSON object"),
    "eval-missing-run": (lambda t, r: (["eval", str(t / "nope")], []), "run folder not found"),
    # profile --show
    "profile-show-folder": (lambda t, r: (["profile", "--show", str(t)], []), "is a folder"),
    "profile-show-array": (lambda t, r: (["profile", "--show", str(_file(t / "l.json", "[1]"))], []), "malformed"),
    "profile-show-missing": (lambda t, r: (["profile", "--show", str(t / "none.json")], []), "not found"),
    # numbers out of range
    "eval-crop-negative": (lambda t, r: (["eval", str(r), "--crop", "-1", "--device", "cpu"], []), "--crop"),
    "train-patch-zero": (lambda t, r: (["train", "--arch", "espcn", "--patch", "0", "--out", str(t / "o")], [t / "o"]), "--patch"),
    "train-steps-zero": (lambda t, r: (["train", "--arch", "espcn", "--steps", "0", "--out", str(t / "o")], [t / "o"]), "--steps"),
    "profile-repeats-zero": (lambda t, r: (["profile", "--repeats", "0", "--out", str(t / "o.json")], [t / "o.json"]), "--repeats"),
    "profile-window-zero": (lambda t, r: (["profile", "--window-s", "0", "--out", str(t / "o.json")], [t / "o.json"]), "--window-s"),
    "profile-input-zero": (lambda t, r: (["profile", "--input", "0x5", "--out", str(t / "o.json")], [t / "o.json"]), "resolution must be positive"),
    "search-macs-nan": (lambda t, r: (["search", "--macs-g", "nan", "--out", str(t / "o")], [t / "o"]), "budget"),
    "search-macs-inf": (lambda t, r: (["search", "--macs-g", "inf", "--out", str(t / "o")], [t / "o"]), "budget"),
    "search-latency-nan": (lambda t, r: (["search", "--latency-ms", "nan", "--out", str(t / "o")], [t / "o"]), "budget"),
    "search-params-negative": (lambda t, r: (["search", "--params-k", "-1", "--out", str(t / "o")], [t / "o"]), "budget"),
    "search-two-budgets": (lambda t, r: (["search", "--params-k", "10", "--macs-g", "1", "--out", str(t / "o")], [t / "o"]), "one budget"),
    "search-threads-zero": (lambda t, r: (["search", "--latency-ms", "5", "--threads", "0", "--out", str(t / "o")], [t / "o"]), "--threads"),
    "search-cost-resolution": (lambda t, r: (["search", "--cost-resolution", "big", "--out", str(t / "o")], [t / "o"]), "HxW"),
    "search-preset-nope": (lambda t, r: (["search", "--preset", "nope", "--out", str(t / "o")], [t / "o"]), "unknown preset"),
    "profile-threads-zero": (lambda t, r: (["profile", "--threads", "0", "--out", str(t / "o.json")], [t / "o.json"]), "--threads"),
    "profile-threads-negative": (lambda t, r: (["profile", "--threads", "-2", "--out", str(t / "o.json")], [t / "o.json"]), "--threads"),
    "bench-threads-zero": (lambda t, r: (["bench", str(r), "--threads", "0", "--out", str(t / "o")], [t / "o"]), "--threads"),
    "bench-reps-zero": (lambda t, r: (["bench", str(r), "--reps", "0", "--out", str(t / "o")], [t / "o"]), "--reps"),
    "bench-time-zero": (lambda t, r: (["bench", str(r), "--time-s", "0", "--out", str(t / "o")], [t / "o"]), "--time-s"),
    "study-threads-zero": (lambda t, r: (["study", "--budgets-ms", "10", "--threads", "0", "--out", str(t / "o")], [t / "o"]), "--threads"),
    "study-budgets-zero": (lambda t, r: (["study", "--budgets-ms", "0", "--out", str(t / "o")], [t / "o"]), "budget"),
    "study-budgets-nan": (lambda t, r: (["study", "--budgets-ms", "10,nan", "--out", str(t / "o")], [t / "o"]), "budget"),
    "study-reps-zero": (lambda t, r: (["study", "--budgets-ms", "10", "--reps", "0", "--out", str(t / "o")], [t / "o"]), "--reps"),
    "study-zoo-nope": (lambda t, r: (["study", "--budgets-ms", "10", "--zoo", "nope", "--out", str(t / "o")], [t / "o"]), "unknown zoo family"),
    # checkpoints, sidecars
    "train-resume-foreign-checkpoint": (lambda t, r: (["train", "--arch", "espcn", "--resume", "--out", str(_checkpoint(t))], []),
                                        "checkpoint"),
    "upscale-sidecar-missing-fields": (lambda t, r: (["upscale", str(_artifact(t, {"schema_version": 1, "kind": "trisr-artifact", "format": "onnx"})),
                                                      str(_png(t / "a.png")), "-o", str(t / "o")], [t / "o"]),
                                       "lacks"),
    "upscale-sidecar-not-trisr": (lambda t, r: (["upscale", str(_artifact(t, {"kind": "other"})), str(_png(t / "a.png")), "-o", str(t / "o")], [t / "o"]),
                                  "not a trisr artifact"),
    # images
    "upscale-same-stem": (lambda t, r: (["upscale", str(r), str(_png(t / "a" / "x.png")), str(_png(t / "b" / "x.png")), "-o", str(t / "o")], [t / "o"]),
                          "same output"),
    "upscale-corrupt-image": (lambda t, r: (["upscale", str(r), str(_file(t / "bad.png", b"\x89PNG garbage")), "-o", str(t / "o")], [t / "o"]),
                              "bad.png"),
    "upscale-missing-image": (lambda t, r: (["upscale", str(r), str(t / "missing.png"), "-o", str(t / "o")], [t / "o"]), "missing.png"),
    "upscale-png-output-two-images": (lambda t, r: (["upscale", str(r), str(_png(t / "a.png")), str(_png(t / "b.png")), "-o", str(t / "o.png")],
                                                    [t / "o.png"]), "several images"),
    "upscale-tile-zero": (lambda t, r: (["upscale", str(r), str(_png(t / "a.png")), "-o", str(t / "o"), "--tile", "0x64"], [t / "o"]),
                          "resolution must be positive"),
    "upscale-tile-negative": (lambda t, r: (["upscale", str(r), str(_png(t / "a.png")), "-o", str(t / "o"), "--tile", "-64x64"], [t / "o"]),
                              "resolution must be positive"),
    "upscale-tile-abc": (lambda t, r: (["upscale", str(r), str(_png(t / "a.png")), "-o", str(t / "o"), "--tile", "abc"], [t / "o"]), "HxW"),
    "upscale-tile-below-halo": (lambda t, r: (["upscale", str(r), str(_png(t / "a.png", (90, 90))), "-o", str(t / "o"), "--tile", "8x64"], [t / "o"]),
                                "too small for this network"),
    "upscale-tile-with-artifact": (lambda t, r: (["upscale", str(_artifact(t, {"kind": "other"})), str(_png(t / "a.png")), "-o", str(t / "o"),
                                                  "--tile", "64x64"], [t / "o"]), "applies to run folders"),
    # names and choices
    "report-empty-folder": (lambda t, r: (["report", str(_mkdir(t / "empty"))], [t / "empty" / "report"]), "neither a trisr run"),
    "report-missing-folder": (lambda t, r: (["report", str(t / "nope")], [t / "nope"]), "nope"),
    "train-arch-nope": (lambda t, r: (["train", "--arch", "nope", "--out", str(t / "o")], [t / "o"]), "nope"),
    "train-knob-width-abc": (lambda t, r: (["train", "--arch", "espcn", "--knob", "width=abc", "--out", str(t / "o")], [t / "o"]), "abc"),
    "train-missing-source": (lambda t, r: (["train", str(t / "nope"), "--out", str(t / "o")], [t / "o"]), "does not exist"),
    "zoo-scale-7": (lambda t, r: (["zoo", "--scale", "7"], []), "scale 7"),
    "export-format-nope": (lambda t, r: (["export", str(r), "--format", "nope", "--out", str(t / "o")], [t / "o"]), "nope"),
    "export-shape-bad": (lambda t, r: (["export", str(r), "--format", "onnx", "--shape", "0x0", "--out", str(t / "o")], [t / "o"]),
                         "resolution must be positive"),
    "eval-data-missing": (lambda t, r: (["eval", str(r), "--data", str(t / "nope"), "--device", "cpu"], []), "does not exist"),
}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _edit_genotype_raw(run: Path) -> Path:
    (run / GENOTYPE_FILE).write_bytes(b"\xff\xfe\x00garbage")
    return run


def _nothing_left(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 40
    commands = {case.split("-")[0] for case in CASES}
    # info takes no input but --json; every other command has bad-input cases
    assert commands == {"search", "train", "eval", "upscale", "zoo", "profile", "study", "report", "export", "bench"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_run, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default output folders (runs/, profiles/, export/) land here
    build, needle = CASES[case]
    work = tmp_path / "w"
    work.mkdir()
    argv, untouched = build(work, tiny_run)
    result = runner.invoke(app, argv)
    out = result.output
    lines = [line for line in out.splitlines() if line.strip()]
    assert result.exit_code == 2, (argv, result.exit_code, out, result.exception)
    assert "Traceback" not in out
    assert len(lines) == 1, out
    assert needle.lower() in lines[0].lower(), out
    for path in untouched:
        assert _nothing_left(path), f"{path} was left behind"
    # default output folders of the commands were not created either
    for default in ("runs", "profiles", "export"):
        assert not (tmp_path / default).exists(), default


def test_a_folder_without_validation_split_is_named_as_training_images(tmp_path, tiny_run):
    """load_pairs returns the same images for both splits of a plain folder: the tables must not call them held out."""
    data = tmp_path / "photos"
    for i in range(2):
        _png(data / f"p{i}.png", (64, 64))
    result = runner.invoke(app, ["eval", str(tiny_run), "--data", str(data), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert "training images" in result.output and "no validation split" in result.output
    result = runner.invoke(app, ["train", "--arch", "bicubic", "--data", str(data), "--out", str(tmp_path / "b"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["validated_on"].startswith("training images")
    # a DIV2K-like folder with a valid split, and the embedded photos, are held out
    from trisr.evaluate import validation_images

    for split in ("DIV2K_train_HR", "DIV2K_valid_HR"):
        _png(tmp_path / "div2k" / split / "0001.png", (32, 32))
    assert validation_images(tmp_path / "div2k", 2).startswith("held-out images")
    assert validation_images(None, 2).startswith("held-out images")
