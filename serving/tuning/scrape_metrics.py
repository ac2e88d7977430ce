"""The drift monitor's figures (serving/drift.py) on seldon-core's metrics page (:6000/metrics), read
from the monitor's shared memory when Prometheus scrapes: one series per container, always the last
test's, at no cost to requests.

A model's own `metrics()` could report them too, but seldon-core copies those into every response's
`meta.metrics` and keeps them per worker: 60 gauges in each prediction's answer, and a worker that
stops receiving requests would go on showing an old test.
"""


def install():
    from seldon_core.metrics import SeldonMetrics

    from serving import drift

    original_collect = SeldonMetrics.collect

    def collect(self):
        yield from original_collect(self)
        if drift.served is not None:
            yield from drift.served.families()

    SeldonMetrics.collect = collect
