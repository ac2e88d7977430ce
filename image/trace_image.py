"""What the serving image really loads: runs IMAGE with Python's import log switched on
(PYTHONPROFILEIMPORTTIME, inherited by every process the server starts), drives every path the kit
serves (REST and gRPC predictions and feedback, health, metadata, metrics, each bad request of
tests/bad_requests.json, a worker killed and replaced, the HEALTHCHECK and the `docker exec` commands
the tests and notebooks use, a graceful stop), and writes the union over all processes of the modules
imported and of the shared objects mapped (/proc/<pid>/maps) as JSON.

    venvs/serving/bin/python image/trace_image.py IMAGE OUT.json [PORT_BASE]

It is how image/prune_venv.py's list was chosen; run it on an unpruned and a pruned image and
compare the two files (`--compare A.json B.json` prints what A loads that B does not).
Runs in venvs/serving (seldon-core's protobuf classes and grpc for the gRPC calls).
"""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
ROW = [13.4, 20.52, 88.64, 556.7, 0.1106, 0.1469, 0.1445, 0.08172, 0.2116, 0.07325, 0.3906, 0.9306, 3.093,
       33.67, 0.005414, 0.02265, 0.03452, 0.01334, 0.01705, 0.004005, 16.41, 29.66, 113.3, 844.4, 0.1574,
       0.3856, 0.5106, 0.2051, 0.3585, 0.1109]
IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+\d+ \|\s?( *)([\w.]+)\s*$")


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout


def maps(name):
    out = docker("exec", name, "sh", "-c", "cat /proc/[0-9]*/maps 2>/dev/null", check=False)
    return {line.split()[-1] for line in out.splitlines() if len(line.split()) >= 6 and ".so" in line}


def bad_requests(url):
    corpus = json.loads((ROOT / "tests" / "bad_requests.json").read_text())["requests"]
    failures = []
    for case in corpus:
        if "body_hex" in case:
            body = bytes.fromhex(case["body_hex"].replace(" ", ""))
        elif "body_bytes" in case:
            body = b'{"data": {"ndarray": [[1]]}, "meta": {"pad": "' + b"x" * case["body_bytes"] + b'"}}'
        else:
            body = case["body"].encode()
        r = requests.post(url + case["path"], data=body, headers={"Content-Type": case["content_type"]})
        expected = case.get("status")
        ok = 400 <= r.status_code < 500 and (expected is None or r.status_code == expected) \
            and case["message_contains"] in r.text
        if not ok:
            failures.append((case["name"], r.status_code, r.text[:200]))
    return len(corpus), failures


def grpc_calls(port):
    import grpc
    from google.protobuf import empty_pb2, json_format
    from seldon_core.proto import prediction_pb2, prediction_pb2_grpc

    def message(rows):
        return json_format.ParseDict({"data": {"ndarray": rows}}, prediction_pb2.SeldonMessage())

    results = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        model = prediction_pb2_grpc.ModelStub(channel)
        results["predict"] = str(model.Predict(message([ROW, ROW]), timeout=10).data.ndarray)
        feedback = prediction_pb2.Feedback(request=message([ROW]), truth=message([1]))
        results["feedback"] = str(model.SendFeedback(feedback, timeout=10).status)
        try:
            model.Predict(message([ROW[:29]]), timeout=10)
            results["bad predict"] = "answered"
        except grpc.RpcError as err:
            results["bad predict"] = f"{err.code().name}: {err.details()[:80]}"
        results["seldon predict"] = str(prediction_pb2_grpc.SeldonStub(channel).Predict(message([ROW]), timeout=10).data.ndarray)
        try:
            results["model metadata"] = str(model.Metadata(empty_pb2.Empty(), timeout=10))[:80]
        except grpc.RpcError as err:
            results["model metadata"] = f"{err.code().name}"
    return results


def trace(image, out, port_base=19100):
    name = f"trace-{port_base}"
    rest, grpc_port, metrics = port_base, port_base + 5, port_base + 6
    docker("rm", "-f", name, check=False)
    docker("volume", "rm", "-f", name, check=False)
    docker("run", "-d", "--init", "--name", name, "-e", "PYTHONPROFILEIMPORTTIME=1", "--read-only",
           "--tmpfs", "/tmp", "-v", f"{name}:/var/lib/docker-model", "--cap-drop", "ALL",
           "--security-opt", "no-new-privileges", "-p", f"127.0.0.1:{rest}:9000",
           "-p", f"127.0.0.1:{grpc_port}:5000", "-p", f"127.0.0.1:{metrics}:6000", image)
    url = f"http://127.0.0.1:{rest}"
    report = {"image": image, "checks": {}}
    exec_log = ""
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/health/status", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(docker("logs", name, check=False) + "\nnot healthy in 60 s")
            time.sleep(0.3)
        c = report["checks"]
        r = requests.post(url + "/api/v1.0/predictions", json={"data": {"ndarray": [ROW]}})
        c["predict"] = (r.status_code, r.json()["data"])
        r = requests.post(url + "/api/v1.0/predictions",
                          json={"data": {"tensor": {"shape": [2, 30], "values": ROW + ROW}}})
        c["predict tensor"] = (r.status_code, r.json()["data"])
        r = requests.post(url + "/api/v1.0/predictions", json={"data": {"ndarray": [ROW] * 2000}})
        c["predict 2000 rows"] = (r.status_code, len(r.json()["data"]["ndarray"]))
        time.sleep(1)  # the drift test those rows started runs in a thread of its own (serving/drift.py)
        r = requests.post(url + "/predict", data={"json": json.dumps({"data": {"ndarray": [ROW]}})})
        c["predict form"] = (r.status_code, r.json()["data"])
        r = requests.post(url + "/api/v1.0/feedback", json={"request": {"data": {"ndarray": [ROW]}},
                                                             "truth": {"data": {"ndarray": [1]}}})
        c["feedback"] = (r.status_code, r.text[:120])
        r = requests.post(url + "/api/v1.0/feedback", json={"request": {"data": {"ndarray": [ROW] * 513}},
                                                             "truth": {"data": {"ndarray": [1] * 513}},
                                                             "reward": 1})
        c["feedback 513 rows"] = r.status_code
        for path in ("/health/ping", "/health/status", "/metadata", "/seldon.json", "/no-such-path"):
            c["GET " + path] = requests.get(url + path).status_code
        c["GET /api/v1.0/predictions"] = requests.get(url + "/api/v1.0/predictions").status_code
        body = requests.get(f"http://127.0.0.1:{metrics}/metrics").text
        c["metrics"] = [line for line in body.splitlines() if line.startswith(("accuracy", "feedback_outcomes_total", "seldon_metric_drift_is_drift"))][:4]
        c["metrics 404"] = requests.get(f"http://127.0.0.1:{metrics}/other").status_code
        n, failures = bad_requests(url)
        c["bad requests"] = f"{n - len(failures)}/{n} answered 4xx as expected"
        c["bad request failures"] = failures
        c["grpc"] = grpc_calls(grpc_port)
        # What the HEALTHCHECK, the tests and the notebooks run inside the container.
        done = subprocess.run(["docker", "exec", name, "python3", "-c", "import urllib.request; "
                               "urllib.request.urlopen('http://127.0.0.1:9000/health/status', timeout=2)"],
                              capture_output=True, text=True)
        c["healthcheck"] = done.returncode
        exec_log = done.stderr
        done = subprocess.run(["docker", "exec", name, "python3", "-c", "import json, os, sys; "
                               "sys.path.insert(0, '/app'); from serving.feedback_log import FeedbackLog; "
                               "print(json.dumps(FeedbackLog(os.environ['FEEDBACK_DB']).rows()))"],
                              capture_output=True, text=True, check=True)
        c["feedback log dump"] = len(json.loads(done.stdout))
        exec_log += done.stderr
        procs = docker("exec", name, "sh", "-c",
                       "for p in /proc/[0-9]*; do echo ${p#/proc/} $(tr '\\0' ' ' < $p/cmdline); done")
        c["processes"] = procs.strip().splitlines()
        shared = maps(name)
        # A worker killed: gunicorn forks a new one, which loads the model class's per-worker state.
        workers = [line.split()[0] for line in procs.splitlines() if "-m serving" in line]
        docker("exec", name, "sh", "-c", f"kill -9 {max(workers, key=int)}")
        time.sleep(3)
        for _ in range(8):
            r = requests.post(url + "/api/v1.0/feedback", json={"request": {"data": {"ndarray": [ROW]}},
                                                                 "truth": {"data": {"ndarray": [0]}}})
        c["after worker kill"] = r.status_code
        shared |= maps(name)
        start = time.monotonic()
        docker("stop", "-t", "20", name)
        c["graceful stop s"] = round(time.monotonic() - start, 1)
        c["exit code"] = docker("inspect", "-f", "{{.State.ExitCode}}", name).strip()
    finally:
        log = docker("logs", name, check=False) + subprocess.run(
            ["docker", "logs", name], capture_output=True, text=True).stderr
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", "-f", name, check=False)
    modules = set()
    for line in (log + exec_log).splitlines():
        m = IMPORT_LINE.search(line)
        if m:
            modules.add(m.group(2))
    other = [line for line in log.splitlines() if "import time:" not in line]
    report["tracebacks"] = ["\n".join(other[i:i + 25]) for i, line in enumerate(other) if "Traceback" in line]
    report["modules"] = sorted(modules)
    report["shared_objects"] = sorted(shared)
    Path(out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report["checks"], indent=1))
    print(f"{len(modules)} modules, {len(shared)} shared objects; "
          f"{len(report['tracebacks'])} tracebacks in the log", file=sys.stderr)


def compare(a, b):
    a, b = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    for key in ("modules", "shared_objects"):
        missing = sorted(set(a[key]) - set(b[key]))
        print(f"{key} in {a['image']} but not in {b['image']}: {len(missing)}")
        for item in missing:
            print("  ", item)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    trace(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 19100)
