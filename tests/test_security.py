"""Untrusted input must not escape or bypass checks: remote table fields naming local files, ssh host names,
sidecars that list nothing, and TensorRT INT8 calibration caches reused across networks or calibration sets."""

import json
from pathlib import Path

import numpy as np
import pytest

from trisr.errors import TrisrError
from trisr.export.calibration import calibration_cache_path, calibration_set_digest
from trisr.export.sidecar import check_files, file_records, sidecar_path
from trisr.profile.lut import default_lut_path, safe_component
from trisr.profile.remote import check_host, ssh_command
from trisr.space.config import SpaceConfig

SPACE = SpaceConfig(nf=8, num_cell=2, num_up=1, num_cell_path_search=1, ops_per_cell=2, scale=2)


# -- remote table fields -> local file name -------------------------------------------------------------------

@pytest.mark.parametrize("evil", ["../../x", "/etc/passwd", "a/b", "..", ".", ".hidden", "x\\..\\y", "cpu\n", "", "é"])
def test_lut_path_components_are_sanitised(tmp_path, evil):
    root = tmp_path / "profiles"
    target = {"device": evil, "backend": evil, "precision": evil, "threads": evil}
    path = default_lut_path(target, SPACE, (16, 16), root=root)
    assert path.parent == root
    assert path.resolve().parent == root.resolve()
    assert "/" not in path.name and not path.name.startswith(".")
    assert set(path.name) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def test_safe_component_keeps_ordinary_names():
    assert safe_component("jetson-orin_nano.8GB") == "jetson-orin_nano.8GB"
    assert safe_component("../../x") == "_._.._x"
    assert safe_component("a/b c") == "a_b_c"
    path = default_lut_path({"device": "cpu", "backend": "onnxruntime", "precision": "fp32", "threads": 2}, SPACE, (16, 16))
    assert path.parent == Path("profiles") and path.name.startswith("cpu-onnxruntime-fp32-t2-16x16-")


def test_remote_table_with_evil_device_writes_inside_profiles(tmp_path, monkeypatch):
    """`trisr profile --host` end to end with the transport replaced: the remote table names its device
    '../../evil'; the table lands inside ./profiles and nothing is written elsewhere."""
    from typer.testing import CliRunner

    import trisr.profile.remote as remote
    from trisr.cli import app
    from trisr.profile.lut import LatencyTable

    def fake_profile_remote(host, args, remote_trisr="trisr", ssh_config=None):
        check_host(host)
        from trisr.search.config import preset

        space = preset("quick").space
        return LatencyTable(space=space, batch=1, protocol={},
                            target={"device": "../../evil", "backend": "a/b", "precision": "..", "threads": 1},
                            resolution=(16, 16), entries={})

    monkeypatch.setattr(remote, "profile_remote", fake_profile_remote)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    res = CliRunner().invoke(app, ["profile", "--host", "box", "--preset", "quick"])
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written, res.output
    for p in written:
        assert p.resolve().parent == (work / "profiles").resolve(), p


# -- ssh host --------------------------------------------------------------------------------------------------

def test_ssh_host_follows_double_dash():
    cmd = ssh_command("user@box", "true")
    assert cmd[-3:] == ["--", "user@box", "true"]
    assert cmd.index("--") > max(i for i, a in enumerate(cmd) if a.startswith("-") and a != "--")


@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/pwned", "-F/dev/null", "", "--"])
def test_host_starting_with_dash_is_refused(host):
    with pytest.raises(TrisrError, match="must not be empty or start with '-'"):
        ssh_command(host, "true")


def test_cli_refuses_dash_host_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from trisr.cli import app

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["profile", "--host=-oProxyCommand=touch pwned", "--preset", "quick"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert "start with '-'" in res.output
    assert not (tmp_path / "pwned").exists()


# -- sidecars --------------------------------------------------------------------------------------------------

def _artifact(tmp_path) -> Path:
    art = tmp_path / "m.onnx"
    art.write_bytes(b"not really onnx")
    return art


def test_sidecar_with_empty_file_list_is_refused(tmp_path):
    art = _artifact(tmp_path)
    with pytest.raises(TrisrError, match="does not list m.onnx"):
        check_files(art, {"files": []})
    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    with pytest.raises(TrisrError, match="does not list m.onnx"):
        check_files(art, {"files": file_records([other])})
    check_files(art, {"files": file_records([art])})  # listed and hashed: accepted


def test_sidecar_files_entry_fields_and_names(tmp_path):
    art = _artifact(tmp_path)
    rec = file_records([art])[0]
    for key in ("sha256", "bytes"):
        bad = {k: v for k, v in rec.items() if k != key}
        with pytest.raises(TrisrError, match=f"lacks the required field '{key}'"):
            check_files(art, {"files": [bad]})
    with pytest.raises(TrisrError, match="required field 'files'"):
        check_files(art, {})
    with pytest.raises(TrisrError, match="outside its folder"):
        check_files(art, {"files": [rec, {"name": "../m.onnx", "bytes": 1, "sha256": "0"}]})


@pytest.mark.parametrize("field", ["format", "precision", "input", "scale", "files"])
def test_sidecar_missing_required_field_is_one_line(tmp_path, field):
    from trisr.export.artifacts import load_artifact
    from trisr.export.sidecar import SIDECAR_KIND, SIDECAR_SCHEMA_VERSION

    art = _artifact(tmp_path)
    data = {"schema_version": SIDECAR_SCHEMA_VERSION, "kind": SIDECAR_KIND, "format": "onnx", "precision": "fp32",
            "input": {"shape": [16, 16]}, "scale": 2, "files": file_records([art])}
    del data[field]
    sidecar_path(art).write_text(json.dumps(data))
    with pytest.raises(TrisrError, match=f"lacks the required field '{field}'") as exc:
        load_artifact(art)
    assert "\n" not in str(exc.value)


# -- TensorRT INT8 calibration cache key -------------------------------------------------------------------------

def _images(folder: Path, n: int = 2) -> Path:
    from trisr.data.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        save_image(folder / f"img{i}.png", rng.integers(0, 255, (12, 12, 3), dtype=np.uint8))
    return folder


def test_calibration_set_digest_follows_the_images(tmp_path):
    a = _images(tmp_path / "a")
    d0 = calibration_set_digest(a, 2)
    assert d0 == calibration_set_digest(a, 2)  # stable
    b = _images(tmp_path / "b")
    assert calibration_set_digest(b, 2) == d0  # same names and contents elsewhere: same set
    from trisr.data.images import save_image

    save_image(a / "img0.png", np.zeros((12, 12, 3), np.uint8))  # same name, other content
    d1 = calibration_set_digest(a, 2)
    assert d1 != d0
    (a / "img1.png").rename(a / "img9.png")  # renamed
    assert calibration_set_digest(a, 2) != d1
    _images(tmp_path / "c", 3)
    assert calibration_set_digest(tmp_path / "c", 2) != d0  # one more image
    assert calibration_set_digest(None, 2) == calibration_set_digest(None, 2) != calibration_set_digest(None, 3)


def test_calibration_cache_path_is_keyed_by_network_and_set(tmp_path):
    from trisr.space.derived import DerivedNet
    from trisr.space.sample import sample_genotype

    art = tmp_path / "m.engine"
    net = DerivedNet(sample_genotype(SPACE, 1))
    p = calibration_cache_path(art, net.arch.digest(), "set1", 300, (96, 96))
    assert p.parent == tmp_path and p.name.startswith("m.engine.") and p.suffix == ".calib"
    assert p == calibration_cache_path(art, net.arch.digest(), "set1", 300, (96, 96))
    assert p != calibration_cache_path(art, "other-net", "set1", 300, (96, 96))
    assert p != calibration_cache_path(art, net.arch.digest(), "set2", 300, (96, 96))
    assert p != calibration_cache_path(art, net.arch.digest(), "set1", 24, (96, 96))
    assert p != calibration_cache_path(art, net.arch.digest(), "set1", 300, (64, 96))

