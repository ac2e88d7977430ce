"""Every adjustment the kit makes to other libraries' behaviour: for speed and start-up time, and four
for what clients read: the metrics page's format (metrics_exposition), the figures read when it is
scraped (scrape_metrics: drift, the feedback log's disk), gRPC's status codes (grpc_status), a puid in every prediction's answer (prediction_ids).

None of it changes what is served or counted, and none of it happens on import: `apply()`, called once as the
server starts (serving/__main__.py), installs the steps SERVING_TUNING names, after checking that
the versions each was written for are the ones installed (a step leaning on another library's
internals must not guess). `make bench` measures what each step buys (bench/README.md).

    SERVING_TUNING=on                       every step (the default)
    SERVING_TUNING=off                      none: stock seldon-core
    SERVING_TUNING=metrics_store,fast_start the steps named
"""
import os
import re
import sys
from importlib import import_module

# name: (the versions it was written for, what it does). Applied in this order, whatever the order named.
STEPS = {
    "fast_start": ({"seldon-core": "1.17.1", "gunicorn": "20.1.0"},
                   "imports scikit-learn in a second thread while seldon-core is imported, with the "
                   "collector off; pkg_resources only if used"),
    "metrics_store": ({"seldon-core": "1.17.1"},
                      "seldon-core's metrics store skips updates that change nothing, and round trips"),
    "rest_shortcut": ({"seldon-core": "1.17.1", "flask": "2.2.5"},
                      "REST predictions and feedback answered from their checked JSON: no numpy or "
                      "protobuf round trip"),
    "flask_responses": ({"flask": "2.2.5", "flask-cors": "3.0.10"},
                        "one JSON encoder for every response; CORS work only for cross-origin requests"),
    "body_reads": ({"gunicorn": "20.1.0"},
                   "a request's body read in the pieces it arrives in, not 1 KB at a time"),
    "keepalive_worker": ({"gunicorn": "20.1.0", "seldon-core": "1.17.1"},
                         "one-thread workers answer their keep-alive connections in turn"),
    "whole_responses": ({"gunicorn": "20.1.0"},
                        "a REST response's headers and body leave in one write: a replica killed "
                        "mid-answer never leaves the balancer half a response to fail over"),
    "scrape_metrics": ({"seldon-core": "1.17.1"},
                       "the drift monitor's figures and whether the feedback log can be written, on the "
                       "metrics page, read when scraped"),
    "metrics_exposition": ({"seldon-core": "1.17.1"},
                           "the metrics page has one HELP and TYPE line per family (promtool check metrics)"),
    "prediction_ids": ({"seldon-core": "1.17.1"},
                       "every prediction answered with a meta.puid, as Seldon's executor gives one"),
    "grpc_status": ({"seldon-core": "1.17.1"},
                    "a request the model refuses ends with INVALID_ARGUMENT over gRPC, not UNKNOWN"),
    "grpc_aio": ({"seldon-core": "1.17.1", "grpcio": "1.85.3", "grpcio-reflection": "1.48.2"},
                 "gRPC served by grpcio's asyncio server, each call in one thread: no hand-off to a pool thread"),
    "grpc_shortcut": ({"seldon-core": "1.17.1", "protobuf": "3.20.3"},
                      "gRPC predictions of plain numbers read from and answered in protobuf's wire format: "
                      "no pure-Python protobuf messages"),
}
ABLATION_ORDER = ["metrics_store", "rest_shortcut", "flask_responses", "body_reads", "keepalive_worker", "fast_start",
                  "whole_responses", "scrape_metrics", "metrics_exposition", "grpc_status",
                  "prediction_ids", "grpc_aio", "grpc_shortcut"]


class TuningRefused(SystemExit):
    """A step cannot be applied here: the server does not start, and says why."""

    def __init__(self, message):
        super().__init__(f"serving.tuning: {message}")


def steps_named(setting):
    setting = (setting or "on").strip().lower()
    if setting == "on":
        return list(STEPS)
    if setting == "off":
        return []
    named = [s.strip() for s in setting.split(",") if s.strip()]
    unknown = [s for s in named if s not in STEPS]
    if unknown:
        raise TuningRefused(f"unknown step(s) {unknown} in SERVING_TUNING={setting!r}: "
                            f"use on, off, or some of {', '.join(STEPS)}")
    return [s for s in STEPS if s in named]


def _normalized(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def installed_versions():
    """{normalized distribution name: version} from the .dist-info folders on sys.path (cheaper at
    start-up than importlib.metadata)."""
    found = {}
    for folder in sys.path:
        try:
            entries = os.listdir(folder or ".")
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".dist-info"):
                name, _, version = entry[:-len(".dist-info")].partition("-")
                found.setdefault(_normalized(name), version)
    return found


def check_versions(steps, installed=None):
    installed = installed_versions() if installed is None else installed
    for step in steps:
        for package, version in STEPS[step][0].items():
            have = installed.get(_normalized(package))
            if have != version:
                raise TuningRefused(
                    f"the step {step} was written for {package} {version}, but this environment has "
                    f"{package} {have or 'not installed'}: check the step against that version and update "
                    f"serving/tuning, or start with SERVING_TUNING=off (or without {step})")


def apply(setting=None):
    """Installs the steps SERVING_TUNING names (or `setting`); returns their names."""
    steps = steps_named(os.environ.get("SERVING_TUNING", "on") if setting is None else setting)
    check_versions(steps)
    for step in steps:
        import_module(f"{__name__}.{step}").install()
    return steps
