"""Export one run to one format and precision: write the artifact under ``<out>/<run-name>/``, describe it
in its sidecar, load it back through the sidecar and verify it against PyTorch on held-out images. The
verification result goes into the sidecar and the returned :class:`ExportResult`; it is never hidden."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from trisr import __version__
from trisr.export.exporters import ExportOptions
from trisr.export.formats import Format
from trisr.export.shapes import InputSpec
from trisr.export.sidecar import file_records, sidecar_path, write_sidecar
from trisr.versions import tool_versions
from trisr.errors import TrisrError
from trisr.export.verify import TorchReference, Verification, verify
from trisr.io import read_json
from trisr.quant.fakequant import QUANT_FILE, load_quantized

VERIFIED = "exported+verified"
VERIFY_FAILED = "verification failed"
EXPORT_FAILED = "export failed"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ExportRequest:
    run: Path
    fmt: Format
    precision: str
    spec: InputSpec = InputSpec()
    out: Path = Path("export")
    options: ExportOptions = ExportOptions()
    device: str | None = None  # where verification runs the artifact (default: the format's first device)
    threads: int | None = None
    correction: object | None = None  # a KernelSpec: the known-kernel correction filter folded in at the input

    def correction_tag(self) -> str:
        """File-name part for a folded correction (``-kgaussian1.6``), else empty."""
        if self.correction is None or self.correction.is_bicubic:
            return ""
        return "-k" + self.correction.slug()


@dataclass
class ExportResult:
    format: str
    precision: str
    status: str
    artifact: Path | None = None
    sidecar: Path | None = None
    size_mb: float | None = None
    export_s: float | None = None
    verification: Verification | None = None
    reason: str | None = None
    details: dict = field(default_factory=dict)
    model: object | None = field(default=None, repr=False)  # the loaded ArtifactModel, for reuse

    @property
    def ok(self) -> bool:
        return self.status == VERIFIED

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "precision": self.precision,
            "status": self.status,
            "reason": self.reason,
            "artifact": None if self.artifact is None else str(self.artifact),
            "sidecar": None if self.sidecar is None else str(self.sidecar),
            "size_mb": self.size_mb,
            "export_s": self.export_s,
            "verification": None if self.verification is None else self.verification.to_dict(),
            "details": self.details,
        }


def artifact_path(req: ExportRequest, run_name: str) -> Path:
    return Path(req.out) / run_name / f"{run_name}-{req.spec.tag()}-{req.precision}{req.correction_tag()}{req.fmt.suffix}"


def onnx_metadata(model, spec: InputSpec) -> dict[str, str]:
    """What goes into ONNX ``metadata_props`` / OpenVINO ``rt_info`` (deployment.md §1.6). ``genotype_digest``
    only for trisr networks (as before zoo networks existed); ``arch_kind``/``arch_digest`` for every network."""
    arch = model.arch
    return {
        "trisr_version": __version__,
        **({"genotype_digest": arch.digest()} if arch.kind == "trisr" else {}),
        "arch_kind": arch.kind,
        "arch_digest": arch.digest(),
        "scale": str(arch.scale),
        "input_name": "input",
        "input_layout": "NCHW",
        "input_range": "0..1 float32 RGB",
        "input_shape": spec.describe(),
    }


@dataclass
class Written:
    """An artifact on disk with its (not yet verified) sidecar."""

    path: Path
    sidecar: dict
    export_s: float
    details: dict


def write_artifact(req: ExportRequest, model: torch.nn.Module, log=None) -> Written:
    """Export ``model`` as ``req`` asks and write the sidecar next to it (no verification yet)."""
    log = log or (lambda msg: None)
    fmt, precision, spec = req.fmt, req.precision, req.spec
    from trisr.rundir import arch_record

    arch = model.arch
    scale = arch.scale
    run_name = Path(req.run).resolve().name
    path = artifact_path(req, run_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar_path(path).unlink(missing_ok=True)  # never leave an old description next to a new file
    opts = replace(
        req.options,
        cache_dir=req.options.cache_dir or Path(req.out) / ".trt-cache",
        metadata=req.options.metadata or onnx_metadata(model, spec),
    )
    qat_file = Path(req.run) / QUANT_FILE
    if precision == "int8" and fmt.takes_qdq and req.correction is None and qat_file.exists():
        # A quantization-aware fine-tuned run ships the int8 network it trained: its own ranges, as QDQ.
        record = read_json(qat_file, "QAT range file")
        trained = tuple(record.get("config", {}).get("keep_float", ()))
        if tuple(opts.keep_float) != trained:
            raise TrisrError(f"{Path(req.run).name} was fine-tuned with {','.join(trained) or 'no'} convolution(s) kept float "
                             f"and ships that network; --keep-float {','.join(opts.keep_float) or 'none'} does not apply")
        model = load_quantized(copy.deepcopy(model), record)
        opts = replace(opts, qat_ranges=str(qat_file.resolve()))
    log(f"exporting {run_name} to {fmt.name} {precision}, {spec.describe()}")
    t0 = time.perf_counter()
    exported = fmt.export_fn()(model, spec, precision, path, opts)
    export_s = time.perf_counter() - t0
    out_shape = None if spec.dynamic else [1, 3, spec.shape[0] * scale, spec.shape[1] * scale]
    sidecar = {
        "format": fmt.name,
        "precision": precision,
        "artifact": exported.path.name,
        "files": file_records(exported.files),
        "source_run": str(Path(req.run).resolve()),
        "run_name": run_name,
        **({"genotype_digest": arch.digest(), "genotype": arch.to_dict()} if arch.kind == "trisr" else {}),
        "arch": arch_record(arch),
        "arch_digest": arch.digest(),
        "scale": scale,
        "input": spec.to_dict(),
        "output": {"name": "output", "layout": "NCHW", "value_range": [0.0, 1.0], "shape": out_shape},
        "opset": opts.opset,
        **({"correction": model.correction_record} if hasattr(model, "correction_record") else {}),
        "details": exported.details,
        "versions": tool_versions(),
        "export_s": round(export_s, 3),
    }
    write_sidecar(exported.path, sidecar)
    return Written(exported.path, sidecar, export_s, exported.details)


def export_run(
    req: ExportRequest,
    model: torch.nn.Module | None = None,
    reference: TorchReference | None = None,
    log=None,
) -> ExportResult:
    """Export, describe, reload through the sidecar and verify. Raises TrisrError (with the fix) when the
    format cannot be produced here; a verification failure is returned in the result."""
    from trisr.data.pairs import load_pairs
    from trisr.export.artifacts import load_artifact
    from trisr.rundir import load_model

    from trisr.checks import check_out_dir, check_threads

    log = log or (lambda msg: None)
    check_out_dir(req.out)
    check_threads(req.threads)
    fmt, precision, spec = req.fmt, req.fmt.check_precision(req.precision), req.spec
    fmt.require(precision, req.device or fmt.devices[0])
    model = (model if model is not None else load_model(req.run, "cpu")).to("cpu", torch.float32).eval()
    if req.correction is not None:
        from trisr.correction.fold import fold_correction

        if precision == "int8":  # the quantizer's first/last-layer policy does not know the folded filter yet
            raise TrisrError("--kernel is not available with --precision int8 yet; export fp32/fp16 with --kernel")
        model = fold_correction(model, req.correction)
    written = write_artifact(req, model, log)

    log(f"verifying {written.path.name} against PyTorch on held-out images")
    artifact = load_artifact(written.path, req.device, req.threads)
    scale = model.arch.scale
    if reference is None:
        pairs = load_pairs(None, scale, "val")
        if req.correction is not None:  # verify on LR made the way the artifact expects it
            from trisr.correction.kernels import degraded_pairs

            pairs = degraded_pairs(pairs, req.correction, scale)
        reference = TorchReference(model, pairs, scale)
    verification = verify(artifact.run, spec.check_shapes(), reference, precision)
    sidecar = {**written.sidecar, "verification": verification.to_dict()}
    write_sidecar(written.path, sidecar)
    artifact.sidecar = sidecar
    return ExportResult(
        format=fmt.name,
        precision=precision,
        status=VERIFIED if verification.passed else VERIFY_FAILED,
        artifact=written.path,
        sidecar=sidecar_path(written.path),
        size_mb=sum(r["bytes"] for r in sidecar["files"]) / 1e6,
        export_s=written.export_s,
        verification=verification,
        reason=None if verification.passed else "; ".join(verification.failures),
        details=written.details,
        model=artifact,
    )
