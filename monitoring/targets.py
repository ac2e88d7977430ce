#!/usr/bin/env python3
"""Writes Prometheus's file_sd target lists for the model servers that belong to this project.

A metrics port (6000, 6001..6009 by default; MODEL_METRICS_PORTS overrides) becomes a target when
  - a container named docker-model or docker-model-rN binds it, running, restarting, or exited
    with an error (a replica that crashed stays a target until `make stop` removes it, so its
    "target down" alert means something; one that a `docker stop` ended cleanly does not),
  - or scripts/serve/serve.sh's local server left its pidfile (build/local-server.pid, port 6000),
  - or a server answers on it right now.
A deliberately stopped server (container removed, pidfile gone) drops out at the next refresh.

Each target's REST port is the one its container maps to 9000, else metrics port + 3000
(6000 -> 9000, 6001 -> 9001, 6100 -> 9100): the blackbox probe posts a prediction there.

Stdlib only (runs with the system python3).  Usage: monitor_targets.py OUT_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^docker-model(-r[0-9]+)?$")
HOST = "127.0.0.1"


def configured_ports():
    raw = os.environ.get("MODEL_METRICS_PORTS", " ".join(str(p) for p in range(6000, 6010)))
    return [int(p) for p in raw.replace(",", " ").split()]


def containers():
    """{metrics_port: (replica name, rest_port)} for this project's model containers, any state."""
    if shutil.which("docker") is None or os.environ.get("MONITOR_DOCKER", "1") == "0":
        return {}
    try:
        names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                               text=True, timeout=10).stdout.split()
        names = [n for n in names if NAME.match(n)]
        if not names:
            return {}
        inspected = json.loads(subprocess.run(["docker", "inspect", *names], capture_output=True,
                                              text=True, timeout=10).stdout or "[]")
    except (subprocess.SubprocessError, ValueError):
        return {}
    found = {}
    for c in inspected:
        state = c.get("State") or {}
        if state.get("Status") in ("exited", "dead", "created") and state.get("ExitCode") == 0 \
                and not state.get("OOMKilled"):
            continue  # stopped cleanly (docker stop): on its way out, not down
        bindings = (c.get("HostConfig") or {}).get("PortBindings") or {}

        def host_port(container_port):
            for b in bindings.get(f"{container_port}/tcp") or []:
                if b.get("HostPort"):
                    return int(b["HostPort"])
            return None

        metrics, rest = host_port(6000), host_port(9000)
        if metrics is not None:
            found[metrics] = (c["Name"].lstrip("/"), rest or metrics + 3000)
    return found


def answers(port):
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def discover():
    targets = {}
    for port, (name, rest) in containers().items():
        targets[port] = (name, rest)
    if (REPO / "build" / "local-server.pid").exists() and 6000 not in targets:
        targets[6000] = ("local", 9000)
    for port in configured_ports():
        if port not in targets and answers(port):
            targets[port] = (f"port-{port}", port + 3000)
    return dict(sorted(targets.items()))


def write_if_changed(path, groups):
    text = json.dumps(groups, indent=2) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # atomic: Prometheus never reads half a file
    return True


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = discover()
    model = [{"targets": [f"{HOST}:{port}"], "labels": {"replica": name}}
             for port, (name, _) in targets.items()]
    probe = [{"targets": [f"http://{HOST}:{rest}/api/v1.0/predictions"], "labels": {"replica": name}}
             for _, (name, rest) in targets.items()]
    changed = write_if_changed(out / "model.json", model)
    changed |= write_if_changed(out / "probe.json", probe)
    if changed:
        listed = ", ".join(f"{name} :{port}" for port, (name, _) in targets.items()) or "none"
        print(f"[monitor] model targets: {listed}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else REPO / "build" / "prometheus" / "targets")
