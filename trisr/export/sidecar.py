"""The sidecar ``<artifact>.json`` next to every exported artifact: where it came from (run, genotype
digest), what it accepts (input shape or dynamic profile), its precision and options, the versions that
made it and, for TensorRT, the GPU/TensorRT/JetPack it was built for. Artifact bytes are never touched;
the sidecar records their SHA-256 so a replaced file is noticed (deployment.md §4.8, §7.8)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from trisr.errors import TrisrError

SIDECAR_SCHEMA_VERSION = 1
SIDECAR_KIND = "trisr-artifact"
#: Fields of a TensorRT engine's build target that must match the live system before deserializing.
TRT_TARGET_FIELDS = ("gpu", "compute_capability", "tensorrt")
#: Fields every sidecar must carry before its artifact is loaded.
REQUIRED_FIELDS = ("format", "precision", "input", "scale", "files")


def sidecar_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_records(files: list[Path]) -> list[dict]:
    return [{"name": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files]


def write_sidecar(artifact: Path, data: dict) -> Path:
    from trisr.io import atomic_write_json

    path = sidecar_path(artifact)
    atomic_write_json(path, {"schema_version": SIDECAR_SCHEMA_VERSION, "kind": SIDECAR_KIND, **data,
                             "written": time.strftime("%Y-%m-%dT%H:%M:%S")})
    path.chmod(0o644)  # readable like the artifact next to it (the atomic write creates 0600)
    return path


def read_sidecar(artifact: str | Path) -> dict:
    artifact = Path(artifact)
    path = sidecar_path(artifact)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrisrError(f"no sidecar {path.name} next to {artifact}; export artifacts with trisr export") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrisrError(f"sidecar {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != SIDECAR_KIND or data.get("schema_version") != SIDECAR_SCHEMA_VERSION:
        d = data if isinstance(data, dict) else {}
        raise TrisrError(
            f"sidecar {path} is not a trisr artifact description of schema version {SIDECAR_SCHEMA_VERSION} "
            f"(kind {d.get('kind')!r}, version {d.get('schema_version')!r})"
        )
    check_required(artifact, data)
    files = data["files"]
    if not isinstance(files, list) or not all(isinstance(r, dict) and {"name", "bytes", "sha256"} <= set(r) for r in files):
        raise TrisrError(f"sidecar {path} lacks files (name, bytes, sha256 of each); export the artifact again with trisr export")
    return data



def check_required(artifact: Path, sidecar: dict) -> None:
    """One line naming the first required field the sidecar lacks."""
    for key in REQUIRED_FIELDS:
        if key not in sidecar or sidecar[key] is None:
            raise TrisrError(f"sidecar {sidecar_path(artifact).name} lacks the required field {key!r}; export again with trisr export")


def check_files(artifact: Path, sidecar: dict) -> None:
    """Refuse when the artifact files are missing or differ from the ones the sidecar describes. The
    artifact file itself must be listed with its size and SHA-256: an empty or partial list never lets an
    unchecked file through."""
    artifact = Path(artifact)
    files = sidecar.get("files")
    if not isinstance(files, list):
        raise TrisrError(f"sidecar {sidecar_path(artifact).name} lacks the required field 'files'; export again with trisr export")
    if not any(isinstance(rec, dict) and rec.get("name") == artifact.name for rec in files):
        raise TrisrError(f"sidecar {sidecar_path(artifact).name} does not list {artifact.name} with its sha256; export again")
    for rec in files:
        if not isinstance(rec, dict):
            raise TrisrError(f"sidecar {sidecar_path(artifact).name} has a malformed 'files' entry; export again")
        for key in ("name", "bytes", "sha256"):
            if not rec.get(key) and rec.get(key) != 0:
                raise TrisrError(f"sidecar {sidecar_path(artifact).name}: a 'files' entry lacks the required field {key!r}; export again")
        name = str(rec["name"])
        if Path(name).name != name or name in (".", ".."):
            raise TrisrError(f"sidecar {sidecar_path(artifact).name} lists a file outside its folder: {name!r}")
        path = artifact.parent / name
        if not path.is_file():
            raise TrisrError(f"{path} is missing (listed in the sidecar of {artifact.name})")
        if path.stat().st_size != rec["bytes"] or sha256_file(path) != rec["sha256"]:
            raise TrisrError(f"{path.name} differs from the file its sidecar describes (sha256 mismatch); export again")


# -- TensorRT target -------------------------------------------------------------------------------------


def trt_target() -> dict:
    """The live system as a TensorRT build target: GPU name, compute capability, TensorRT, CUDA, JetPack/L4T."""
    from trisr.runtime.devices import gpu_descriptor, jetson_descriptor
    from trisr.runtime.tensorrt import import_tensorrt

    trt = import_tensorrt()
    gpu = gpu_descriptor()
    return {
        "gpu": gpu.get("gpu"),
        "compute_capability": gpu.get("compute_capability"),
        "tensorrt": trt.__version__,
        "cuda": gpu.get("cuda"),
        "cudnn": gpu.get("cudnn"),
        "jetson": jetson_descriptor() or None,
    }


def check_trt_target(recorded: dict, live: dict, artifact: str = "engine") -> None:
    """Refuse to load an engine built for another GPU, compute capability or TensorRT version: one line
    naming the field, the expected and the found value, and how to rebuild (deployment.md §4.8)."""
    for key in TRT_TARGET_FIELDS:
        expected, found = recorded.get(key), live.get(key)
        if expected is None:
            raise TrisrError(f"{artifact}: its sidecar does not record the build {key}; rebuild on target: trisr export RUN --format trt")
        if str(expected) != str(found):
            raise TrisrError(
                f"{artifact} was built for {key} {expected!r} but this system has {found!r}; "
                "rebuild on target: trisr export RUN --format trt"
            )
