"""Int8 fake quantization of a float network, for quantization-aware fine-tuning (``trisr train RUN --qat``).

Per quantized convolution -- every one but the network's first and last (the shared ``keep_float`` policy of the
int8 exports, in execution order):

* weights: int8, symmetric, one scale per output channel (``max |w| / 127``);
* activations: uint8, asymmetric, one scale and zero point per tensor, on the convolution's input *and* output
  (ORT's ``QLinearConv`` reads and writes uint8; NNCF quantizes the inputs of convolutions and adds, which here
  are convolution outputs), with MinMax ranges over the export's calibration patches.

:func:`prepare` attaches that to a module -- a ``torch.nn.utils.parametrize`` parametrization on each quantized
convolution's weight, a forward pre-hook on its input and a forward hook on its output -- with straight-through
gradients (``torch.fake_quantize_*``), so the weights learn to live on the int8 grid. Activation ranges are
measured (:func:`calibrate`), not learned, and re-measured on the final weights. A QAT run keeps its float weights
in ``model.safetensors`` (everything else reads them as usual) and its ranges in ``quant.json``
(:func:`ranges_record`); its int8 export to a format that takes QDQ (OpenVINO) rebuilds the fake-quantized
network (:func:`load_quantized`) and exports *it* as QDQ ONNX, so the artifact runs exactly what was trained and
evaluated (quick network: fake-quantized 34.616 dB, artifact 34.614). ONNX Runtime runs that file with the same
PSNR but fuses it only partly (float ReLUs/adds between Q/DQ pairs stay, 1.9-2.2x slower than its own
quantizer's graph), so the ``onnx`` format ships the QAT weights through ORT's quantizer instead
(docs/benchmarks.md §11.4). :func:`strip` removes it all.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

W_QMAX = 127  # symmetric int8 weights in [-127, 127]
A_QMAX = 255  # asymmetric uint8 activations
#: ``trisr train --qat`` defaults when --steps/--lr are not given: a short fine-tune at a tenth of the recipe's
#: learning rate, the usual QAT practice (start from converged float weights, move them little). Fixed before
#: any measurement, not tuned on the held-out photos.
QAT_STEPS = 2000
QAT_LR_FACTOR = 0.1


@dataclass(frozen=True)
class QatConfig:
    """What a QAT run simulates; recorded in the run's summary and checkpoint."""

    precision: str = "int8"
    keep_float: tuple[str, ...] = ("first", "last")
    calib_samples: int = 300  # the export's default (trisr.export.exporters.ExportOptions)
    calib_hw: tuple[int, int] = (256, 256)

    def to_dict(self) -> dict:
        return {**asdict(self), "keep_float": list(self.keep_float), "calib_hw": list(self.calib_hw)}

    @classmethod
    def from_dict(cls, d: dict) -> "QatConfig":
        return cls(str(d["precision"]), tuple(d["keep_float"]), int(d["calib_samples"]), tuple(d["calib_hw"]))


class WeightFakeQuant(nn.Module):
    """Per-output-channel symmetric int8 fake quantization of a convolution weight, the scale from the current
    weight (``max |w| / 127``); :meth:`freeze` fixes it (export: the ONNX graph gets constant scales). The grid
    is declared [-128, 127], the range ONNX QuantizeLinear takes, and -128 is never reached."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen_scale: torch.Tensor | None = None

    @staticmethod
    def scale_of(w: torch.Tensor) -> torch.Tensor:
        amax = w.detach().abs().amax(dim=tuple(range(1, w.dim()))).clamp_min(1e-8)
        return (amax / W_QMAX).float()

    def freeze(self, w: torch.Tensor) -> None:
        self.frozen_scale = self.scale_of(w)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = self.scale_of(w) if self.frozen_scale is None else self.frozen_scale
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -W_QMAX - 1, W_QMAX)


class ActFakeQuant(nn.Module):
    """Per-tensor asymmetric uint8 fake quantization with a fixed [lo, hi] range (buffers: saved, resumed and
    averaged by the EMA like any weight). ``observing``: record MinMax instead of quantizing."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(1.0))
        self.observing = False
        self._seen = False

    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.detach().min().float(), x.detach().max().float()
        if not self._seen:
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self._seen = True
        else:
            self.lo.copy_(torch.minimum(self.lo, lo))
            self.hi.copy_(torch.maximum(self.hi, hi))

    def qparams(self) -> tuple[float, int]:
        lo, hi = min(float(self.lo), 0.0), max(float(self.hi), 0.0)  # the grid holds 0 exactly (zero padding)
        scale = max((hi - lo) / A_QMAX, 1e-8)
        zero = int(min(max(round(-lo / scale), 0), A_QMAX))
        return scale, zero

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.observe(x)
            return x
        scale, zero = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, A_QMAX)


def conv_order(model: nn.Module, input_shape: tuple[int, ...]) -> list[nn.Conv2d]:
    """The model's convolutions in execution order (one dry run), each once."""
    seen: list[nn.Conv2d] = []
    hooks = [m.register_forward_pre_hook(lambda mod, _inp: seen.append(mod) if mod not in seen else None)
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in hooks:
            h.remove()
    return seen


def quantized_convs(model: nn.Module, keep_float: tuple[str, ...], input_shape=(1, 3, 16, 16)) -> list[nn.Conv2d]:
    """The convolutions int8 quantizes: all but those the exports' first/last policy keeps float."""
    from trisr.export.exporters import kept_float

    convs = conv_order(model, input_shape)
    keep = {id(c) for c in kept_float(convs, keep_float)}
    return [c for c in convs if id(c) not in keep]


def prepare(model: nn.Module, config: QatConfig) -> nn.Module:
    """Attach int8 fake quantization to ``model`` in place (see the module); returns it. Ranges start at [0, 1]:
    :func:`calibrate` before training."""
    was_training = model.training
    model.eval()
    for conv in quantized_convs(model, config.keep_float):
        parametrize.register_parametrization(conv, "weight", WeightFakeQuant())
        conv.act_fq, conv.out_fq = ActFakeQuant(), ActFakeQuant()
        conv.register_forward_pre_hook(_quantize_input)
        conv.register_forward_hook(_quantize_output)
    model.train(was_training)
    return model


def _quantize_input(mod: nn.Module, inp: tuple) -> tuple:
    # Module-level functions, not closures or stored handles: deep copies (the EMA) keep working hooks.
    return (mod.act_fq(inp[0]), *inp[1:])


def _quantize_output(mod: nn.Module, inp: tuple, out: torch.Tensor) -> torch.Tensor:
    return mod.out_fq(out)


def is_prepared(model: nn.Module) -> bool:
    return any(isinstance(m, ActFakeQuant) for m in model.modules())


def fake_quantized_convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(getattr(m, "act_fq", None), ActFakeQuant)]


def act_quantizers(model: nn.Module) -> list[ActFakeQuant]:
    return [m for m in model.modules() if isinstance(m, ActFakeQuant)]


@contextmanager
def observing(model: nn.Module):
    """Inside, activation quantizers record MinMax (from scratch) instead of quantizing."""
    fqs = act_quantizers(model)
    for fq in fqs:
        fq.observing, fq._seen = True, False
    try:
        yield
    finally:
        for fq in fqs:
            fq.observing = False


@torch.no_grad()
def calibrate(model: nn.Module, samples: list) -> None:
    """Activation ranges = MinMax over ``samples`` (1x3xhxw float arrays in [0, 1]), as the exporters measure
    them; weights are quantized meanwhile, as they will be."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with observing(model):
        for x in samples:
            model(torch.as_tensor(x, device=device))
    model.train(was_training)


def strip(model: nn.Module) -> nn.Module:
    """Remove the fake quantization in place, keeping the float (QAT-adapted) weights; returns ``model``."""
    for m in list(model.modules()):
        if isinstance(m, nn.Conv2d) and parametrize.is_parametrized(m, "weight"):
            # By hand, not parametrize.remove_parametrizations: a deep copy (the EMA) shares the generated
            # Parametrized* class with its original, and removing the property from that class would break the
            # other copy.
            original = m.parametrizations["weight"].original
            del m._modules["parametrizations"]
            m.__class__ = type(m).__bases__[0]
            m.register_parameter("weight", original)
        if isinstance(getattr(m, "act_fq", None), ActFakeQuant):
            for hooks, fn in ((m._forward_pre_hooks, _quantize_input), (m._forward_hooks, _quantize_output)):
                for key in [k for k, f in hooks.items() if f is fn]:
                    del hooks[key]
            del m.act_fq, m.out_fq
    return model


# -- the ranges of a QAT run, saved beside its float weights ----------------------------------------------------

QUANT_FILE = "quant.json"
QUANT_SCHEMA_VERSION = 1


def ranges_record(model: nn.Module, config: QatConfig) -> dict:
    """What an int8 export of a QAT run needs beyond its float weights: the config and every activation range,
    keyed by the convolution's module name."""
    names = {id(m): n for n, m in model.named_modules()}
    return {
        "schema_version": QUANT_SCHEMA_VERSION,
        "kind": "trisr-qat-ranges",
        "config": config.to_dict(),
        "ranges": {names[id(c)]: {"in": [float(c.act_fq.lo), float(c.act_fq.hi)], "out": [float(c.out_fq.lo), float(c.out_fq.hi)]}
                   for c in fake_quantized_convs(model)},
    }


def load_quantized(model: nn.Module, record: dict) -> nn.Module:
    """``model`` (the QAT run's float weights) fake-quantized with the run's saved ranges and frozen weight
    scales: the int8 network exactly as trained and evaluated, ready to export as QDQ ONNX."""
    from trisr.errors import TrisrError

    if record.get("kind") != "trisr-qat-ranges" or record.get("schema_version") != QUANT_SCHEMA_VERSION:
        raise TrisrError(f"{QUANT_FILE} is not a trisr QAT range file of schema {QUANT_SCHEMA_VERSION}")
    prepare(model, QatConfig.from_dict(record["config"]))
    names = {id(m): n for n, m in model.named_modules()}
    convs = fake_quantized_convs(model)
    if sorted(names[id(c)] for c in convs) != sorted(record["ranges"]):
        raise TrisrError(f"{QUANT_FILE} describes other convolutions than this network's")
    with torch.no_grad():
        for c in convs:
            r = record["ranges"][names[id(c)]]
            c.act_fq.lo.fill_(r["in"][0]), c.act_fq.hi.fill_(r["in"][1])
            c.out_fq.lo.fill_(r["out"][0]), c.out_fq.hi.fill_(r["out"][1])
            c.parametrizations["weight"][0].freeze(c.parametrizations["weight"].original)
    return model.eval()
