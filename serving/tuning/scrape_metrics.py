"""Figures read when Prometheus scrapes, on seldon-core's metrics page (:6000/metrics): the drift
monitor's (serving/drift.py, from its shared memory) and whether the feedback log can be written
(serving/metrics.py). One series per container, always current, at no cost to requests.

A model's own `metrics()` could report them too, but seldon-core copies those into every response's
`meta.metrics` and keeps them per worker: 60 drift gauges in each prediction's answer, and a worker
that stops receiving requests would go on showing an old test or an old disk.
"""


def install():
    from seldon_core.metrics import SeldonMetrics

    from serving import scraped

    original_collect = SeldonMetrics.collect

    def collect(self):
        yield from original_collect(self)
        for source in (scraped.drift, scraped.figures):
            if source is not None:
                yield from source.families()

    SeldonMetrics.collect = collect
