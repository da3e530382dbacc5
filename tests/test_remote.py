"""``trisr profile --host`` end to end against a real ``sshd`` on loopback (no mocks).

The test starts its own OpenSSH server on 127.0.0.1 with throwaway host and client keys; the same machine
plays the remote, running this checkout's trisr through ``--remote-trisr``. Host-key checking stays on:
the client config names a known-hosts file holding the server's key, and a test proves that a missing or
different key is refused.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Not resolved: the venv's python is a symlink, and resolving it would leave the virtual environment.
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
# The remote shell starts in the user's home with a fresh environment: an absolute path, and this checkout's
# trisr on PYTHONPATH (not whichever trisr the interpreter has installed, e.g. another worktree's).
REMOTE_TRISR = f"PYTHONPATH={shlex.quote(str(REPO))} {PYTHON} -m trisr.cli"
ALIAS = "trisr-loopback"
# TRISR_TEST_SSHD points at another sshd (tests/test_ci_guard.py uses a missing one to see the CI fail path).
_SSHD = os.environ.get("TRISR_TEST_SSHD", "/usr/sbin/sshd")
SSHD = _SSHD if os.access(_SSHD, os.X_OK) else (None if "TRISR_TEST_SSHD" in os.environ else shutil.which("sshd"))

#: Under CI (``.ci/run`` exports TRISR_CI=1) a missing prerequisite is a failure, never a silent skip.
IN_CI = bool(os.environ.get("TRISR_CI"))


def skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"TRISR_CI is set and the remote tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def _require_openssh() -> None:
    if SSHD is None:
        skip_or_fail("OpenSSH server not installed (apt-get install openssh-server)")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        skip_or_fail("OpenSSH client not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    """A fresh ed25519 key pair at ``path``; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "trisr-test", "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    return (path.with_name(path.name + ".pub")).read_text().strip()


@dataclass
class Loopback:
    root: Path
    port: int
    host_pub: str  # "ssh-ed25519 AAAA... comment"
    client_key: Path
    log: Path

    def client_config(self, name: str, known_hosts: str, port: int | None = None) -> Path:
        """An ssh client config for the alias; ``known_hosts`` is the known-hosts file's content."""
        kh = self.root / f"{name}.known_hosts"
        kh.write_text(known_hosts)
        cfg = self.root / f"{name}.ssh_config"
        cfg.write_text(
            f"Host {ALIAS}\n"
            f"  HostName 127.0.0.1\n"
            f"  Port {port or self.port}\n"
            f"  User {pwd.getpwuid(os.getuid()).pw_name}\n"
            f"  IdentityFile {self.client_key}\n"
            f"  IdentitiesOnly yes\n"
            f"  IdentityAgent none\n"
            f"  UserKnownHostsFile {kh}\n"
            f"  GlobalKnownHostsFile /dev/null\n"
            f"  UpdateHostKeys no\n"
            f"  ConnectTimeout 10\n"
        )
        return cfg

    def known_host_line(self, port: int | None = None) -> str:
        return f"[127.0.0.1]:{port or self.port} {' '.join(self.host_pub.split()[:2])}\n"


def start_sshd(root: Path, port: int, host_key: Path, authorized_keys: Path, log: Path) -> subprocess.Popen:
    cfg = root / "sshd_config"
    cfg.write_text(
        f"ListenAddress 127.0.0.1\n"
        f"Port {port}\n"
        f"HostKey {host_key}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized_keys}\n"
        f"PubkeyAuthentication yes\n"
        f"PasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\n"
        f"PermitRootLogin prohibit-password\n"
        f"StrictModes no\n"
        f"UsePAM no\n"
        f"PrintMotd no\n"
        f"X11Forwarding no\n"
        f"AllowTcpForwarding no\n"
        f"LogLevel VERBOSE\n"
    )
    with open(log, "ab") as fh:
        return subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=fh, stderr=fh)


def wait_listening(proc: subprocess.Popen, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def _openssh_installed():
    _require_openssh()


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    _require_openssh()  # module fixtures are set up before the autouse check: fail or skip before using SSHD
    if os.geteuid() == 0:  # sshd running as root chroots its pre-auth child into the privilege-separation dir
        try:
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            skip_or_fail(f"cannot create sshd's privilege-separation directory /run/sshd: {exc}")
    root = tmp_path_factory.mktemp("sshd")
    host_key, client_key = root / "host_ed25519", root / "client_ed25519"
    host_pub = keygen(host_key)
    authorized_keys = root / "authorized_keys"
    authorized_keys.write_text(keygen(client_key) + "\n")
    log = root / "sshd.log"

    proc = None
    for _ in range(3):  # the free port may be taken between probing and binding it
        port = free_port()
        proc = start_sshd(root, port, host_key, authorized_keys, log)
        if wait_listening(proc, port):
            break
        stop(proc)
        proc = None
    if proc is None:
        pytest.fail(f"sshd did not start; its log:\n{log.read_text()}")
    lb = Loopback(root, port, host_pub, client_key, log)
    try:
        # One plain login first, so a broken set-up reads as such rather than as a trisr failure.
        cfg = lb.client_config("probe", lb.known_host_line())
        probe = subprocess.run(["ssh", "-F", str(cfg), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", ALIAS, "true"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        if probe.returncode != 0:
            server_log = log.read_text()
            if "locked" in server_log:  # e.g. a root account with a '!' password and UsePAM no
                skip_or_fail(f"sshd refuses this account (locked): {server_log.strip().splitlines()[-1]}")
            pytest.fail(f"ssh login to the loopback sshd failed: {probe.stderr.strip()}\nsshd log:\n{server_log}")
        yield lb
    finally:
        stop(proc)


def trisr(*args: str, cwd: Path, timeout: float = 180, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "trisr.cli", *args], cwd=cwd, capture_output=True, text=True,
                          stdin=stdin, timeout=timeout)


def remote_luts() -> set[Path]:
    return set(Path("/tmp").glob("trisr-lut-*.json"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


QUICK = ["--preset", "quick", "--input", "16x16", "--calibrate", "3", "--repeats", "1", "--window-s", "0.01",
         "--backend", "onnxruntime", "--threads", "1"]


@pytest.mark.slow
def test_profile_over_ssh_round_trip(loopback, tmp_path):
    if importlib.util.find_spec("onnxruntime") is None:
        skip_or_fail("onnxruntime is not installed")
    from trisr.profile.lut import load_lut
    from trisr.profile.profiler import entry_modules
    from trisr.search.config import preset

    cfg = loopback.client_config("good", loopback.known_host_line())
    out = tmp_path / "lut.json"
    before = remote_luts()
    # stdin is a pipe holding a line, as in `while read host; do trisr profile --host "$host" ...; done < hosts`:
    # ssh must not swallow it (it is run with stdin from /dev/null).
    r, w = os.pipe()
    os.write(w, b"next-host\n")
    os.close(w)
    t0 = time.monotonic()
    try:
        res = trisr("profile", "--host", ALIAS, "--ssh-config", str(cfg), "--remote-trisr", REMOTE_TRISR, *QUICK, "--out", str(out),
                    cwd=tmp_path, stdin=r)
        elapsed = time.monotonic() - t0
        assert os.read(r, 100) == b"next-host\n", "ssh consumed the caller's stdin"
    finally:
        os.close(r)
    assert res.returncode == 0, f"exit {res.returncode} after {elapsed:.1f} s\n{res.stderr}\nsshd log:\n{loopback.log.read_text()}"
    assert f"latency table from {ALIAS} written to" in res.stderr
    assert "Traceback" not in res.stderr

    lut = load_lut(out)
    space = preset("quick").space
    assert lut.space.fingerprint() == space.fingerprint()
    assert set(lut.entries) == set(entry_modules(space, (8, 8)))
    assert lut.resolution == (16, 16)
    assert lut.calibration is not None and lut.calibration.n == 3
    assert lut.target["backend"] == "onnxruntime"
    assert lut.target["threads"] == 1
    assert lut.target["device"] == "cpu"
    assert all(e.latency_ms > 0 for e in lut.entries.values())
    # The remote's temporary table was streamed back and removed; nothing else was written locally.
    assert remote_luts() - before == set()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lut.json"]


@pytest.mark.parametrize("known", ["empty", "other-key"])
def test_unknown_host_key_is_refused(loopback, tmp_path, known):
    content = "" if known == "empty" else loopback.known_host_line().split(" ", 1)[0] + " " + " ".join(keygen(tmp_path / "other").split()[:2]) + "\n"
    cfg = loopback.client_config(f"bad-{known}", content)
    work = tmp_path / "work"
    work.mkdir()
    out = work / "lut.json"
    before = remote_luts()
    res = trisr("profile", "--host", ALIAS, "--ssh-config", str(cfg), "--remote-trisr", REMOTE_TRISR, *QUICK, "--out", str(out), cwd=work, timeout=60)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert "Host key verification failed" in res.stderr  # ssh's own diagnostic: refused for the host key
    lines = error_lines(res.stderr)
    assert len(lines) == 1 and f"ssh to {ALIAS} failed" in lines[0], res.stderr
    assert not out.exists() and list(work.iterdir()) == []
    assert remote_luts() - before == set()
    assert (loopback.root / f"bad-{known}.known_hosts").read_text() == content  # the key was not accepted into it


def test_unreachable_host(loopback, tmp_path):
    port = free_port()  # nothing listens there
    cfg = loopback.client_config("closed", loopback.known_host_line(port), port=port)
    out = tmp_path / "lut.json"
    t0 = time.monotonic()
    res = trisr("profile", "--host", ALIAS, "--ssh-config", str(cfg), "--remote-trisr", REMOTE_TRISR, *QUICK, "--out", str(out), cwd=tmp_path, timeout=60)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = error_lines(res.stderr)
    assert len(lines) == 1 and f"ssh to {ALIAS} failed" in lines[0], res.stderr
    assert not out.exists()
    assert time.monotonic() - t0 < 30


def test_bench_over_ssh_round_trip(loopback, tmp_path):
    """`trisr bench --host`: the run is copied over the same transport, benchmarked there, the report comes back."""
    from helpers import TINY_SPACE as space
    from trisr.rundir import save_model
    from trisr.space.derived import DerivedNet
    from trisr.space.genotype import Genotype

    run = tmp_path / "tiny-run"
    save_model(run, DerivedNet(Genotype(space, "CU", [[1, 0]], [[0]], node_index=1)))
    cfg = loopback.client_config("bench", f"[127.0.0.1]:{loopback.port} {loopback.host_pub}\n")
    before = set(Path("/tmp").glob("trisr-bench-*"))
    res = trisr("bench", str(run), "--host", ALIAS, "--ssh-config", str(cfg), "--remote-trisr", REMOTE_TRISR,
                "--format", "onnx", "--shape", "16x16", "--reps", "1", "--time-s", "0.01", "--threads", "1", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    assert report["host"] == ALIAS
    rows = {r["format"]: r for r in report["rows"]}
    from trisr.export.formats import BASELINE

    assert rows["onnx"]["latency_median_ms"] > 0 and rows[BASELINE]["latency_median_ms"] > 0
    assert set(Path("/tmp").glob("trisr-bench-*")) == before  # the remote copy was removed


def test_spec_profile_jetson_command_over_ssh(loopback, tmp_path):
    """The spec's `trisr profile --device jetson --host ...`, literally (plus the loopback's ssh config): parsed,
    carried over SSH, and run by the remote trisr for a Jetson. This remote is an x86 machine without TensorRT,
    so the remote refuses with its own one line naming what to install, and we end in one line, exit 2."""
    cfg = loopback.client_config("jetson", loopback.known_host_line())
    out = tmp_path / "lut.json"
    res = trisr("profile", "--device", "jetson", "--host", ALIAS, "--ssh-config", str(cfg), "--remote-trisr", REMOTE_TRISR,
                "--out", str(out), cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "No such option" not in res.stderr
    assert "TensorRT is missing" in res.stderr and "python3-libnvinfer" in res.stderr  # the remote's own line
    lines = error_lines(res.stderr)
    assert lines[-1].startswith(f"error: remote trisr profile on {ALIAS} failed with exit status 2"), res.stderr
    assert not out.exists()
