"""Profiling and benchmarking on another machine over SSH (the workstation -> Jetson workflow).

trisr must be installed on the remote host. The remote ``trisr profile`` writes its table to a temporary
file; it is streamed back over the same SSH transport and removed. SSH runs non-interactively with key
authentication and host-key checking on (``BatchMode=yes``, ``StrictHostKeyChecking=yes``): an unknown host
key is refused, never accepted silently. ``--ssh-config FILE`` (``ssh -F``) selects a config with ports,
keys and known-hosts files.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from pathlib import Path

from trisr.errors import TrisrError
from trisr.profile.lut import LatencyTable

SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=15"]


def check_host(host: str) -> str:
    """A host that ssh could read as an option (``-oProxyCommand=...``) or that is empty is refused."""
    if not host or host.startswith("-"):
        raise TrisrError(f"invalid --host {host!r}: a host name must not be empty or start with '-'")
    return host


def ssh_command(host: str, remote_cmd: str, ssh_config: Path | None = None) -> list[str]:
    cmd = ["ssh", *SSH_OPTIONS]
    if ssh_config is not None:
        cmd += ["-F", str(ssh_config)]
    # "--" ends ssh's options: the host is never parsed as one.
    return cmd + ["--", check_host(host), remote_cmd]


def run_ssh(
    host: str, remote_cmd: str, capture: bool, ssh_config: Path | None = None, stdin_bytes: bytes | None = None
) -> subprocess.CompletedProcess:
    """Run one remote command. stdin is never inherited (ssh would swallow the caller's input); bytes to
    send go in ``stdin_bytes``."""
    try:
        if stdin_bytes is not None:
            res = subprocess.run(ssh_command(host, remote_cmd, ssh_config), input=stdin_bytes, capture_output=True)
            return subprocess.CompletedProcess(res.args, res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace"))
        return subprocess.run(ssh_command(host, remote_cmd, ssh_config), capture_output=capture, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise TrisrError("ssh is not installed (needed for --host)") from None


def _check(res: subprocess.CompletedProcess, host: str, what: str) -> None:
    if res.returncode == 255:
        raise TrisrError(f"ssh to {host} failed (exit 255: unreachable, key refused or unknown host key; see ssh's message above)")
    if res.returncode != 0:
        raise TrisrError(f"{what} on {host} failed with exit status {res.returncode}")


def bench_remote(host: str, run: Path, args: list[str], remote_trisr: str = "trisr", ssh_config: Path | None = None) -> dict:
    """Copy a run's network to the remote host, run ``trisr bench`` there, and return its JSON report."""
    check_host(host)
    import io
    import tarfile

    from trisr.rundir import ARCH_FILE, GENOTYPE_FILE, MODEL_FILE, RUN_FILES

    has_arch = (run / GENOTYPE_FILE).exists() or (run / ARCH_FILE).exists()
    if not has_arch or not (run / MODEL_FILE).exists():
        raise TrisrError(f"{run} is not a finished run folder (genotype.json or arch.json, and model.safetensors are needed)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in RUN_FILES:
            if (run / name).exists():
                tar.add(run / name, arcname=f"{run.name}/{name}")
    remote_dir = f"/tmp/trisr-bench-{uuid.uuid4().hex}"
    q = shlex.quote(remote_dir)
    _check(run_ssh(host, f"mkdir -p {q} && tar -xz -C {q}", True, ssh_config, buf.getvalue()), host, "copying the run")
    try:
        cmd = f"{remote_trisr} {shlex.join(['bench', f'{remote_dir}/{run.name}', '--out', f'{remote_dir}/export', '--json', *args])}"
        res = run_ssh(host, cmd, capture=True, ssh_config=ssh_config)
        if res.returncode not in (0, 1):  # 1: some format failed verification; the report says which
            _check(res, host, "remote trisr bench")
        try:
            return json.loads(res.stdout)
        except json.JSONDecodeError:
            raise TrisrError(f"remote trisr bench on {host} printed no JSON report: {res.stderr.strip()[-300:]}") from None
    finally:
        run_ssh(host, f"rm -rf {q}", capture=True, ssh_config=ssh_config)


def profile_remote(host: str, args: list[str], remote_trisr: str = "trisr", ssh_config: Path | None = None) -> LatencyTable:
    check_host(host)
    remote_file = f"/tmp/trisr-lut-{uuid.uuid4().hex}.json"
    # remote_trisr is shell text on the remote side (like any `ssh host CMD`): "~/venv/bin/trisr" or
    # "source env/bin/activate && trisr" must expand there; our own arguments are quoted.
    cmd = f"{remote_trisr} {shlex.join(['profile', *args, '--out', remote_file])}"
    res = run_ssh(host, cmd, capture=False, ssh_config=ssh_config)  # remote progress streams to our stderr
    _check(res, host, "remote trisr profile")
    fetched = run_ssh(host, f"cat {shlex.quote(remote_file)} && rm -f {shlex.quote(remote_file)}", capture=True, ssh_config=ssh_config)
    if fetched.returncode != 0:
        raise TrisrError(f"could not fetch the latency table from {host}: {fetched.stderr.strip()}")
    try:
        return LatencyTable.from_dict(json.loads(fetched.stdout))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TrisrError(f"the latency table fetched from {host} is malformed: {exc}") from None
