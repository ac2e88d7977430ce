"""Starts the model server, the image's command:

    python3 -m serving DockerModel --service-type MODEL

It is the article's `seldon-core-microservice DockerModel --service-type MODEL` (the arguments are
seldon-core-microservice's), with the tuning SERVING_TUNING names applied first (serving/tuning;
`off`: stock seldon-core) and seldon-core's helper processes ended when the server stops.
"""
import atexit
import multiprocessing
import os
import sys

from serving import tuning


def _stop_helper_processes(main_pid):
    """On SIGTERM gunicorn drains its workers and returns, but seldon-core's main process then waits
    forever for its gRPC server process: end the helper processes so that the server exits.
    Forked workers inherit this exit handler and must not act on it."""
    if os.getpid() == main_pid:
        for child in multiprocessing.active_children():
            child.terminate()


def main(args):
    steps = tuning.apply()
    print(f"serving: tuning {', '.join(steps) if steps else 'off (stock seldon-core)'}", file=sys.stderr, flush=True)
    from seldon_core.microservice import main as seldon_main

    # After that import, which registers multiprocessing's own exit handler: exit handlers run last
    # registered first, and multiprocessing's waits for the helper processes this one ends.
    atexit.register(_stop_helper_processes, os.getpid())

    sys.argv = ["seldon-core-microservice", *args]
    return seldon_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
