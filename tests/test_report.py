"""Reports: the Pareto front, detail crops, the study report (md + self-contained html, checked in a real
headless Chromium), the run report on a tiny real search, and ``trisr report`` through the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from trisr.errors import TrisrError
from trisr.report import pareto_front, pick_box, write_crop_panels, write_run_report, write_study_report
from trisr.cli.report import register

# TRISR_TEST_CHROMIUM points at another browser (tests/test_ci_guard.py uses a missing one).
CHROMIUM = os.environ.get("TRISR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = "/usr/bin/chromedriver"


# -- Pareto front ------------------------------------------------------------------------------------------


def row(name, lat, psnr, status="ok", kind="zoo"):
    return {"name": name, "kind": kind, "status": status, "psnr_db": psnr,
            "latency_ms": None if lat is None else {"median": lat, "p10": lat * 0.9, "p90": lat * 1.1}}


def test_pareto_front_dominance_ties_and_failed_rows():
    rows = [
        row("a", 5.0, 30.0),
        row("b", 10.0, 31.0),
        row("b-twin", 10.0, 31.0),  # same point as b: neither dominates the other
        row("c", 10.0, 30.5),  # same latency as b, lower PSNR: dominated
        row("d", 12.0, 31.0),  # same PSNR as b, slower: dominated
        row("e", 15.0, 32.0),
        row("f", 4.0, 29.0),
        row("g", 6.0, 29.5),  # dominated by a (faster and better)
        row("failed-fast", 1.0, 40.0, status="failed"),  # would dominate everything, but failed
        row("unmeasured", None, 45.0),
    ]
    front = [r["name"] for r in pareto_front(rows)]
    assert front == ["f", "a", "b", "b-twin", "e"]
    assert pareto_front([]) == []
    assert [r["name"] for r in pareto_front([row("x", 3.0, 20.0)])] == ["x"]


# -- crops -------------------------------------------------------------------------------------------------


def test_pick_box_finds_the_detailed_region_aligned_and_deterministic():
    rng = np.random.default_rng(0)
    img = np.full((200, 300, 3), 128, np.uint8)
    img[100:164, 180:244] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # the only texture
    y, x, h, w = pick_box(img, 48)
    assert (h, w) == (48, 48) and y % 12 == 0 and x % 12 == 0
    assert 100 <= y and y + h <= 164 + 12 and 180 <= x and x + w <= 244 + 12
    assert pick_box(img, 48) == (y, x, h, w)
    assert pick_box(img, 48, align=4)[0] % 4 == 0
    assert pick_box(img[:30, :40], 64) == (0, 0, 30, 30)  # shrunk to the image


def test_write_crop_panels_enlarges_with_nearest_and_names_uniquely(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    panels = write_crop_panels([("bicubic", a), ("espcn(width=32)", a), ("espcn(width=32)", a)], (10, 20, 32, 32),
                               tmp_path / "crops", relative_to=tmp_path)
    assert [p["path"] for p in panels] == ["crops/bicubic.png", "crops/espcn-width-32.png", "crops/espcn-width-32-2.png"]
    assert panels[0]["zoom"] == 8 and panels[0]["size"] == [256, 256]
    got = np.asarray(Image.open(tmp_path / panels[0]["path"]))
    assert got.shape == (256, 256, 3)
    np.testing.assert_array_equal(got[::8, ::8], a[10:42, 20:52])
    with pytest.raises(TrisrError, match="outside"):
        write_crop_panels([("x", a)], (90, 0, 32, 32), tmp_path / "bad")


# -- study report ------------------------------------------------------------------------------------------

BUDGETS = [10.0, 20.0]


def _srow(name, kind, family, budget, params, macs, predicted, lat, psnr, ssim, bic, per_image, status="ok", reason=None):
    return {
        "name": name, "kind": kind, "family": family, "config": {"width": 32} if kind == "zoo" else None,
        "budget_ms": budget, "params": params, "macs": macs, "predicted_ms": predicted,
        "latency_ms": None if lat is None else {"median": lat, "p10": lat * 0.93, "p90": lat * 1.12},
        "psnr_db": psnr, "ssim": ssim, "gain_db": None if psnr is None else psnr - bic,
        "per_image": per_image, "artifact": None if status != "ok" else f"export/{name}.onnx",
        "run": f"runs/{name}", "status": status, "reason": reason,
    }


def build_study(root: Path) -> Path:
    """A realistic study folder: synthesised rows and verdicts, real crop PNGs from a held-out photo."""
    from trisr.data.pairs import load_pairs
    from trisr.data.metrics import evaluate_pair
    from trisr.data.resize import bicubic_upscale, quantize_uint8

    study = root / "study"
    study.mkdir(parents=True)
    pair = load_pairs(None, 2, "val")[0]
    bic_img = quantize_uint8(bicubic_upscale(pair.lr, 2))
    bic = evaluate_pair(bic_img, pair.hr, 2)
    b = bic["psnr_db"]
    rng = np.random.default_rng(0)

    def fake_sr(noise):
        return np.clip(pair.hr.astype(np.int16) + rng.integers(-noise, noise + 1, pair.hr.shape), 0, 255).astype(np.uint8)

    def per(psnr, ssim):
        return {pair.name: {"psnr_db": psnr + 0.4, "ssim": ssim}, "coffee": {"psnr_db": psnr - 0.4, "ssim": ssim - 0.01}}

    rows = [
        _srow("bicubic", "bicubic", None, None, 0, 0, None, 1.1, b, bic["ssim"], b, per(b, bic["ssim"])),
        _srow("espcn(width=32)", "zoo", "espcn", None, 21_000, 1_380_000_000, None, 7.9, b + 0.9, 0.93, b, per(b + 0.9, 0.93)),
        _srow("fsrcnn(d=32,s=12,m=2)", "zoo", "fsrcnn", None, 12_500, 820_000_000, None, 17.2, b + 1.4, 0.94, b, per(b + 1.4, 0.94)),
        _srow("carn-m(<g>=4)", "zoo", "carn-m", None, 412_000, 0, None, None, None, None, b, {},
              status="failed", reason="export failed: unsupported op"),
        _srow("random-0@10ms", "random", None, 10.0, 9_000, 700_000_000, 9.6, 9.3, b + 0.7, 0.925, b, per(b + 0.7, 0.925)),
        _srow("random-1@20ms", "random", None, 20.0, 15_000, 1_200_000_000, 19.1, 18.6, b + 1.1, 0.935, b, per(b + 1.1, 0.935)),
        _srow("searched@10ms", "searched", None, 10.0, 10_240, 880_000_000, 9.4, 9.1, b + 1.21, 0.938, b, per(b + 1.21, 0.938)),
        _srow("searched@20ms", "searched", None, 20.0, 18_700, 1_500_000_000, 19.2, 18.9, b + 1.28, 0.941, b, per(b + 1.28, 0.941)),
    ]
    verdicts = [
        {"budget_ms": 10.0, "searched": "searched@10ms", "best_rival": "espcn(width=32)", "margin_db": 0.31,
         "goal_db": 0.2, "met": True},
        {"budget_ms": 20.0, "searched": "searched@20ms", "best_rival": "fsrcnn(d=32,s=12,m=2)", "margin_db": -0.12,
         "goal_db": 0.2, "met": False},
    ]
    crops = []
    for budget in BUDGETS:
        box = pick_box(pair.hr, 64)
        panels = write_crop_panels(
            [("bicubic", bic_img), ("best zoo", fake_sr(6)), ("searched", fake_sr(3)), ("HR", pair.hr)],
            box, study / "crops" / f"{budget:g}ms", relative_to=study,
        )
        rows_of = {"bicubic": None, "best zoo": "espcn(width=32)" if budget == 10 else "fsrcnn(d=32,s=12,m=2)",
                   "searched": f"searched@{budget:g}ms", "HR": None}
        crops.append({"budget_ms": budget, "image": pair.name, "box": list(box),
                      "panels": [{"label": p["label"], "row": rows_of[p["label"]], "path": p["path"]} for p in panels]})
    doc = {
        "schema_version": 1, "kind": "trisr-study", "created": "2026-12-03T12:00:00", "wall_s": 5123.4,
        "settings": {"budgets_ms": BUDGETS, "device": "cpu", "backend": "onnxruntime", "resolution": [256, 256],
                     "scale": 2, "preset": "quick", "finetune_steps": 2000, "random": 2, "zoo": ["espcn", "fsrcnn", "carn-m"],
                     "seed": 0, "threads": 2},
        "machine": {"cpu": "Test CPU <b>&amp; 9000</b>", "isa": ["avx2", "avx512f"], "threads": 2,
                    "runtime": {"onnxruntime": "1.20.0", "torch": "2.13.0+cpu"}},
        "lut": {"path": "profiles/cpu-onnxruntime-fp32-t2-256x256-abc.json", "rmspe_pct": 6.3},
        "bicubic": {"psnr_db": b, "ssim": bic["ssim"]},
        "rows": rows, "crops": crops, "verdicts": verdicts,
    }
    (study / "study.json").write_text(json.dumps(doc, indent=2))
    return study


@pytest.fixture(scope="module")
def study_report(tmp_path_factory):
    study = build_study(tmp_path_factory.mktemp("study"))
    return study, write_study_report(study)


def test_study_report_writes_md_png_and_a_self_contained_html(study_report):
    study, written = study_report
    assert set(written) == {"pareto", "markdown", "html"}
    assert written["pareto"] == study / "pareto.png"
    with Image.open(written["pareto"]) as im:
        assert im.format == "PNG" and im.size[0] >= 800 and im.size[1] >= 500
    doc = json.loads((study / "study.json").read_text())
    md = written["markdown"].read_text()
    for r in doc["rows"]:
        assert re.search(r"^\| " + re.escape(r["name"]) + r" \| " + r["kind"] + r" \|", md, re.M), r["name"]
    assert "at 10 ms the searched network (searched@10ms, 9.10 ms measured) is +0.31 dB above the best rival " \
           "(espcn(width=32), 7.90 ms) whose measured latency is ≤ its own (goal +0.20 dB): goal met." in md
    assert "at 20 ms the searched network (searched@20ms, 18.90 ms measured) is 0.12 dB below (−0.12 dB) the best " \
           "rival (fsrcnn(d=32,s=12,m=2), 17.20 ms)" in md and "goal NOT met." in md
    assert "failed: export failed: unsupported op" in md
    assert "![Pareto plot: measured latency against held-out PSNR](pareto.png)" in md
    assert "(crops/10ms/searched.png)" in md and "(crops/20ms/best-zoo.png)" in md
    # table order: budget, then measured latency; rows without a budget last, unmeasured ones at the end
    table = md.split("## Networks")[1].split("\n### ")[0]
    names = [ln.split(" | ")[0][2:] for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| name")]
    assert names == ["searched@10ms", "random-0@10ms", "random-1@20ms", "searched@20ms", "bicubic", "espcn(width=32)",
                     "fsrcnn(d=32,s=12,m=2)", "carn-m(<g>=4)"]

    page = written["html"].read_text()
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; ' \
           'style-src \'unsafe-inline\'">' in page
    assert "http://" not in page and "https://" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert len(srcs) == 1 + 4 * len(BUDGETS)  # the plot and every crop, embedded
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert "<link" not in page.lower()
    assert "Test CPU &lt;b&gt;&amp;amp; 9000&lt;/b&gt;" in page and "<b>&amp; 9000</b>" not in page
    assert "carn-m(&lt;g&gt;=4)" in page
    assert "goal NOT met" in page and "fsrcnn(d=32,s=12,m=2)" in page


def test_study_report_rejects_bad_folders(tmp_path):
    with pytest.raises(TrisrError, match="holds no study.json"):
        write_study_report(tmp_path)
    (tmp_path / "study.json").write_text(json.dumps({"schema_version": 99, "kind": "trisr-study", "rows": []}))
    with pytest.raises(TrisrError, match="schema version 99"):
        write_study_report(tmp_path)
    (tmp_path / "study.json").write_text("{not json")
    with pytest.raises(TrisrError, match="not valid JSON"):
        write_study_report(tmp_path)


def _browser_check(html: Path, workdir: Path) -> None:
    """Open ``html`` in headless Chromium: every image decoded, no request made, no console error. The page is
    opened from a copy alone in an empty folder, so a relative reference could not resolve either."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        reason = f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); CI installs them"
        if os.environ.get("TRISR_CI"):  # .ci/run sets it: under CI the browser check must run, not skip
            pytest.fail(f"TRISR_CI is set and the browser check cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(60)
        alone = workdir / "alone"
        alone.mkdir()
        shutil.copy(html, alone / "report.html")
        driver.get((alone / "report.html").resolve().as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])"
        )
        assert images, "no image in the page"
        bad = [alt for complete, w, h, alt in images if not (complete and w > 0 and h > 0)]
        assert not bad, f"images not decoded: {bad}"
        assert driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)") == []
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert not severe, severe
        assert "trisr" in driver.title
    finally:
        driver.quit()


def test_study_report_html_in_headless_chromium(study_report, tmp_path):
    _browser_check(study_report[1]["html"], tmp_path)


# -- run report (a tiny real search) -----------------------------------------------------------------------


def tiny_search_config():
    from helpers import tiny_config
    from trisr.search.config import Phase

    return tiny_config(
        warmup=Phase(steps=2, lr=1e-3, batch_size=2),
        search=Phase(steps=4, lr=1e-3, batch_size=2),
        finetune=Phase(steps=2, lr=1e-3, batch_size=2),
        log_every=1,
        checkpoint_every=100,
        val_images=1,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from trisr.search.engine import SearchRun

    out = tmp_path_factory.mktemp("search") / "run"
    SearchRun(tiny_search_config(), out).run()
    return out


@pytest.mark.slow
def test_run_report_on_a_tiny_search(tiny_run, tmp_path):
    written = write_run_report(tiny_run)
    report = tiny_run / "report"
    assert written["markdown"] == report / "report.md" and written["html"] == report / "report.html"
    for key in ("architecture", "search_curves", "finetune", "crop0", "crop1", "crop2"):
        with Image.open(written[key]) as im:
            assert im.format == "PNG" and im.size[0] > 100, key
    summary = json.loads((tiny_run / "summary.json").read_text())
    md = written["markdown"].read_text()
    assert f"architecture {summary['genotype']['path']} (digest {summary['genotype']['digest']})" in md
    assert f"| parameters | {summary['params']:,} |" in md
    assert f"| mean | {summary['metrics']['psnr_db']:.3f} |" in md
    for img in summary["metrics"]["images"]:
        assert f"| {img['name']} | {img['psnr_db']:.3f} |" in md
    for name in ("architecture.png", "search_curves.png", "finetune.png", "crops/bicubic.png",
                 "crops/this-network.png", "crops/hr.png"):
        assert f"]({name})" in md, name
    assert "chelsea" in md and "not measured in this run" in md
    page = written["html"].read_text()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page and "https://" not in page
    _browser_check(written["html"], tmp_path)


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so ``report`` is a subcommand as in the real CLI
        pass

    register(app)
    return app


@pytest.mark.slow
def test_cli_report_for_a_run_a_study_and_a_bad_folder(tiny_run, study_report, tmp_path):
    runner = CliRunner()
    app = _app()
    res = runner.invoke(app, ["report", str(tiny_run), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 0, res.output
    paths = json.loads(res.stdout)
    assert paths["html"] == str(tmp_path / "rep" / "report.html") and Path(paths["markdown"]).exists()

    study = tmp_path / "study-copy"
    shutil.copytree(study_report[0], study)
    (study / "report.md").unlink()
    res = runner.invoke(app, ["report", str(study)])
    assert res.exit_code == 0, res.output
    assert "report.html" in res.stdout and (study / "report.md").exists() and (study / "pareto.png").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    for bad, pattern in ((empty, "neither a trisr run folder"), (tmp_path / "nothing", "run folder not found")):
        res = runner.invoke(app, ["report", str(bad)])
        assert res.exit_code == 2
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and pattern in lines[0], res.stderr
        assert "Traceback" not in res.output


def test_run_report_of_a_zoo_run_draws_one_box_and_crops(tmp_path):
    zoo = pytest.importorskip("trisr.zoo")
    from trisr.rundir import save_model

    model = zoo.create_zoo_model("espcn", 2, width=8).eval()
    run = tmp_path / "espcn-x2"
    save_model(run, model)
    written = write_run_report(run, tmp_path / "rep")
    md = written["markdown"].read_text()
    assert "zoo network espcn" in md and "](architecture.png)" in md and "](crops/this-network.png)" in md
    assert "No held-out metrics" in md and "not measured in this run" in md
    with Image.open(written["architecture"]) as im:
        assert im.format == "PNG"
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', written["html"].read_text()))
