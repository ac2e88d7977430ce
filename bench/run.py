"""`make bench`: the same model served five ways, measured the same way, in one run.

    venvs/notebooks/bin/python bench/run.py [--quick] [--only article,kit,...]

bench/README.md holds the method and the latest tables.

Servers (one at a time, each stopped before the next starts, but for the 1-row rounds; host
processes on loopback ports 18000-18300, containers at their own bridge address, so that no server
pays for docker-proxy):
  article        docker-model:article (bench/build_article_image.sh): the article's class, Dockerfile and
                 requirements (Python 3.9, seldon-core 1.14.1, scikit-learn 1.0.2), 1 gunicorn worker
  the ablation   the kit's image with SERVING_TUNING=off (stock seldon-core), then each step of
                 serving/tuning added in turn (tuning.ABLATION_ORDER), in interleaved rounds
  kit            docker-model:1.0.0 (make image) with its defaults (2 workers x 1 thread, every tuning
                 step), a throwaway volume
  mlserver-pw1   bench/mlserver:1.7.1 (bench/build_mlserver_image.sh): MLServer 1.7.1 + mlserver-sklearn
                 built like the kit's image, from the same base; V2 protocol, parallel_workers=1 (its default)
  mlserver-pw0   the same image, parallel_workers=0 (inference in the server process)
  floor          bench/floor_app.py: json + predict on gunicorn, 2 sync workers

Measured for each: cold start (start to first good prediction, median of 5 starts), one-row
predictions (wrk: req/s, p50, p99) and one-row gRPC predictions where the server has gRPC
(bench/grpc_load.py: req/s, p50, p99), both in rounds with every server running and measured in
turn, medians of the rounds; batches of 100 and 10,000 rows (rows/s), the 513-row feedback
replay (one call per row, then one call for all rows; n/a without a feedback endpoint), resident
memory under load (RSS and PSS summed over the process tree), image size. Writes bench/results.json
and bench/results.png. Everything started here is stopped in a finally block, whatever happens.
"""
import argparse
import collections
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
from kit.training import load_test_set  # noqa: E402
from serving.tuning import ABLATION_ORDER  # noqa: E402

HOST = "127.0.0.1"
ARTICLE_IMAGE = os.environ.get("ARTICLE_IMAGE", "docker-model:article")
KIT_IMAGE = os.environ.get("IMAGE", "docker-model:" + (ROOT / "VERSION").read_text().strip())
SERVING_VENV = ROOT / "venvs" / "serving"
MLSERVER_IMAGE = os.environ.get("MLSERVER_IMAGE", "bench/mlserver:1.7.1")
MLSERVER_VENV = ROOT / "venvs" / "mlserver"  # MLServer's protobuf classes, for its gRPC requests
GRPC_PROCESSES, GRPC_CONCURRENCY = 2, 4  # 8 calls in flight, as wrk's 8 connections
MODEL_PATH = ROOT / "models" / "binary-lr.joblib"
WRK_THREADS, WRK_CONNECTIONS = 2, 8
COLD_STARTS = 5
# How the kit's image runs in `make serve`, here too.
HARDENING = ["--init", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
TARGETS = {
    "single_vs_mlserver": 1.5, "single_vs_article": 4.0, "batch10k_rows_per_s": 100_000,
    "batch10k_vs_mlserver": 1.0, "grpc_vs_mlserver": 1.0, "cold_start_vs_mlserver": 1.0,
    "feedback_one_call_ms": 50, "cold_start_s": 2.0, "image_vs_article": 0.5, "feedback_rate_vs_article": 4.0,
}
# The article's confusion matrix under its versions (SPEC.md), and the kit's under current versions.
ARTICLE_COUNTS = {"tp": 303, "fp": 15, "tn": 172, "fn": 23}


def say(*args):
    print("[bench]", *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# payloads

def seldon_predict(rows):
    return {"data": {"ndarray": [[float(v) for v in r] for r in rows]}}


def seldon_feedback(rows, labels):
    return {"request": seldon_predict(rows), "truth": {"data": {"ndarray": [int(t) for t in labels]}}}


def v2_predict(rows):
    rows = np.asarray(rows, dtype=float)
    return {"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                        "data": rows.ravel().tolist()}]}


def seldon_labels(doc):
    return [int(v) for v in doc["data"]["ndarray"]]


def v2_labels(doc):
    return [int(v) for v in doc["outputs"][0]["data"]]


# ---------------------------------------------------------------------------------------------
# HTTP and process helpers

def post(server, path, doc, timeout=60, conn=None):
    """(status, parsed JSON or text, seconds) of one POST; reuses `conn` if given (keep-alive)."""
    body = json.dumps(doc).encode()
    own = conn is None
    conn = conn or http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    t0 = time.perf_counter()
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - t0
    if own:
        conn.close()
    try:
        return resp.status, json.loads(data), elapsed
    except ValueError:
        return resp.status, data.decode(errors="replace")[:300], elapsed


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


def process_tree(root_pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def memory_of(root_pid):
    """RSS and PSS (MB) summed over the process tree (PSS splits pages forked workers share)."""
    rss = pss = 0
    pids = process_tree(root_pid)
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1), "processes": len(pids)}


def docker(*args, check=True, capture=True):
    return subprocess.run(["docker", *args], check=check, text=True,
                          stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE)


# ---------------------------------------------------------------------------------------------
# servers

class Server:
    name = ""
    host = HOST
    port = 0
    predict_path = ""
    feedback_path = None
    grpc_port = None
    image = None
    protocol = "seldon"

    def payload(self, rows):
        return v2_predict(rows) if self.protocol == "v2" else seldon_predict(rows)

    def labels(self, doc):
        return v2_labels(doc) if self.protocol == "v2" else seldon_labels(doc)

    def ports(self):
        return [self.port]

    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def root_pid(self):
        raise NotImplementedError

    def describe(self):
        return ""


class Container(Server):
    def __init__(self, name, image, container, published, run_args=(), description="", port=9000,
                 protocol="seldon", predict_path="/api/v1.0/predictions", feedback_path="/api/v1.0/feedback",
                 grpc_port=None):
        """published: (host port, container port) pairs, on loopback, to look at it by hand; port and
        grpc_port: the container's own."""
        self.name, self.image, self.container, self.published = name, image, container, list(published)
        self.run_args, self.description = list(run_args), description
        self.port, self.protocol, self.grpc_port = port, protocol, grpc_port
        self.predict_path, self.feedback_path = predict_path, feedback_path
        self.started = False
        self.host = None

    def ports(self):
        return [p for p, _ in self.published]

    def start(self):
        self.remove()  # a container of this name can only be a leftover of an interrupted bench run
        publish = []
        for host_port, container_port in self.published:
            publish += ["-p", f"{HOST}:{host_port}:{container_port}"]
        self.started = True
        docker("run", "-d", "--rm", "--name", self.container, *publish, *self.run_args, self.image)
        # Measured at the container's own address: through the published port, docker-proxy would
        # copy every byte in user space (about 150 µs of CPU per request here), a cost the servers
        # run as host processes do not pay.
        self.host = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                           self.container).stdout.strip()

    def remove(self):
        docker("rm", "-f", "-v", self.container, check=False)

    def stop(self):
        if self.started:
            self.remove()
            self.started = False

    def root_pid(self):
        return int(docker("inspect", "-f", "{{.State.Pid}}", self.container).stdout.strip())

    def logs(self):
        return docker("logs", "--tail", "30", self.container, check=False).stderr

    def describe(self):
        return self.description


class Process(Server):
    def __init__(self, name, argv, port, cwd=ROOT, env=None, protocol="seldon", predict_path="/predict",
                 description=""):
        self.name, self.argv, self.port, self.cwd = name, argv, port, cwd
        self.env, self.protocol, self.predict_path = env or {}, protocol, predict_path
        self.description = description
        self.proc, self.log = None, None

    def ports(self):
        return [self.port]

    def start(self):
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{self.name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env={**os.environ, **self.env},
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            pgid = os.getpgid(self.proc.pid)
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(5)
        # whatever of the group outlived its leader (MLServer's pool workers)
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None

    def root_pid(self):
        return self.proc.pid

    def logs(self):
        if not self.log:
            return ""
        return "".join(Path(self.log.name).read_text(errors="replace").splitlines(True)[-30:])

    def describe(self):
        return self.description


def mlserver(name, parallel_workers, published_port):
    """MLServer's image (bench/build_mlserver_image.sh) with parallel_workers set, started as the kit's is."""
    model = json.loads((BENCH / "mlserver" / "model-settings.json").read_text())["name"]
    return Container(name, MLSERVER_IMAGE, f"bench-{name}", [(published_port, 8080), (published_port + 1, 8081)],
                     run_args=["-e", f"MLSERVER_PARALLEL_WORKERS={parallel_workers}"], port=8080, grpc_port=8081,
                     protocol="v2", predict_path=f"/v2/models/{model}/infer", feedback_path=None,
                     description=f"MLServer 1.7.1 + mlserver-sklearn in a container from the kit's base, V2, "
                                 f"parallel_workers={parallel_workers}")


ABLATION_ROUNDS = 3
ONE_ROW_ROUNDS = 3
ABLATION_STARTS = 1  # cold starts per round
ABLATION_FEEDBACK_ROUNDS = 2  # the 513 rows, one per call, twice: 1,026 calls


def ablation():
    """(name, SERVING_TUNING, the step it adds): stock seldon-core, then each tuning step added in
    turn; the last, every step, is the kit's default."""
    return [("stock", "off", None)] + [
        (f"+{step}", ",".join(ABLATION_ORDER[:i + 1]), step) for i, step in enumerate(ABLATION_ORDER)]


def servers():
    return {
        "article": Container("article", ARTICLE_IMAGE, "docker-model-article-bench", [(18010, 9000)],
                             description="the article as published: Python 3.9, seldon-core 1.14.1, sklearn 1.0.2, "
                                         "1 worker, root"),
        # The kit's defaults; its anonymous volume (the image's VOLUME) goes with the container (--rm -v).
        "kit": Container("kit", KIT_IMAGE, "docker-model-bench", [(18000, 9000), (18006, 6000)],
                         run_args=HARDENING, grpc_port=5000,
                         description="this kit's image, its defaults (2 workers x 1 thread), throwaway volume"),
        "mlserver-pw1": mlserver("mlserver-pw1", 1, 18200),
        "mlserver-pw0": mlserver("mlserver-pw0", 0, 18210),
        "floor": Process("floor", [str(SERVING_VENV / "bin" / "gunicorn"), "-w", "2", "-b", f"{HOST}:18300",
                                   "--chdir", str(BENCH), "--access-logfile", "/dev/null", "floor_app:app"],
                         18300, env={"MODEL_PATH": str(MODEL_PATH)},
                         description="bare WSGI: json + predict, gunicorn 20.1, 2 sync workers"),
    }


# ---------------------------------------------------------------------------------------------
# measurements

def cold_start(server, probe_doc, expected, limit=60):
    """Seconds from starting the server to its first correct prediction."""
    t0 = time.perf_counter()
    server.start()
    while time.perf_counter() - t0 < limit:
        try:
            status, doc, _ = post(server, server.predict_path, probe_doc, timeout=5)
            if status == 200:
                got = server.labels(doc)
                if got != expected:
                    raise RuntimeError(f"{server.name} predicted {got}, expected {expected}")
                return time.perf_counter() - t0
        except (OSError, http.client.HTTPException):
            pass
        if isinstance(server, Process) and server.proc.poll() is not None:
            break
        time.sleep(0.01)
    raise RuntimeError(f"{server.name} gave no prediction within {limit} s:\n{server.logs()}")


def cold_starts(server, X, n):
    """n cold starts (each stopping the server before the next), the server left running after the last."""
    expected = [int(v) for v in server_expected(X[:1])]
    starts = []
    for i in range(n):
        if i:
            server.stop()
        starts.append(cold_start(server, server.payload(X[:1]), expected))
    return starts


def wrk(server, body_file, seconds, connections=WRK_CONNECTIONS, threads=WRK_THREADS, sample_memory=False):
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s",
            "--latency", "-s", str(BENCH / "post.lua"), f"http://{server.host}:{server.port}{server.predict_path}"]
    memory = []
    stop = threading.Event()

    def sampler():
        # a few samples in the second half of the run; the largest is kept
        if stop.wait(seconds * 0.5):
            return
        while not stop.is_set():
            try:
                memory.append(memory_of(server.root_pid()))
            except Exception:  # noqa: BLE001 - a sample missed is not a failure
                pass
            stop.wait(max(seconds / 8, 0.5))

    thread = threading.Thread(target=sampler, daemon=True)
    if sample_memory:
        thread.start()
    try:
        out = subprocess.run(argv, env={**os.environ, "WRK_BODY": str(body_file)}, text=True,
                             capture_output=True, timeout=seconds + 60)
    finally:
        stop.set()
        if sample_memory:
            thread.join()
    m = re.search(r"^WRKJSON (\{.*\})$", out.stdout, re.M)
    if not m:
        raise RuntimeError(f"wrk failed on {server.name}:\n{out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    r["req_per_s"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(v for k, v in r.items() if k.startswith("errors_"))
    r["wrk_latency_report"] = out.stdout[out.stdout.find("Latency Distribution"):].split("WRKJSON")[0].strip()
    if memory:
        r["memory"] = max(memory, key=lambda s: s["rss_mb"])
    return r


def grpc_requests(X, tmp, protocols):
    """{protocol: (file, method)}: one row's gRPC request, serialized by each server's own protobuf
    classes, and the method bench/grpc_requests.py says it is for."""
    requests = {}
    for protocol, python in (("seldon", SERVING_VENV), ("v2", MLSERVER_VENV)):
        if protocol not in protocols:
            continue
        path = Path(tmp) / f"grpc-{protocol}-1.bin"
        built = subprocess.run([str(python / "bin" / "python"), str(BENCH / "grpc_requests.py"), "build", protocol,
                                "--row", json.dumps([float(v) for v in X[0]]), "--out", str(path)],
                               check=True, capture_output=True, text=True)
        requests[protocol] = (path, built.stdout.strip())
    return requests


def grpc_load(server, request, expected, seconds, warmup):
    """bench/grpc_load.py against the server's gRPC port: req/s, p50, p99, errors by status code."""
    request_file, method = request
    done = subprocess.run(
        [str(SERVING_VENV / "bin" / "python"), str(BENCH / "grpc_load.py"), "--target", f"{server.host}:{server.grpc_port}",
         "--method", method, "--request", str(request_file), "--seconds", str(seconds),
         "--warmup", str(warmup), "--processes", str(GRPC_PROCESSES), "--concurrency", str(GRPC_CONCURRENCY),
         "--expect", str(expected), "--json"], text=True, capture_output=True, timeout=seconds + warmup + 120)
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"grpc_load.py printed nothing: {done.stderr[-500:]}")
    result = json.loads(lines[-1])
    if done.returncode != 0:
        raise RuntimeError(f"gRPC predictions failed the check: {result.get('check')} errors {result.get('errors')}")
    return result


def feedback_replay(server, X, y):
    """One call per row over one keep-alive connection (the article's loop), then the 513 rows in one call."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    t0 = time.perf_counter()
    last = None
    for row, label in zip(X, y):
        status, last, _ = post(server, server.feedback_path, seldon_feedback([row], [label]), conn=conn)
        if status != 200:
            raise RuntimeError(f"{server.name} feedback answered {status}: {last}")
    one_by_one = time.perf_counter() - t0
    ratios = {m["key"]: m["value"] for m in last.get("meta", {}).get("metrics", []) if m.get("type") == "GAUGE"}
    batch_doc = seldon_feedback(X, y)
    times = []
    for i in range(6):  # the first warms up; the median of the other five is reported
        status, doc, elapsed = post(server, server.feedback_path, batch_doc, conn=conn)
        if status != 200:
            raise RuntimeError(f"{server.name} batch feedback answered {status}: {doc}")
        if i:
            times.append(elapsed)
    conn.close()
    concurrent = concurrent_feedback(server, X, y)
    return {
        "one_by_one_s": one_by_one, "one_by_one_calls_per_s": len(X) / one_by_one,
        "ratios_after_one_by_one": ratios, "concurrent": concurrent,
        "one_call_ms": statistics.median(times) * 1000, "one_call_ms_min": min(times) * 1000,
    }


def concurrent_feedback(server, X, y, connections=WRK_CONNECTIONS, rounds=8):
    """The 513 rows one per call again, `rounds` times, from `connections` keep-alive clients at once
    (the concurrency of the prediction runs): the rate a server takes feedback at. Then the ratios a
    prediction reports: every replay adds the same confusion matrix, so they must not move."""
    head = (f"POST {server.feedback_path} HTTP/1.1\r\nHost: {server.host}\r\n"
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n")
    bodies = [json.dumps(seldon_feedback([row], [label])).encode() for row, label in zip(X, y)] * rounds
    requests = [head.format(len(body)).encode() + body for body in bodies]
    failures = []

    def client(share):
        # A bare HTTP/1.1 client, about as cheap per call as wrk: http.client's header parsing would
        # take CPU from the server on this machine, and more of it from a faster one. Keep-alive, or
        # a new connection where the server closes it (a sync gunicorn worker does), as wrk does.
        sock, pending = None, b""

        def receive():
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"{server.name} closed the connection mid-response")
            return data

        try:
            for request in share:
                if sock is None:
                    sock, pending = socket.create_connection((server.host, server.port), timeout=60), b""
                sock.sendall(request)
                while b"\r\n\r\n" not in pending:
                    pending += receive()
                header, _, pending = pending.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length: *(\d+)", header)
                length = int(length.group(1)) if length else 0
                while len(pending) < length:
                    pending += receive()
                pending = pending[length:]
                if not header.startswith(b"HTTP/1.1 200"):
                    failures.append(header.split(b"\r\n", 1)[0].decode(errors="replace"))
                if re.search(rb"(?im)^connection: *close", header):
                    sock.close()
                    sock = None
        except OSError as err:
            failures.append(repr(err))
        finally:
            if sock is not None:
                sock.close()

    threads = [threading.Thread(target=client, args=(requests[i::connections],)) for i in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{server.name}: {len(failures)} concurrent feedback calls failed ({failures[:5]})")
    _, doc, _ = post(server, server.predict_path, server.payload(X[:1]))
    ratios = {m["key"]: m["value"] for m in doc.get("meta", {}).get("metrics", []) if m.get("type") == "GAUGE"}
    return {"calls": len(bodies), "connections": connections, "seconds": elapsed,
            "calls_per_s": len(bodies) / elapsed, "ratios_after": ratios}


def confusion_from_ratios(ratios, total):
    """Every confusion matrix of `total` rows whose ratios round to those reported (seldon's GAUGE
    values travel as 32-bit floats: about 7 significant digits)."""
    acc, prec, rec = (ratios.get(k) for k in ("accuracy", "precision", "recall"))
    if None in (acc, prec, rec):
        return []
    found = []
    for tp in range(total + 1):
        for fp in range(total + 1 - tp):
            if tp + fp == 0 or abs(tp / (tp + fp) - prec) > 1e-6:
                continue
            for fn in range(total + 1 - tp - fp):
                tn = total - tp - fp - fn
                if tp + fn and abs(tp / (tp + fn) - rec) < 1e-6 and abs((tp + tn) / total - acc) < 1e-6:
                    found.append({"tp": tp, "fp": fp, "tn": tn, "fn": fn})
    return found


def check_article_ratios(ratios, total=513):
    matrices = confusion_from_ratios(ratios, total)
    return {"reported": ratios, "confusion_matrices_matching": matrices,
            "ok": matrices == [ARTICLE_COUNTS]}


def bench_server(server, X, y, bodies, durations, grpc_files):
    say(f"{server.name}: {server.describe()}")
    res = {"description": server.describe()}
    for p in server.ports():
        if not port_free(p):
            raise RuntimeError(f"port {p} is in use: {server.name} cannot start")
    # One start is noisy here (and the first after a build reads the image cold): the median of
    # COLD_STARTS, the server left running after the last.
    starts = cold_starts(server, X, COLD_STARTS)
    res["cold_start_s"], res["cold_starts_s"] = statistics.median(starts), starts
    say(f"  cold start {res['cold_start_s']:.2f} s (median of {' '.join(f'{t:.2f}' for t in starts)})")
    # correctness of a batch through this protocol
    status, doc, _ = post(server, server.predict_path, server.payload(X))
    res["predictions_match_model"] = status == 200 and server.labels(doc) == [int(v) for v in server_expected(X)]
    warm, _, batch = durations
    # Memory under 1-row load; 1-row req/s and latency are measured later, every server in turn
    # (one_row_rounds). Reading a process's smaps stalls it: no latency is measured meanwhile.
    res["memory"] = wrk(server, bodies[server.protocol][1], max(warm, 2), sample_memory=True).pop("memory", None)
    say(f"  memory under 1-row load: {res['memory']}")
    for n in (100, 10_000):
        wrk(server, bodies[server.protocol][n], 1)
        rb = wrk(server, bodies[server.protocol][n], batch)
        rb["rows_per_s"] = rb["req_per_s"] * n
        res[f"batch{n}"] = rb
        say(f"  {n} rows: {rb['rows_per_s']:.0f} rows/s ({rb['req_per_s']:.1f} req/s, "
            f"p50 {rb['p50_us'] / 1000:.1f} ms), errors {rb['errors']}")
    if server.feedback_path:
        fb = feedback_replay(server, X, y)
        res["feedback"] = fb
        if server.name == "article":
            fb["article_confusion_check"] = check_article_ratios(fb["ratios_after_one_by_one"])
            fb["note"] = "the article's send_feedback scores truth[0] only: the one-call batch counts 1 row of 513"
        say(f"  feedback: 513 calls in {fb['one_by_one_s']:.2f} s ({fb['one_by_one_calls_per_s']:.0f}/s), "
            f"ratios {fb['ratios_after_one_by_one']}; 513 rows in one call {fb['one_call_ms']:.1f} ms; "
            f"{fb['concurrent']['calls']} calls over {fb['concurrent']['connections']} connections: "
            f"{fb['concurrent']['calls_per_s']:.0f}/s, ratios then {fb['concurrent']['ratios_after']}")
        # Stock seldon-core answers feedback through protobuf, whose GAUGE values are 32-bit floats.
        before, after = fb["ratios_after_one_by_one"], fb["concurrent"]["ratios_after"]
        if server.name.startswith("kit") and (before.keys() != after.keys()
                                              or any(abs(before[k] - after[k]) > 1e-6 for k in before)):
            raise RuntimeError("the kit's ratios moved after replaying the same rows concurrently: "
                               f"{fb['ratios_after_one_by_one']} -> {fb['concurrent']['ratios_after']}")
    if server.image:
        res["image_mb"] = int(docker("image", "inspect", "-f", "{{.Size}}", server.image).stdout) / 1e6
    return res


_model = None


def median_of_rounds(runs):
    """One figure of several rounds: req/s, p50 and p99 the medians, errors summed (by status code
    over gRPC), each round's req/s and p99 kept."""
    errors = collections.Counter()
    for run in runs:
        errors.update(run["errors"] if isinstance(run["errors"], dict) else {"http": run["errors"]})
    return {"req_per_s": statistics.median(r["req_per_s"] for r in runs),
            "p50_us": statistics.median(r["p50_us"] for r in runs),
            "p99_us": statistics.median(r["p99_us"] for r in runs),
            "errors": sum(errors.values()), "errors_by_kind": dict(errors),
            "rounds": [{"req_per_s": r["req_per_s"], "p99_us": r["p99_us"]} for r in runs]}


def one_row_rounds(benched, X, bodies, grpc_files, warm, seconds):
    """1-row predictions over REST (wrk) and gRPC (bench/grpc_load.py) of every server benched, all
    running at once and measured one after another, ONE_ROW_ROUNDS rounds in alternating order;
    each figure the median of its rounds. This machine's speed drifts over minutes: servers
    measured minutes apart would compare the machine with itself as much as the servers."""
    expected = [int(v) for v in server_expected(X[:1])]
    measured = {server.name: {"single": [], "grpc": []} for server in benched}
    try:
        for server in benched:
            cold_start(server, server.payload(X[:1]), expected)
        for r in range(ONE_ROW_ROUNDS):
            for server in (benched if r % 2 == 0 else benched[::-1]):
                wrk(server, bodies[server.protocol][1], warm)
                got = wrk(server, bodies[server.protocol][1], seconds)
                measured[server.name]["single"].append(got)
                line = f"  round {r + 1}, {server.name:13} 1 row: {got['req_per_s']:.0f} req/s, p99 {got['p99_us'] / 1000:.1f} ms"
                if server.grpc_port:
                    g = grpc_load(server, grpc_files[server.protocol], expected[0], seconds, warm)
                    measured[server.name]["grpc"].append(g)
                    line += f"; gRPC {g['req_per_s']:.0f} req/s, p99 {g['p99_us'] / 1000:.1f} ms"
                say(line)
    finally:
        for server in benched:
            server.stop()
    return {name: {kind: median_of_rounds(runs) for kind, runs in figures.items() if runs}
            for name, figures in measured.items()}


def server_expected(rows):
    """What the kit's model predicts (the article's model agrees on every row but two; see SPEC)."""
    global _model
    if _model is None:
        import joblib
        _model = joblib.load(MODEL_PATH)
    return _model.predict(np.asarray(rows, dtype=float))


# ---------------------------------------------------------------------------------------------
# report

def fmt(v, spec="{:.0f}"):
    return "n/a" if v is None else spec.format(v)


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def summarise(results):
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append((name, r["error"][:60]))
            continue
        rows.append((
            name,
            fmt(get(r, "single", "req_per_s")), fmt(get(r, "single", "p50_us"), "{:.0f}"),
            fmt(get(r, "single", "p99_us"), "{:.0f}"),
            fmt(get(r, "grpc", "req_per_s")), fmt(get(r, "grpc", "p99_us"), "{:.0f}"),
            fmt(get(r, "batch100", "rows_per_s")), fmt(get(r, "batch10000", "rows_per_s")),
            fmt(get(r, "feedback", "one_by_one_s"), "{:.2f}"), fmt(get(r, "feedback", "concurrent", "calls_per_s")),
            fmt(get(r, "feedback", "one_call_ms"), "{:.1f}"),
            fmt(get(r, "cold_start_s"), "{:.2f}"), fmt(get(r, "image_mb")),
            fmt(get(r, "memory", "rss_mb")), fmt(get(r, "memory", "pss_mb")),
        ))
    head = ("server", "1-row req/s", "p50 µs", "p99 µs", "gRPC req/s", "gRPC p99 µs", "rows/s @100", "rows/s @10k", "fb 513×1 s",
            f"fb calls/s ×{WRK_CONNECTIONS}", "fb 1×513 ms", "cold s", "image MB", "RSS MB", "PSS MB")
    widths = [max(len(str(x[i])) if i < len(x) else 0 for x in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in [head] + rows]
    return "\n".join(lines)


def ratios(results):
    kit, art = results.get("kit", {}), results.get("article", {})
    mls = [v for k, v in results.items() if k.startswith("mlserver") and "single" in v]
    best = max(mls, key=lambda v: v["single"]["req_per_s"], default=None)
    best_name = next((k for k, v in results.items() if v is best), None)
    out = {}

    def ratio(a, b):
        return a / b if a is not None and b else None

    ks = get(kit, "single", "req_per_s")
    out["best_mlserver"] = best_name
    out["single_vs_mlserver"] = ratio(ks, get(best, "single", "req_per_s"))
    out["p99_vs_mlserver"] = ratio(get(kit, "single", "p99_us"), get(best, "single", "p99_us"))
    out["single_vs_article"] = ratio(ks, get(art, "single", "req_per_s"))
    out["single_vs_floor"] = ratio(ks, get(results, "floor", "single", "req_per_s"))
    out["batch10k_rows_per_s"] = get(kit, "batch10000", "rows_per_s")
    # Each figure against MLServer's best setting for that figure.
    best_batch = max((get(v, "batch10000", "rows_per_s") or 0 for v in mls), default=None)
    out["batch10k_vs_mlserver"] = ratio(out["batch10k_rows_per_s"], best_batch)
    best_grpc = max((v for v in mls if get(v, "grpc", "req_per_s")), key=lambda v: v["grpc"]["req_per_s"], default=None)
    out["grpc_req_per_s"] = get(kit, "grpc", "req_per_s")
    out["grpc_vs_mlserver"] = ratio(out["grpc_req_per_s"], get(best_grpc, "grpc", "req_per_s"))
    out["grpc_p99_vs_mlserver"] = ratio(get(kit, "grpc", "p99_us"), get(best_grpc, "grpc", "p99_us"))
    out["batch10k_vs_article"] = ratio(out["batch10k_rows_per_s"], get(art, "batch10000", "rows_per_s"))
    out["feedback_one_call_ms"] = get(kit, "feedback", "one_call_ms")
    out["feedback_replay_vs_article"] = ratio(get(art, "feedback", "one_by_one_s"), get(kit, "feedback", "one_by_one_s"))
    out["feedback_rate_vs_article"] = ratio(get(kit, "feedback", "concurrent", "calls_per_s"),
                                            get(art, "feedback", "concurrent", "calls_per_s"))
    out["cold_start_s"] = get(kit, "cold_start_s")
    out["cold_start_vs_mlserver"] = ratio(out["cold_start_s"], min((v["cold_start_s"] for v in mls), default=None))
    out["image_vs_article"] = ratio(get(kit, "image_mb"), get(art, "image_mb"))
    out["pss_vs_mlserver"] = ratio(get(kit, "memory", "pss_mb"), get(best, "memory", "pss_mb"))
    out["pss_vs_article"] = ratio(get(kit, "memory", "pss_mb"), get(art, "memory", "pss_mb"))
    return out


def verdicts(r):
    def v(ok):
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    def cmp(x, op, y):
        return None if x is None else op(x, y)

    import operator as o
    t = TARGETS
    return [
        (f"1-row req/s vs best MLServer ({r['best_mlserver']}) >= {t['single_vs_mlserver']}x",
         fmt(r["single_vs_mlserver"], "{:.2f}x"), v(cmp(r["single_vs_mlserver"], o.ge, t["single_vs_mlserver"]))),
        ("   at a p99 no higher than MLServer's (kit p99 / MLServer p99 <= 1)",
         fmt(r["p99_vs_mlserver"], "{:.2f}"), v(cmp(r["p99_vs_mlserver"], o.le, 1.0))),
        (f"1-row req/s vs the article >= {t['single_vs_article']}x", fmt(r["single_vs_article"], "{:.2f}x"),
         v(cmp(r["single_vs_article"], o.ge, t["single_vs_article"]))),
        ("1-row req/s vs the floor (information)", fmt(r["single_vs_floor"], "{:.2f}x"), ""),
        (f"batch of 10,000 rows >= {t['batch10k_rows_per_s']:,} rows/s", fmt(r["batch10k_rows_per_s"], "{:,.0f}"),
         v(cmp(r["batch10k_rows_per_s"], o.ge, t["batch10k_rows_per_s"]))),
        (f"   vs MLServer's best >= {t['batch10k_vs_mlserver']}x", fmt(r["batch10k_vs_mlserver"], "{:.2f}x"),
         v(cmp(r["batch10k_vs_mlserver"], o.ge, t["batch10k_vs_mlserver"]))),
        ("   vs the article (information)", fmt(r["batch10k_vs_article"], "{:.2f}x"), ""),
        (f"1-row gRPC req/s vs MLServer's best gRPC (V2) >= {t['grpc_vs_mlserver']}x",
         fmt(r["grpc_vs_mlserver"], "{:.2f}x"), v(cmp(r["grpc_vs_mlserver"], o.ge, t["grpc_vs_mlserver"]))),
        ("   its p99 / MLServer's (information)", fmt(r["grpc_p99_vs_mlserver"], "{:.2f}"), ""),
        (f"feedback, 513 rows in one call < {t['feedback_one_call_ms']} ms", fmt(r["feedback_one_call_ms"], "{:.1f} ms"),
         v(cmp(r["feedback_one_call_ms"], o.lt, t["feedback_one_call_ms"]))),
        (f"feedback, 513 rows one per call, {WRK_CONNECTIONS} clients: calls/s vs the article >= "
         f"{t['feedback_rate_vs_article']}x", fmt(r["feedback_rate_vs_article"], "{:.2f}x"),
         v(cmp(r["feedback_rate_vs_article"], o.ge, t["feedback_rate_vs_article"]))),
        ("   the article's loop, one client, one call at a time: article time / kit time (information)",
         fmt(r["feedback_replay_vs_article"], "{:.2f}x"), ""),
        (f"cold start < {t['cold_start_s']} s", fmt(r["cold_start_s"], "{:.2f} s"),
         v(cmp(r["cold_start_s"], o.lt, t["cold_start_s"]))),
        (f"   vs MLServer's fastest, both containers from the same base <= {t['cold_start_vs_mlserver']}",
         fmt(r["cold_start_vs_mlserver"], "{:.2f}"), v(cmp(r["cold_start_vs_mlserver"], o.le, t["cold_start_vs_mlserver"]))),
        (f"image size vs the article's <= {t['image_vs_article']:.0%}", fmt(r["image_vs_article"], "{:.1%}"),
         v(cmp(r["image_vs_article"], o.le, t["image_vs_article"]))),
        ("memory (PSS) under load vs best MLServer / vs the article (information)",
         f"{fmt(r['pss_vs_mlserver'], '{:.2f}x')} / {fmt(r['pss_vs_article'], '{:.2f}x')}", ""),
    ]


ABLATION_FIGURES = [  # (label, path in a result, higher is better)
    ("1-row req/s", ("single", "req_per_s"), True),
    ("1-row p99 ms", ("single", "p99_us"), False),
    ("gRPC 1-row req/s", ("grpc", "req_per_s"), True),
    ("feedback calls/s", ("feedback", "concurrent", "calls_per_s"), True),
    ("rows/s @10k", ("batch10000", "rows_per_s"), True),
    ("cold start s", ("cold_start_s",), False),
]


def ablation_table(results):
    """Each step's row: its figures, and each figure's gain over the row before (positive: better)."""
    rows, before = [], None
    for name, setting, step in ablation():
        r = results.get(name)
        if not r or "error" in r:
            continue
        figures = [get(r, *path) for _, path, _ in ABLATION_FIGURES]
        gains = None
        if before is not None:
            gains = [None if a is None or b is None else ((a / b - 1) if higher else (b / a - 1))
                     for a, b, (_, _, higher) in zip(figures, before, ABLATION_FIGURES)]
        rows.append({"step": step or "stock seldon-core", "setting": setting, "figures": figures,
                     "gains": gains, "rounds": r["rounds"]})
        before = figures
    return rows


def ablation_config(setting):
    return Container(f"SERVING_TUNING={setting}", KIT_IMAGE, "docker-model-bench", [(18000, 9000), (18006, 6000)],
                     run_args=HARDENING + ["-e", f"SERVING_TUNING={setting}"], grpc_port=5000,
                     description=f"this kit's image, SERVING_TUNING={setting}")


def ablation_round(server, X, y, bodies, grpc_request, seconds):
    """The six figures of one start of one setting: cold start, 1-row req/s and p99, 1-row gRPC
    req/s, 10,000-row rows/s, feedback calls/s from 8 clients."""
    starts = cold_starts(server, X, ABLATION_STARTS)
    wrk(server, bodies["seldon"][1], 1)
    single = wrk(server, bodies["seldon"][1], seconds)
    over_grpc = grpc_load(server, grpc_request, int(server_expected(X[:1])[0]), max(1, seconds // 2), 1)
    batch = wrk(server, bodies["seldon"][10_000], max(1, seconds // 2))
    feedback = concurrent_feedback(server, X, y, rounds=ABLATION_FEEDBACK_ROUNDS)
    if single["errors"] or batch["errors"] or over_grpc["errors"]:
        raise RuntimeError(f"{server.name}: errors ({single['errors']} 1-row, {batch['errors']} batch, "
                           f"{over_grpc['errors']} gRPC)")
    return {"cold_start_s": starts, "req_per_s": single["req_per_s"], "p99_us": single["p99_us"],
            "grpc_req_per_s": over_grpc["req_per_s"], "rows_per_s": batch["req_per_s"] * 10_000,
            "calls_per_s": feedback["calls_per_s"]}


class Running(Server):
    """A server started by the kit's own scripts, reached at a loopback port (the balancer)."""

    def __init__(self, name, port, description=""):
        self.name, self.port, self.description = name, port, description
        self.host, self.predict_path = HOST, "/api/v1.0/predictions"

    def describe(self):
        return self.description


def scale(*args):
    subprocess.run(["bash", str(ROOT / "scripts" / "serve" / "scale.sh"), *args], check=True,
                   capture_output=True, env={**os.environ, "WEIGHTS": "", "MODELS": ""})


def medians(measured):
    """{name: median_of_rounds(its results)} of {name: [wrk results]}, said as well."""
    out = {}
    for name, runs in measured.items():
        out[name] = median_of_rounds(runs)
        say(f"  {name}: {out[name]['req_per_s']:.0f} req/s, p99 {out[name]['p99_us'] / 1000:.1f} ms "
            f"(median of {len(runs)}), errors {out[name]['errors']}")
    return out


def comparison(name, what, measure):
    """measure()'s result, or its error: the rest of the report stands without it."""
    say(what)
    try:
        return measure()
    except Exception as err:  # noqa: BLE001
        say(f"{name} FAILED: {err}")
        return {"error": f"{type(err).__name__}: {err}"}


def balancer_comparison(X, bodies, seconds, rounds=3):
    """1-row predictions through make scale's balancer (nginx on :9000, over 1 and over 3 replicas of
    2 workers) against the kit's image as one container of 2 workers through a published port,
    interleaved, medians of `rounds`: each path passes Docker's port proxy once, the balanced ones
    nginx too. On 2 cores 3 replicas share what 1 has."""
    if not (port_free(9000) and port_free(9001)):
        raise RuntimeError("ports 9000/9001 are in use: make stop and make scale-down first")
    single = Container("kit-published", KIT_IMAGE, "docker-model-bench-published", [(18100, 9000)], run_args=HARDENING)
    cold_start(single, seldon_predict(X[:1]), [int(v) for v in server_expected(X[:1])])
    direct = Running("one container, published port", 18100)
    measured = {}
    try:
        for _ in range(rounds):
            for replicas in ("1", "3"):
                scale("up", replicas, "2")
                balanced = Running(f"balancer, {replicas} replica{'s' if replicas != '1' else ''} x 2", 9000)
                for server in (direct, balanced):
                    wrk(server, bodies["seldon"][1], 1)
                    measured.setdefault(server.name, []).append(wrk(server, bodies["seldon"][1], seconds))
                scale("down")
    finally:
        scale("down")
        single.stop()
    return medians(measured)


def drift_comparison(X, bodies, seconds, rounds=3):
    """1-row predictions of the kit's image with the drift monitor on (its default) and off
    (DRIFT=off), each a fresh container, interleaved in alternating order, medians of `rounds`."""
    settings = {"drift on": "on", "drift off": "off"}
    measured = {name: [] for name in settings}
    for r in range(rounds):
        for name in (list(settings) if r % 2 == 0 else list(settings)[::-1]):
            server = Container(name, KIT_IMAGE, "docker-model-bench-drift", [(18000, 9000), (18006, 6000)],
                               run_args=HARDENING + ["-e", f"DRIFT={settings[name]}"])
            try:
                cold_start(server, seldon_predict(X[:1]), [int(v) for v in server_expected(X[:1])])
                wrk(server, bodies["seldon"][1], 1)
                got = wrk(server, bodies["seldon"][1], seconds)
                if name == "drift on":
                    page = http.client.HTTPConnection(server.host, 6000, timeout=10)
                    page.request("GET", "/metrics")
                    tests = re.search(r"^seldon_metric_drift_tests_total\{[^}]*\} (\S+)$",
                                      page.getresponse().read().decode(), re.M)
                    got["drift_tests"] = float(tests.group(1)) if tests else None
                measured[name].append(got)
            finally:
                server.stop()
    out = medians(measured)
    out["drift on"]["drift_tests"] = [r.get("drift_tests") for r in measured["drift on"]]
    return out


def run_ablation(X, y, bodies, grpc_request, seconds):
    """Every setting of ablation(), ABLATION_ROUNDS times, interleaved and in alternating order (this
    machine's speed drifts over minutes); each figure is the median over the rounds."""
    rounds = {name: [] for name, _, _ in ablation()}
    for r in range(ABLATION_ROUNDS):
        for name, setting, _ in (ablation() if r % 2 == 0 else ablation()[::-1]):
            server = ablation_config(setting)
            try:
                got = ablation_round(server, X, y, bodies, grpc_request, seconds)
                rounds[name].append(got)
                say(f"ablation round {r + 1}, {name:18} cold {' '.join(f'{t:.2f}' for t in got['cold_start_s'])} s, "
                    f"{got['req_per_s']:.0f} req/s, p99 {got['p99_us'] / 1000:.1f} ms, "
                    f"gRPC {got['grpc_req_per_s']:.0f} req/s, "
                    f"{got['rows_per_s']:.0f} rows/s @10k, {got['calls_per_s']:.0f} feedback calls/s")
            except Exception as err:  # noqa: BLE001 - reported, the other settings go on
                say(f"ablation {name} FAILED: {err}")
                rounds[name].append({"error": f"{type(err).__name__}: {err}"})
            finally:
                server.stop()
    results = {}
    for name, got in rounds.items():
        good = [g for g in got if "error" not in g]
        if len(good) < len(got):
            results[name] = {"error": next(g["error"] for g in got if "error" in g), "rounds": got}
            continue
        med = {key: statistics.median(g[key] for g in good)
               for key in ("req_per_s", "p99_us", "grpc_req_per_s", "rows_per_s", "calls_per_s")}
        results[name] = {"single": {"req_per_s": med["req_per_s"], "p99_us": med["p99_us"]},
                         "grpc": {"req_per_s": med["grpc_req_per_s"]},
                         "batch10000": {"rows_per_s": med["rows_per_s"]},
                         "feedback": {"concurrent": {"calls_per_s": med["calls_per_s"]}},
                         "cold_start_s": statistics.median(t for g in good for t in g["cold_start_s"]),
                         "rounds": got}
    return results


def ablation_markdown(rows):
    head = "| step added | " + " | ".join(label for label, _, _ in ABLATION_FIGURES) + " | best gain |"
    lines = [head, "|" + "---|" * (len(ABLATION_FIGURES) + 2)]
    for row in rows:
        cells = []
        for (label, _, _), value, i in zip(ABLATION_FIGURES, row["figures"], range(len(ABLATION_FIGURES))):
            text = "n/a" if value is None else (f"{value / 1000:.1f}" if "p99" in label else
                                                 f"{value:.2f}" if "cold" in label else f"{value:,.0f}")
            if row["gains"] and row["gains"][i] is not None:
                text += f" ({row['gains'][i]:+.0%})"
            cells.append(text)
        best = max((g for g in row["gains"] or [] if g is not None), default=None)
        lines.append(f"| {row['step']} | " + " | ".join(cells) + f" | {'' if best is None else f'{best:+.0%}'} |")
    return "\n".join(lines)


def plot_ablation(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ABLATION_FIGURES), figsize=(21, 4.2))
    steps = [row["step"].replace("stock seldon-core", "stock") for row in rows]
    for i, (ax, (label, _, higher)) in enumerate(zip(axes, ABLATION_FIGURES)):
        values = [(row["figures"][i] or 0) / (1000 if "p99" in label else 1) for row in rows]
        ax.plot(range(len(rows)), values, marker="o", color="#4c72b0")
        ax.set_xticks(range(len(rows)), [("+" if j else "") + s for j, s in enumerate(steps)], rotation=40,
                      ha="right", fontsize=8)
        ax.set_title(f"{label} ({'higher' if higher else 'lower'} is better)", fontsize=10)
        ax.set_ylim(bottom=0)
    fig.suptitle("What each tuning step buys: stock seldon-core, then each step of serving/tuning added in turn",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, r in results.items() if "single" in r]
    panels = [
        ("1-row predictions (req/s)", lambda r: get(r, "single", "req_per_s")),
        ("1-row p99 latency (ms)", lambda r: (get(r, "single", "p99_us") or 0) / 1000),
        ("rows/s, 10,000-row batches", lambda r: get(r, "batch10000", "rows_per_s")),
        ("cold start (s)", lambda r: get(r, "cold_start_s")),
        ("memory under load, PSS (MB)", lambda r: get(r, "memory", "pss_mb")),
        ("image size (MB)", lambda r: get(r, "image_mb")),
    ]
    colors = {"article": "#c44e52", "kit": "#4c72b0", "floor": "#8c8c8c"}
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for ax, (title, f) in zip(axes.ravel(), panels):
        raw = [f(results[n]) for n in names]
        vals = [v or 0 for v in raw]
        bars = ax.bar(names, vals, color=[colors.get(n, "#55a868") for n in names])
        ax.bar_label(bars, labels=["n/a" if not r else f"{v:,.0f}" if v >= 10 else f"{v:.2f}"
                                   for r, v in zip(raw, vals)], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.suptitle(f"Same model, five servers (wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, loopback, "
                 f"{os.cpu_count()} cores, shared machine)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------

def ensure_tools(names):
    if not shutil.which("wrk"):
        say("installing wrk (apt-get)")
        subprocess.run(["bash", str(ROOT / "scripts" / "environments" / "apt_install.sh"), "wrk"], check=True)
    if any(n.startswith("mlserver") for n in names):
        subprocess.run(["bash", str(BENCH / "setup_mlserver.sh")], check=True)
        subprocess.run(["bash", str(BENCH / "build_mlserver_image.sh")], check=True)
    for image, needed in ((ARTICLE_IMAGE, "article" in names), (KIT_IMAGE, any(n.startswith("kit") for n in names))):
        if needed and docker("image", "inspect", image, check=False).returncode != 0:
            raise SystemExit(f"no image {image}: run `make image` and `make article-image` first")


def write_bodies(X, tmp):
    bodies = {}
    for proto, make in (("seldon", seldon_predict), ("v2", v2_predict)):
        bodies[proto] = {}
        for n in (1, 100, 10_000):
            rows = np.resize(X, (n, X.shape[1])) if n > len(X) else X[:n]
            path = Path(tmp) / f"{proto}-{n}.json"
            path.write_text(json.dumps(make(rows)))
            bodies[proto][n] = path
    return bodies


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (1 s warm-up, 3 s, 2 s): to develop")
    ap.add_argument("--only", default="article,kit,mlserver-pw1,mlserver-pw0,floor")
    ap.add_argument("--ablation", choices=("on", "off", "only"), default="on",
                    help="stock seldon-core, then each step of serving/tuning added in turn (only: nothing else)")
    ap.add_argument("--out", default=str(BENCH / "results.json"))
    ap.add_argument("--balancer", action=argparse.BooleanOptionalAction, default=True,
                    help="1-row predictions through make scale's balancer against one container")
    ap.add_argument("--drift", action=argparse.BooleanOptionalAction, default=True,
                    help="1-row predictions with the drift monitor on against off")
    args = ap.parse_args()
    durations = (1, 3, 2) if args.quick else (3, 10, 5)
    names = [] if args.ablation == "only" else [n.strip() for n in args.only.split(",") if n.strip()]
    t_start = time.time()
    ensure_tools(names + (["kit"] if args.ablation != "off" else []))
    X, y = load_test_set()
    assert X.shape == (513, 30), X.shape
    results = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        bodies = write_bodies(X, tmp)
        grpc_files = grpc_requests(X, tmp, {"seldon"} | ({"v2"} if any(n.startswith("mlserver") for n in names) else set()))
        all_servers = servers()
        unknown = set(names) - set(all_servers)
        if unknown:
            raise SystemExit(f"unknown servers {sorted(unknown)}; known: {sorted(all_servers)}")
        for name in names:
            server = all_servers[name]
            try:
                results[name] = bench_server(server, X, y, bodies, durations, grpc_files)
            except Exception as err:  # noqa: BLE001 - one server failing must not lose the others
                say(f"{name} FAILED: {err}")
                results[name] = {"error": f"{type(err).__name__}: {err}", "description": server.describe()}
            finally:
                server.stop()
        seconds = durations[1] // 2 or 1  # a round's run, where runs are repeated and interleaved
        benched = [all_servers[name] for name in names if "error" not in results[name]]
        if benched:
            say(f"1-row predictions, REST and gRPC, {ONE_ROW_ROUNDS} rounds of {', '.join(s.name for s in benched)} in turn")
            try:
                for name, figures in one_row_rounds(benched, X, bodies, grpc_files, 1, seconds).items():
                    results[name].update(figures)
            except Exception as err:  # noqa: BLE001 - the other figures stand
                say(f"1-row rounds FAILED: {err}")
                for server in benched:
                    results[server.name]["error"] = f"1-row rounds: {type(err).__name__}: {err}"
        balancer = comparison("balancer", "the balancer of make scale against one container (1-row predictions)",
                              lambda: balancer_comparison(X, bodies, seconds)) if args.balancer else {}
        drift = comparison("drift", "the drift monitor on against off (1-row predictions)",
                           lambda: drift_comparison(X, bodies, seconds)) if args.drift else {}
        ablation_seconds = 2 if args.quick else 4
        ablation_results = run_ablation(X, y, bodies, grpc_files["seldon"], ablation_seconds) \
            if args.ablation != "off" else {}
    r = ratios(results)
    steps = ablation_table(ablation_results)
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                    "note": "shared machine: other work ran at the same time"},
        "method": {"wrk": f"-t{WRK_THREADS} -c{WRK_CONNECTIONS}", "warmup_s": durations[0],
                   "one_row": f"{ONE_ROW_ROUNDS} rounds of 1 s + {seconds} s", "batch_s": durations[2], "quick": args.quick},
        "article_training": (ROOT / "build" / "article-models" / "training.txt").read_text().strip().splitlines()[-1:]
        if (ROOT / "build" / "article-models" / "training.txt").exists() else None,
        "results": results, "ratios": r, "targets": TARGETS, "balancer": balancer, "drift": drift,
        "ablation": {"method": f"{ABLATION_ROUNDS} rounds, interleaved, of every SERVING_TUNING setting: "
                               f"{ABLATION_STARTS} cold starts, 1 s warm-up, 1-row wrk {ablation_seconds} s, "
                               f"1-row gRPC {max(1, ablation_seconds // 2)} s after 1 s, "
                               f"10,000-row wrk {max(1, ablation_seconds // 2)} s, 8 feedback clients x "
                               f"{513 * ABLATION_FEEDBACK_ROUNDS} calls, in alternating order; "
                               "medians over the rounds",
                     "settings": ablation_results, "table": steps},
        "elapsed_s": time.time() - t_start,
    }
    Path(args.out).write_text(json.dumps(report, indent=2, default=float) + "\n")
    try:
        if results:
            plot(results, Path(args.out).with_suffix(".png"))
        if steps:
            plot_ablation(steps, BENCH / "ablation.png")
    except Exception as err:  # noqa: BLE001
        say(f"plot failed: {err}")
    print(summarise(results))
    if steps:
        print("\n  What each tuning step buys (serving/tuning; gain over the row before):\n")
        print(ablation_markdown(steps))
    print()
    for label, value, verdict in verdicts(r):
        print(f"  {label:<66} {value:>16}  {verdict}")
    single_path = get(balancer, "one container, published port", "req_per_s")
    for name in ("balancer, 1 replica x 2", "balancer, 3 replicas x 2"):
        through = get(balancer, name, "req_per_s")
        if through and single_path:
            share = through / single_path
            print(f"  {'1-row req/s, ' + name + ' / one container >= 0.8':<66} {share:>15.2f}x  "
                  f"{'met' if share >= 0.8 else 'NOT met'}")
    on, off = get(drift, "drift on", "req_per_s"), get(drift, "drift off", "req_per_s")
    if on and off:
        print(f"  {'1-row req/s, drift monitor on / off >= 0.95':<66} {on / off:>15.2f}x  "
              f"{'met' if on / off >= 0.95 else 'NOT met'}")
    art = get(results, "article", "feedback", "article_confusion_check")
    if art:
        print("\n  article replay, 513 feedback calls, last response: "
              + ", ".join(f"{k} {v}" for k, v in art["reported"].items())
              + f"\n    -> confusion matrices of 513 rows with these ratios: {art['confusion_matrices_matching']}"
              + f" ({'the article' + chr(39) + 's TP 303 FP 15 TN 172 FN 23' if art['ok'] else 'NOT the article' + chr(39) + 's'})")
    print(f"\n  {report['elapsed_s']:.0f} s; load average before {load_before[0]:.2f}, after "
          f"{report['machine']['loadavg_after'][0]:.2f} (shared machine); wrote {args.out} and "
          f"{Path(args.out).with_suffix('.png')}")
    return 0 if all("error" not in v for v in [*results.values(), *ablation_results.values()]) else 1


if __name__ == "__main__":
    sys.exit(main())
