"""Monitoring: Prometheus config, recording rules and alerts (promtool unit tests), the Grafana
dashboard and provisioning, and, against a served model, the rules' values after a real replay.

The tests marked `container` need the model on :9000/:6000 (make serve); they start Prometheus
through monitoring/monitor.sh (and stop it again if they started it).
"""
import json
import shutil
import subprocess
import time

import pytest
import yaml

from kit import REPO_ROOT
from kit.client import ModelClient
from kit.monitoring import MoreRowsThanExported, Prometheus, ensure_prometheus, stop_prometheus, wait_for_targets
from kit.replay import replay_one_by_one
from kit.training import load_test_set
from tests import CURRENT, served_with

MONITORING = REPO_ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "docker-model.json"
RECORDED = ["model:accuracy:ratio", "model:precision:ratio", "model:recall:ratio", "model:f1:ratio"]
ALERTS = {"ModelAccuracyLow", "ModelFeedbackStopped", "ModelTargetDown", "ModelPredictionErrors", "ModelInputDrift",
          "FeedbackLogUnwritable",
          "ModelPredictionSlow"}


def tool(name):
    """Path of a Prometheus tool; installs Debian's packages through the project's script if needed."""
    if shutil.which(name) is None:
        subprocess.run(["bash", str(REPO_ROOT / "monitoring" / "monitor.sh"), "install"], check=True)
    return shutil.which(name)


def run(*args):
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def dashboard_exprs():
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


# --- offline: files and promtool --------------------------------------------------------------

def test_promtool_unit_tests_pass():
    out = run(tool("promtool"), "test", "rules", *sorted(str(p) for p in (MONITORING / "tests").glob("*.yml")))
    assert "FAILED" not in out


def test_rules_and_config_are_valid():
    promtool = tool("promtool")
    run(promtool, "check", "rules", *sorted(str(p) for p in (MONITORING / "rules").glob("*.yml")))
    run(promtool, "check", "config", str(MONITORING / "prometheus.yml"))


def test_every_rule_and_alert_is_unit_tested():
    rules = [r for f in (MONITORING / "rules").glob("*.yml") for g in yaml.safe_load(f.read_text())["groups"]
             for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert set(RECORDED) <= recorded and alerts == ALERTS
    tests = [t for f in (MONITORING / "tests").glob("*.yml") for t in yaml.safe_load(f.read_text())["tests"]]
    checked = {c["expr"] for t in tests for c in t.get("promql_expr_test", [])}
    assert recorded <= checked, f"recording rules without a unit test: {recorded - checked}"
    fired = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if not c["exp_alerts"]}
    assert fired == ALERTS and quiet == ALERTS, "each alert needs a firing and a not-firing case"


def test_blackbox_config_is_valid():
    run(tool("prometheus-blackbox-exporter"), "--config.check", f"--config.file={MONITORING / 'blackbox.yml'}")


def test_dashboard_parses_and_its_queries_are_valid_promql(tmp_path):
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "docker-model" and board["panels"]
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus-kit"
    # promtool parses every expression as a recording rule would be
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr{i}", "expr": e} for i, e in enumerate(dashboard_exprs())]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    run(tool("promtool"), "check", "rules", str(path))


def test_grafana_provisioning_is_well_formed():
    grafana = MONITORING / "grafana"
    datasources = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["uid"] == "prometheus-kit" and source["type"] == "prometheus"
    assert source["url"] == "http://127.0.0.1:9090"
    providers = yaml.safe_load((grafana / "provisioning" / "dashboards" / "docker-model.yml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((MONITORING / "compose.grafana.yml").read_text())
    service = compose["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in service["volumes"] if v.startswith("./"))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert (MONITORING / "grafana" / "dashboards" / "docker-model.json").exists()
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


class PrometheusWithLeftoverSeries(Prometheus):
    """A Prometheus (no server behind it) that counts `extra` rows more than the servers export
    for its first `queries` queries, as it does after a restart while the series of a server that
    went away unmarked are within the lookback."""

    def __init__(self, exported, extra, queries):
        super().__init__(url="http://127.0.0.1:9")
        self.exported, self.extra, self.queries_with_extra, self.queries = exported, extra, queries, 0

    def exported_rows(self, instance=None):
        return self.exported

    def value(self, expr, at=None):
        self.queries += 1
        return float(self.exported + (self.extra if self.queries <= self.queries_with_extra else 0))


def test_caught_up_waits_for_the_series_of_a_server_gone_unmarked_to_leave_the_lookback():
    prom = PrometheusWithLeftoverSeries(exported=1539, extra=9428, queries=3)
    assert prom.caught_up(timeout=20) == 1539
    assert prom.queries == 4


def test_caught_up_returns_at_once_when_the_servers_export_no_row_and_prometheus_agrees():
    prom = PrometheusWithLeftoverSeries(exported=0, extra=0, queries=0)
    assert prom.caught_up(timeout=20) == 0
    assert prom.queries == 1


def test_caught_up_says_so_when_more_rows_keep_coming_than_the_servers_export():
    prom = PrometheusWithLeftoverSeries(exported=1539, extra=513, queries=10 ** 6)
    with pytest.raises(MoreRowsThanExported, match="513 feedback rows more than expected"):
        prom.caught_up(timeout=2)


# --- against the served model and a running Prometheus -----------------------------------------

@pytest.fixture(scope="module")
def prometheus():
    if not ModelClient().is_up():
        pytest.skip("no model answers on :9000 (make serve)")
    tool("prometheus")
    prom = Prometheus()
    started = not prom.is_ready()
    ensure_prometheus(prom)
    wait_for_targets(prom)
    yield prom
    if started:
        stop_prometheus()


@pytest.fixture(scope="module")
def replay(prometheus):
    """One replay of the 513 test rows, one feedback call per row: (start, end, before, after)."""
    total = prometheus.caught_up()
    t0 = time.time()
    before = prometheus.outcomes(t0)
    accuracy_before = prometheus.value("model:accuracy:ratio", t0)
    X, y = load_test_set()
    ModelClient().predict(X)  # the rows' predictions, in one call: a drift test for the dashboard's drift panels
    replay_one_by_one(ModelClient(), X, y, progress=False)
    prometheus.wait_for_rows(int(total) + len(y))
    t1 = time.time()
    after = prometheus.outcomes(t1)
    accuracy_after = prometheus.value("model:accuracy:ratio", t1)
    return {"start": t0, "end": t1, "before": before, "after": after, "rows_before": sum(before.values()),
            "accuracy_before": accuracy_before, "accuracy_after": accuracy_after}


@pytest.mark.container
def test_rules_are_loaded_and_evaluate_without_error(prometheus):
    rules = [r for g in prometheus._get("rules")["groups"] for r in g["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} == ALERTS
    assert set(RECORDED) <= {r["name"] for r in rules if r["type"] == "recording"}
    assert [r["name"] for r in rules if r["health"] == "err"] == []


@pytest.mark.container
def test_replay_adds_the_exact_confusion_matrix(replay):
    delta = {o: replay["after"][o] - replay["before"][o] for o in CURRENT}
    assert delta == CURRENT


@pytest.mark.container
def test_accuracy_rule_over_the_replay_is_475_of_513(replay):
    # model:accuracy:ratio is cumulative: correct rows = ratio x rows, before and after
    n0, n1 = replay["rows_before"], replay["rows_before"] + 513
    correct0 = (replay["accuracy_before"] or 0.0) * n0
    correct1 = replay["accuracy_after"] * n1
    assert (correct1 - correct0) / 513 == pytest.approx(475 / 513, abs=1e-9)


@pytest.mark.container
def test_every_dashboard_query_returns_data(prometheus, replay):
    # A rule first recorded after the replay appears in a range query once a step of the range
    # falls after its first evaluation: allow a few evaluation rounds (every 2 s).
    deadline = time.monotonic() + 15
    while True:
        empty = [e for e in dashboard_exprs()
                 if not prometheus.query_range(e, replay["start"] - 10, time.time(), step=2)]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert empty == [], f"dashboard queries without data after a replay: {empty}"


@pytest.mark.container
def test_no_alert_fires_on_a_healthy_replay(prometheus, replay):
    firing = {a["labels"]["alertname"] for a in prometheus.alerts() if a["state"] == "firing"}
    assert not firing & {"ModelAccuracyLow", "ModelTargetDown", "ModelPredictionErrors", "ModelInputDrift",
                        "FeedbackLogUnwritable"}


@pytest.mark.container
@pytest.mark.skipif(not served_with("metrics_exposition"),
                    reason="stock seldon-core repeats HELP and TYPE for every series")
def test_the_metrics_page_is_prometheus_text_that_promtool_accepts(client, test_set):
    import requests

    from kit.client import METRICS_URL, parse_samples

    X, y = test_set
    client.feedback(X[:2], y[:2])  # counters and gauges with values in them
    page = requests.get(METRICS_URL, timeout=5).text
    done = subprocess.run([tool("promtool"), "check", "metrics"], input=page, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    families = [line.split()[2] for line in page.splitlines() if line.startswith("# TYPE ")]
    assert len(families) == len(set(families)) and "feedback_outcomes_total" in families
    series = [(name, tuple(sorted(labels.items()))) for name, labels, _ in parse_samples(page)]
    assert len(series) == len(set(series))
