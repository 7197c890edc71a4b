"""The cluster a distributed run joins: TF_CONFIG (multi-worker) checked before TensorFlow reads it,
and a TPU's address probed before TensorFlow waits on it forever."""

from __future__ import annotations

import json
import os
import socket

from core.cli import UserError

TPU_PROBE_TIMEOUT_S = 5.0


def parse_tf_config(raw: str | None = None) -> dict:
    """Checks TF_CONFIG (the multi-worker cluster description) and returns it as a dict.

    Expected: {"cluster": {"worker": ["host:port", ...], ["chief": ["host:port"]]},
               "task": {"type": "worker" | "chief", "index": i}}
    """
    raw = os.environ.get("TF_CONFIG") if raw is None else raw
    if raw is None or not raw.strip():
        raise UserError('--strategy multiworker needs TF_CONFIG on every worker, e.g. '
                        'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\'')
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UserError(f"TF_CONFIG is not valid JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(config, dict):
        raise UserError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise UserError("TF_CONFIG has no 'cluster' (an object such as {\"worker\": [\"host:port\", ...]})")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UserError("TF_CONFIG has no 'task' with 'type' and 'index' (e.g. {\"type\": \"worker\", \"index\": 0})")
    for role, addresses in cluster.items():
        if role not in ("chief", "worker", "evaluator", "ps"):
            raise UserError(f"TF_CONFIG cluster has an unknown job {role!r} (expected chief and/or worker)")
        if role == "ps":
            raise UserError("TF_CONFIG has parameter servers: use --strategy multiworker with workers (and a chief) only")
        if not isinstance(addresses, list) or not addresses:
            raise UserError(f"TF_CONFIG cluster.{role} must be a non-empty list of \"host:port\"")
        for a in addresses:
            host, _, port = str(a).rpartition(":")
            if not isinstance(a, str) or not host or not port.isdigit():
                raise UserError(f"TF_CONFIG cluster.{role} has {a!r}, expected \"host:port\"")
    if "worker" not in cluster and "chief" not in cluster:
        raise UserError("TF_CONFIG cluster has no 'worker' list")
    kind, index = task["type"], task["index"]
    if kind not in cluster:
        raise UserError(f"TF_CONFIG task type {kind!r} is not a job of the cluster ({', '.join(cluster)})")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise UserError(f"TF_CONFIG task index {index!r} is out of range: cluster.{kind} has {len(cluster[kind])} address(es)")
    return config


def probe_tpu(address: str) -> None:
    """grpc://host:port must answer a TCP connection; TensorFlow would otherwise wait forever."""
    hostport = address.split("://", 1)[1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--tpu {address}: expected grpc://HOST:PORT, a TPU name, or 'local'")
    try:
        with socket.create_connection((host, int(port)), timeout=TPU_PROBE_TIMEOUT_S):
            pass
    except OSError as e:
        raise UserError(f"TPU at {hostport} is unreachable ({e.strerror or type(e).__name__})") from None


def on_tpu_vm() -> bool:
    return os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0") or bool(os.environ.get("TPU_ACCELERATOR_TYPE"))
