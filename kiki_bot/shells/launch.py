"""A training run over several hosts: every rank through `mlx.launch` (mlx's ring backend), each running
`python -m kiki_bot.shells.training <spec>`; what rank 0 wrote is read back."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from kiki_bot.shells.trainspec import LOG_FILE, TrainSpec
from kiki_bot.shells.trainstate import RunMetrics, read_metrics


def launch(spec: TrainSpec, progress: bool) -> RunMetrics:
    """Run every rank through `mlx.launch` (ring backend) and read back what rank 0 wrote."""
    launcher = Path(sys.executable).with_name("mlx.launch")
    hostfile = {"backend": "ring", "hosts": [{"ssh": h, "ips": [h]} for h in spec.hosts]}
    # so `-m kiki_bot.shells.training` works uninstalled too
    package_root = str(Path(__file__).resolve().parents[2])
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, (package_root, os.environ.get("PYTHONPATH"))))
    }
    with tempfile.TemporaryDirectory() as tmp:
        hosts_json = Path(tmp) / "hosts.json"
        hosts_json.write_text(json.dumps(hostfile), encoding="utf-8")
        flags = ["--hostfile", str(hosts_json), "--starting-port", str(_free_ports(spec.world_size))]
        rank = [sys.executable, "-m", "kiki_bot.shells.training", spec.model_dump_json()]
        command = [str(launcher), *flags, "--", *rank, *(["--progress"] if progress else [])]
        subprocess.run(command, stdin=subprocess.DEVNULL, env=env, check=False)
    metrics = read_metrics(spec.adapter_dir)
    if metrics is None or not metrics.completed:
        # mlx.launch exits 0 even when a rank fails, so the finished metrics are the only proof of success.
        raise RuntimeError(f"distributed training did not finish; see the ranks' output and {LOG_FILE}")
    return metrics


def _free_ports(count: int) -> int:
    """A base port with `count` consecutive free ports (the ring backend's default 32323 may be taken), below
    the kernel's ephemeral range: there no outgoing connection of a busy runner's other processes can take
    one in the seconds between this probe and the ranks' bind."""
    low = _ephemeral_low()
    for _ in range(50):
        base = random.randrange(10000, low - count) if low - count > 10000 else _any_port()
        if base + count < 65536 and all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no block of free local ports for the ring backend")


def _ephemeral_low() -> int:
    """The first port the kernel hands out to outgoing connections (Linux; elsewhere IANA's 49152)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def _any_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
