"""A bounded gRPC load generator: one serialized request, sent over and over, unary calls.

    venvs/serving/bin/python bench/grpc_load.py --target HOST:PORT --method METHOD --request FILE \
        [--seconds 3] [--warmup 1] [--processes 2] [--concurrency 4] [--max-calls 500000] \
        [--timeout 10] [--expect PREDICTION] [--decode-python PYTHON] [--json]

With --json it prints one JSON line on stdout (anything else goes to stderr):
    {"calls", "req_per_s", "p50_us", "p99_us", "errors": {status code name: count}, "seconds",
     "capped", "check": {"ok", "detail"}, ...}
and exits 0 if the check passed, 1 if not (no successful call, or a wrong prediction).

Why it is built this way (ghz, the usual tool, cannot be installed here):
- --processes client processes (multiprocessing, spawned: grpc must not be forked once it runs),
  each with its own grpc.insecure_channel, so one process's GIL does not cap the rate;
- in each, --concurrency calls in flight: the process's main thread issues a call with the future API
  whenever one of --concurrency slots is free, and the call's done-callback records it and frees
  its slot (callbacks never issue calls: a call that fails at once would otherwise recurse);
- the request is the bytes of --request, sent with channel.unary_unary(method) and no serializer or
  deserializer, so no protobuf encoding or decoding is paid in the client during the run
  (bench/grpc_requests.py builds the bytes with each server's own protobuf classes);
- the processes start together (a barrier, after the imports), run --warmup seconds uncounted, then
  --seconds measured: a call is counted if it completes within the measured period; calls, p50_us,
  p99_us and req_per_s are of successful calls, failed ones are counted by status code in errors;
- it stops by itself: no call starts after the measured period, each call has a --timeout deadline,
  and no process issues more than its share of --max-calls (then "capped" is true and the rate is
  over the part of the period it ran);
- one successful response of the run is decoded, after the run, by `bench/grpc_requests.py decode`
  under --decode-python (the venv with that server's protobuf classes; by default venvs/serving's
  for seldon-core, venvs/mlserver's for MLServer's V2), and must hold one prediction, equal to
  --expect if given.
As a library: measure(target, method, request_bytes, ..., check=callable(response_bytes) -> (ok, detail)).
"""
import argparse
import array
import collections
import json
import math
import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from grpc_requests import METHODS

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROTOCOL_OF_METHOD = {method: protocol for protocol, method in METHODS.items()}
DECODE_PYTHON = {
    "seldon": ROOT / "venvs" / "serving" / "bin" / "python",
    "v2": ROOT / "venvs" / "mlserver" / "bin" / "python",
}
START_TIMEOUT_S = 60  # spawning and importing grpc on a busy 2-core machine


def client_process(target, method, request, warmup, seconds, concurrency, max_calls, call_timeout,
                   start_barrier, results):
    channel = grpc.insecure_channel(target)
    call = channel.unary_unary(method)  # no serializer: bytes in, bytes out
    free_slots = threading.Semaphore(concurrency)
    lock = threading.Lock()
    latencies_us = array.array("q")
    errors = collections.Counter()
    last_counted_at = [0.0]
    sample_response = []

    start_barrier.wait(START_TIMEOUT_S)
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + seconds

    def done(future, started):
        finished = time.perf_counter()
        error = future.exception()
        with lock:
            if measure_from <= finished <= stop_at:
                last_counted_at[0] = finished
                if error is None:
                    latencies_us.append(round((finished - started) * 1e6))
                else:
                    errors[error.code().name if isinstance(error, grpc.Call) else type(error).__name__] += 1
            if error is None and not sample_response:
                sample_response.append(future.result())
        free_slots.release()

    issued = 0
    while issued < max_calls:
        free_slots.acquire()
        started = time.perf_counter()
        if started >= stop_at:
            free_slots.release()
            break
        future = call.future(request, timeout=call_timeout)
        future.add_done_callback(lambda f, started=started: done(f, started))
        issued += 1
    capped = issued >= max_calls
    for _ in range(concurrency):  # the calls still in flight
        free_slots.acquire(timeout=call_timeout + 1)
    channel.close()
    with lock:
        measured_until = min(stop_at, last_counted_at[0]) if capped else stop_at
        results.put({
            "latencies_us": latencies_us.tobytes(),
            "errors": dict(errors),
            "measured_s": max(0.0, measured_until - measure_from),
            "capped": capped,
            "sample_response": sample_response[0] if sample_response else None,
        })


def percentile(sorted_values, fraction):
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def measure(target, method, request, seconds=3.0, warmup=1.0, processes=2, concurrency=4,
            max_calls=500_000, call_timeout=10.0, check=None):
    """check: None or callable(response_bytes) -> (ok, detail), run on one successful response."""
    context = multiprocessing.get_context("spawn")
    start_barrier = context.Barrier(processes)
    results = context.Queue()
    per_process_cap = max(1, max_calls // processes)
    workers = [context.Process(target=client_process, daemon=True,
                               args=(target, method, request, warmup, seconds, concurrency, per_process_cap,
                                     call_timeout, start_barrier, results))
               for _ in range(processes)]
    for w in workers:
        w.start()
    reports = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S + warmup + seconds + call_timeout + 5
        for _ in workers:  # before join: a child cannot exit until its queued report is read
            reports.append(results.get(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for w in workers:
            w.join(5)
            if w.is_alive():
                w.terminate()
                w.join()
    latencies = sorted(v for r in reports for v in array.array("q", r["latencies_us"]))
    errors = collections.Counter()
    for r in reports:
        errors.update(r["errors"])
    # The processes ran side by side: their rates add up.
    req_per_s = sum(len(array.array("q", r["latencies_us"])) / r["measured_s"] for r in reports if r["measured_s"] > 0)
    sample = next((r["sample_response"] for r in reports if r["sample_response"] is not None), None)
    if sample is None:
        verdict = {"ok": False, "detail": "no successful call"}
    elif check is None:
        verdict = {"ok": True, "detail": f"not checked ({len(sample)} bytes)"}
    else:
        ok, detail = check(sample)
        verdict = {"ok": bool(ok), "detail": detail}
    return {
        "target": target, "method": method, "processes": processes, "concurrency": concurrency,
        "warmup_s": warmup, "seconds": round(max((r["measured_s"] for r in reports), default=0.0), 3),
        "calls": len(latencies), "req_per_s": round(req_per_s, 1),
        "p50_us": percentile(latencies, 0.50), "p99_us": percentile(latencies, 0.99),
        "errors": dict(errors), "capped": any(r["capped"] for r in reports), "check": verdict,
    }


def one_prediction_check(protocol, decode_python, expected=None):
    """A check that decodes a response with `decode_python` (the venv with the server's protobuf
    classes) and wants exactly one prediction, equal to `expected` if given."""
    def check(response_bytes):
        decoded = subprocess.run([str(decode_python), str(BENCH / "grpc_requests.py"), "decode", protocol],
                                 input=response_bytes, capture_output=True, timeout=60)
        if decoded.returncode != 0:
            return False, f"could not decode the response: {decoded.stderr.decode(errors='replace')[-300:]}"
        predictions = json.loads(decoded.stdout)
        if len(predictions) != 1:
            return False, f"{len(predictions)} predictions for one row: {predictions[:5]}"
        if expected is not None and float(predictions[0]) != float(expected):
            return False, f"predicted {predictions[0]}, expected {expected}"
        return True, f"predictions {predictions}"
    return check


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="HOST:PORT")
    ap.add_argument("--method", required=True, help=f"the full method name: {', '.join(PROTOCOL_OF_METHOD)}")
    ap.add_argument("--request", required=True, help="a file holding the serialized request")
    ap.add_argument("--seconds", type=float, default=3.0, help="the measured period")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of load before it, not counted")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4, help="calls in flight per process")
    ap.add_argument("--max-calls", type=int, default=500_000, help="calls issued at most, all processes together")
    ap.add_argument("--timeout", type=float, default=10.0, help="each call's deadline, seconds")
    ap.add_argument("--expect", help="the prediction the response must hold (e.g. 1)")
    ap.add_argument("--decode-python", help="the python that decodes a response "
                                            "(default: venvs/serving's for seldon-core, venvs/mlserver's for V2)")
    ap.add_argument("--json", action="store_true", help="print one JSON line on stdout")
    args = ap.parse_args()
    request = Path(args.request).read_bytes()
    protocol = PROTOCOL_OF_METHOD.get(args.method)
    check = None
    if protocol:
        check = one_prediction_check(protocol, args.decode_python or DECODE_PYTHON[protocol], args.expect)
    elif args.expect is not None:
        ap.error(f"--expect: no decoder for {args.method}")
    result = measure(args.target, args.method, request, args.seconds, args.warmup, args.processes,
                     args.concurrency, args.max_calls, args.timeout, check)
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        print(f"{result['calls']} calls in {result['seconds']} s: {result['req_per_s']} req/s, "
              f"p50 {result['p50_us']} us, p99 {result['p99_us']} us, errors {result['errors']}, "
              f"check {result['check']}")
    return 0 if result["check"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
