"""seldon-core's metrics page (:6000/metrics) as valid Prometheus text: one HELP and one TYPE line
per metric family, with all its series under them.

seldon-core 1.17.1's `SeldonMetrics.collect` yields a family of its own for every series, so each
series repeats its family's HELP and TYPE lines. Prometheus's scraper accepts that; `promtool check
metrics` and stricter parsers of the format stop at the second TYPE line. Here the series of one
name and type are yielded as one family: the same series, the same values, under the HELP text
serving/metrics.py gives (seldon-core gives none).
"""


def merged(families, help_texts):
    """Families of the same name and type merged into the first, in the order first seen."""
    by_name = {}
    for family in families:
        first = by_name.setdefault((family.name, family.type), family)
        if first is family:
            family.documentation = family.documentation or help_texts.get(family.name, "")
        else:
            first.samples.extend(family.samples)
    return list(by_name.values())


def install():
    from seldon_core.metrics import SeldonMetrics

    from serving.metrics import HELP

    original_collect = SeldonMetrics.collect

    def collect(self):
        return merged(original_collect(self), HELP)

    SeldonMetrics.collect = collect
