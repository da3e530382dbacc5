"""Profiling on another machine over SSH (the workstation -> Jetson workflow).

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


def ssh_command(host: str, remote_cmd: str, ssh_config: Path | None = None) -> list[str]:
    cmd = ["ssh", *SSH_OPTIONS]
    if ssh_config is not None:
        cmd += ["-F", str(ssh_config)]
    return cmd + [host, remote_cmd]


def run_ssh(host: str, remote_cmd: str, capture: bool, ssh_config: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(ssh_command(host, remote_cmd, ssh_config), capture_output=capture, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise TrisrError("ssh is not installed (needed for --host)") from None


def profile_remote(host: str, args: list[str], remote_trisr: str = "trisr", ssh_config: Path | None = None) -> LatencyTable:
    remote_file = f"/tmp/trisr-lut-{uuid.uuid4().hex}.json"
    # remote_trisr is shell text on the remote side (like any `ssh host CMD`): "~/venv/bin/trisr" or
    # "source env/bin/activate && trisr" must expand there; our own arguments are quoted.
    cmd = f"{remote_trisr} {shlex.join(['profile', *args, '--out', remote_file])}"
    res = run_ssh(host, cmd, capture=False, ssh_config=ssh_config)  # remote progress streams to our stderr
    if res.returncode == 255:
        raise TrisrError(f"ssh to {host} failed (exit 255: unreachable, key refused or unknown host key; see ssh's message above)")
    if res.returncode != 0:
        raise TrisrError(f"remote trisr profile on {host} failed with exit status {res.returncode}")
    fetched = run_ssh(host, f"cat {shlex.quote(remote_file)} && rm -f {shlex.quote(remote_file)}", capture=True, ssh_config=ssh_config)
    if fetched.returncode != 0:
        raise TrisrError(f"could not fetch the latency table from {host}: {fetched.stderr.strip()}")
    try:
        return LatencyTable.from_dict(json.loads(fetched.stdout))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TrisrError(f"the latency table fetched from {host} is malformed: {exc}") from None
