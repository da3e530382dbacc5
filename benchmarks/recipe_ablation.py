"""Ablation of the output head and the training recipe on one fixed genotype, trained from scratch.

    python -m benchmarks.recipe_ablation --steps 1500 --variants base,skip-none,no-ema --out runs/ablation

Every variant trains the same architecture (the genotype given with ``--genotype``, or a fixed ~2 GMAC
network of the quick space) with ``trisr.train.train`` -- the one training loop of derived networks.

Choices are made on a development split, never on the held-out photos: the variant trains on the embedded
training photos minus ``--dev`` (default astronaut and camera, one colour and one grey photo) and is scored
on those (``dev_psnr_db``); it is then scored on the held-out photos too (``psnr_db``), for the record. A variant is the quick preset's recipe with one piece
changed; ``base`` is the recipe as shipped. Prints a JSON list; rows are also written to OUT/ablation.json.
Variants run one after another in this process (the machine's threads are not shared between them).

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.recipe_ablation ...`` or ``python benchmarks/recipe_ablation.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import time
from dataclasses import replace

import torch

from trisr.search.config import Recipe, preset
from trisr.space.count import count_macs, count_params
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype


def default_genotype(space) -> Genotype:
    """A ~1.9 GMAC network of the quick space at 256x256 (path CC, residual and dwsblock ops at mixed widths),
    the size the search returns under ``--macs-g 2``."""
    ops = [[0, 0, 2, 1, 0], [0, 0, 3, 0, 1]]
    widths = [[2, 0, 0, 1], [2, 0, 0, 2]]
    return Genotype(space, "CC", ops, widths, node_index=4)


def variants(recipe: Recipe) -> dict[str, tuple[dict, Recipe]]:
    """name -> (space changes, recipe). Each changes one piece of the shipped recipe."""
    ph = recipe.phase
    multistep = replace(ph, schedule="multistep", milestones=(0.5, 0.75, 0.9))
    return {
        "base": ({}, recipe),
        "skip-none": ({"skip": "none", "output": "tanh"}, recipe),
        "skip-bicubic": ({"skip": "bicubic"}, recipe),
        "no-ema": ({}, replace(recipe, phase=replace(ph, ema=0.0))),
        "multistep": ({}, replace(recipe, phase=multistep)),
        "hflip-only": ({}, replace(recipe, augment=("hflip",))),
        "no-rgb-perm": ({}, replace(recipe, augment=tuple(a for a in recipe.augment if a != "rgb_perm"))),
        "uniform-sampling": ({}, replace(recipe, sampling="uniform")),
        "patch-24": ({}, replace(recipe, lr_patch=24)),
        "patch-48": ({}, replace(recipe, lr_patch=48)),
        "batch-8": ({}, replace(recipe, phase=replace(ph, batch_size=8))),
        "lr-5e-4": ({}, replace(recipe, phase=replace(ph, lr=5e-4))),
        "lr-2e-3": ({}, replace(recipe, phase=replace(ph, lr=2e-3))),
        "lr-4e-3": ({}, replace(recipe, phase=replace(ph, lr=4e-3))),
        "batch-32": ({}, replace(recipe, phase=replace(ph, batch_size=32))),
        "reference": (
            {"skip": "none", "output": "tanh"},
            replace(recipe, augment=("hflip",), sampling="uniform", phase=replace(multistep, ema=0.0)),
        ),
    }


_PHASE_FIELDS = {"lr": float, "batch_size": int, "ema": float, "schedule": str, "steps": int, "lr_warmup_steps": int}
_SPACE_FIELDS = ("skip", "output")


def parse_variant(spec: str, recipe: Recipe, named: dict[str, tuple[dict, Recipe]]) -> tuple[dict, Recipe]:
    """A named variant, or changes joined by ``+``: ``lr=4e-3+sampling=uniform+augment=dihedral/rgb_perm``
    (phase fields lr, batch_size, ema, schedule, steps, lr_warmup_steps; recipe fields lr_patch, sampling, augment; space
    fields skip, output)."""
    if spec in named:
        return named[spec]
    space, phase, rec = {}, {}, {}
    for part in spec.split("+"):
        key, _, value = part.partition("=")
        if key in _PHASE_FIELDS:
            phase[key] = _PHASE_FIELDS[key](value)
        elif key in _SPACE_FIELDS:
            space[key] = value
        elif key == "lr_patch":
            rec[key] = int(value)
        elif key == "sampling":
            rec[key] = value
        elif key == "augment":
            rec[key] = tuple(a for a in value.split("/") if a)
        else:
            raise SystemExit(f"unknown variant {spec!r} (named: {', '.join(named)})")
    return space, replace(recipe.replace(**phase), **rec)


def main() -> None:
    from trisr.data.pairs import load_pairs
    from trisr.evaluate import evaluate
    from trisr.rundir import load_model
    from trisr.train import train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--genotype", type=Path, help="genotype.json (default: a fixed ~2 GMAC quick network)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--variants", default="base,skip-none,skip-bicubic,no-ema,multistep,hflip-only,uniform-sampling")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dev", default="astronaut,camera", help="embedded training photos held back to choose on")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = preset(args.preset)
    base_g = Genotype.load(args.genotype) if args.genotype else default_genotype(cfg.space)
    table = variants(cfg.recipe().replace(steps=args.steps))
    dev_names = set(args.dev.split(","))
    all_train = load_pairs(None, cfg.space.scale, "train")
    train_pairs = [p for p in all_train if p.name not in dev_names]
    dev_pairs = [p for p in all_train if p.name in dev_names]
    held_out = load_pairs(None, cfg.space.scale, "val")
    rows = []
    base_recipe = table["base"][1]
    for name in args.variants.split(","):
        space_changes, recipe = parse_variant(name, base_recipe, table)
        g = replace(base_g, space=base_g.space.replace(**space_changes))
        out = args.out / name.replace("/", "_")
        src = out.with_suffix(".genotype.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(g.to_json())
        t0 = time.time()
        summary = train(src, out, recipe, seed=args.seed, pairs=(train_pairs, dev_pairs))
        dev = summary["metrics"]
        m = evaluate(load_model(out), held_out, g.space.scale)
        rows.append({
            "variant": name,
            "dev_psnr_db": dev["psnr_db"],
            "dev_gain_db": dev["gain_db"],
            "psnr_db": m["psnr_db"],
            "gain_db": m["gain_db"],
            "ssim": m["ssim"],
            "per_image_gain_db": {r["name"]: r["psnr_db"] - r["bicubic_psnr_db"] for r in m["images"]},
            "params": count_params(DerivedNet(g)),
            "macs_g": count_macs(DerivedNet(g), (1, 3, 256, 256)) / 1e9,
            "steps": args.steps,
            "wall_s": time.time() - t0,
            "recipe": recipe.to_dict(),
            "space": {"skip": g.space.skip, "output": g.space.output},
        })
        print(f"{name:18s} dev {dev['psnr_db']:.3f} dB ({dev['gain_db']:+.3f})  held-out {m['psnr_db']:.3f} dB "
              f"({m['gain_db']:+.3f})  {time.time() - t0:.0f}s", flush=True)
        (args.out / "ablation.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
