"""Supernet step time and peak memory for a preset's configuration.

    python -m benchmarks.supernet_step --preset quick --steps 10
    python -m benchmarks.supernet_step --preset paper --steps 3

Times one warm-up step (4-pass sandwich + optimiser step) and one search iteration (architecture step +
weight step, 3 passes each) at the preset's batch and patch size, after one untimed step of each. Each
configuration runs in a fresh process so the peak resident memory (ru_maxrss) belongs to it alone; on
CUDA the peak allocated memory is reported too. Prints a JSON line.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.supernet_step ...`` or ``python benchmarks/supernet_step.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F

from trisr.search.config import preset
from trisr.space.supernet import ArchWeights, Supernet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--memory-format", choices=("contiguous", "channels_last"), default="contiguous",
                    help="layout of weights and activations (channels_last: NHWC, what trisr trains in on CPU)")
    args = ap.parse_args()
    cfg = preset(args.preset)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fmt = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}[args.memory_format]
    net = Supernet(cfg.space, cfg.relax).to(dev, memory_format=fmt)
    s, p = cfg.space.scale, cfg.lr_patch
    w_opt = torch.optim.Adam(net.weight_parameters(), lr=1e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4)

    def batch(bs):
        return (torch.rand(bs, 3, p, p, device=dev).contiguous(memory_format=fmt),
                torch.rand(bs, 3, p * s, p * s, device=dev).contiguous(memory_format=fmt))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def warmup_step():
        lr, hr = batch(cfg.warmup.batch_size)
        with torch.no_grad():
            a, g = net.relaxed_alpha(0.0), net.relaxed_gamma(0.0)
        loss = sum(F.l1_loss(net(lr, ArchWeights(a, g, net.width_distribution(m, 0.0)[0])), hr) for m in ("max", "min", "random", "random"))
        w_opt.zero_grad()
        loss.backward()
        w_opt.step()

    def search_step(r=0.3):
        for arch_step in (True, False):
            lr, hr = batch(cfg.search.batch_size)
            with torch.set_grad_enabled(True):
                a, g = net.relaxed_alpha(r), net.relaxed_gamma(r)
                if not arch_step:
                    a, g = a.detach(), g.detach()
                loss = 0.0
                for m in ("sample", "max", "min"):
                    w, masked = net.width_distribution(m, r)
                    loss = loss + F.l1_loss(net(lr, ArchWeights(a, g, w if arch_step else w.detach(), masked)), hr)
            (a_opt if arch_step else w_opt).zero_grad()
            loss.backward()
            (a_opt if arch_step else w_opt).step()

    result = {"preset": args.preset, "device": str(dev), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "nf": cfg.space.nf, "cells": net.tree.num_cells, "nodes": len(net.tree),
              "supernet_params": sum(q.numel() for q in net.weight_parameters()),
              "batch_warmup": cfg.warmup.batch_size, "batch_search": cfg.search.batch_size, "lr_patch": p, "scale": s,
              "memory_format": args.memory_format}
    for name, fn in (("warmup_step_s", warmup_step), ("search_iter_s", search_step)):
        fn()  # untimed first step (allocator, kernels)
        times = []
        for _ in range(args.steps):
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
        result[name] = {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_before_model_mib"] = rss0 / 1024
    if dev.type == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
