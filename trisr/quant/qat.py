"""Quantization-aware fine-tuning after an int8 search: the last step of ``trisr search --precision int8``.

The search fine-tunes the derived network in float and reports what post-training quantization of it ships
(``metrics_shipped``). This step then runs ``trisr train RUN --qat`` into ``RUN/qat`` (a resumable run folder of
its own, the calibration patches at the table's resolution) and exports *that* run at int8 the same way, so the
summary holds PTQ and QAT side by side, both measured on the exported artifacts.
"""

from __future__ import annotations

from pathlib import Path

from trisr.progress import Reporter
from trisr.quant.fakequant import QAT_LR_FACTOR, QAT_STEPS, QatConfig

QAT_DIR = "qat"


def qat_after_search(
    run: Path, runtime, resolution: tuple[int, int], data: Path | None, seed: int, reporter: Reporter,
    steps: int = QAT_STEPS, device: str = "cpu",
) -> dict:
    """QAT of the finished search run ``run`` for ``runtime`` (an int8 backend); returns the summary entry
    ``{"qat": {...}}`` with the QAT run's float, fake-quantized and shipped (exported int8) held-out metrics."""
    from trisr.data.pairs import load_pairs
    from trisr.profile.target import shipped_metrics
    from trisr.rundir import CHECKPOINT_FILE, CONFIG_FILE, load_model
    from trisr.search.config import RunConfig
    from trisr.train import train

    cfg = RunConfig.load(run / CONFIG_FILE)
    recipe = cfg.recipe()
    recipe = recipe.replace(steps=steps, lr=recipe.phase.lr * QAT_LR_FACTOR)
    out = run / QAT_DIR
    resume = (out / CHECKPOINT_FILE).exists()
    config = QatConfig(keep_float=("first", "last"), calib_hw=tuple(resolution))
    summary = train(run, out, recipe, data, seed, resume=resume, reporter=reporter, device=device, qat=config)
    model = load_model(out)
    scale = cfg.space.scale
    shipped = shipped_metrics(model, runtime, load_pairs(data, scale, "val"), scale, tuple(resolution), out)
    return {
        "qat": {
            "run": QAT_DIR,
            "steps": steps,
            "lr": recipe.phase.lr,
            "config": summary["qat"],
            "metrics": summary["metrics"],
            "metrics_fakequant": summary["metrics_fakequant"],
            **shipped,
        }
    }
