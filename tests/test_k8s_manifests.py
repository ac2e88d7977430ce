"""The Kubernetes manifests (deploy/k8s), validated offline: no cluster and no server needed.

- built-in kinds: `kubernetes-validate --strict` against the schemas it bundles, for K8S_VERSIONS;
- custom resources: against the openAPIV3Schema of their CRDs (deploy/k8s/crds, copied from
  seldon-core v1.17.1 and prometheus-operator v0.93.0), unknown fields refused as
  `kubectl apply --validate=strict` (kubectl's default) has the API server refuse them;
- what Seldon's admission webhook refuses although its schema allows it (traffic, shadows);
- the rules inside the PrometheusRule: generated from monitoring/rules, and accepted by promtool;
- and a manifest a user would get wrong is refused by each of those checks.
"""
import copy
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from kit import REPO_ROOT
from tests.test_monitoring import tool  # promtool, installed from Debian's prometheus if missing

K8S = REPO_ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
# The oldest minor still patched by most managed offerings when this was written, and a recent one:
# a field removed or added between them fails one of the two.
K8S_VERSIONS = ["1.27.0", "1.33.0"]
KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


def documents(path):
    return [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc]


def all_documents():
    return [doc for path in MANIFESTS for doc in documents(path)]


def named(kind, name=None):
    return [d for d in all_documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])]


# --- custom resources against their CRDs ----------------------------------------------------------

def closed(schema):
    """The schema with unknown fields refused wherever the CRD does not keep them explicitly.

    A structural CRD schema lists an object's fields; the API server drops (or, with strict field
    validation, refuses) the others. JSON Schema allows them unless additionalProperties says not.
    """
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def crd_validators():
    """(apiVersion, kind) -> a validator of that custom resource, for each CRD in deploy/k8s/crds."""
    validators = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        (crd,) = documents(path)
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            # openAPIV3Schema is OpenAPI 3.0's dialect of JSON Schema draft 4 (x-kubernetes-* are ignored).
            schema = closed(version["schema"]["openAPIV3Schema"])
            validators[api_version, crd["spec"]["names"]["kind"]] = jsonschema.Draft4Validator(schema)
    return validators


CRD_VALIDATORS = crd_validators()
CUSTOM_KINDS = {kind for _, kind in CRD_VALIDATORS}


def crd_errors(resource):
    validator = CRD_VALIDATORS[resource["apiVersion"], resource["kind"]]
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(resource)]


# --- what Seldon's webhook enforces beyond the schema -----------------------------------------------

def seldon_webhook_errors(sdep):
    """The traffic and shadow rules of seldon-core v1.17.1's admission webhook (checkTraffic and
    validateShadow in operator/apis/machinelearning.seldon.io/v1/seldondeployment_webhook.go)."""
    predictors = sdep["spec"]["predictors"]
    shadows = [p for p in predictors if p.get("shadow")]
    served = [p for p in predictors if not p.get("shadow")]
    traffic = sum(p.get("traffic", 0) for p in served)
    errors = []
    if len(shadows) > 1:
        errors.append(f"multiple shadows are not allowed: {[p['name'] for p in shadows]}")
    errors += [f"shadow {p['name']}: traffic {p.get('traffic', 0)} is not within [0, 100]"
               for p in shadows if not 0 <= p.get("traffic", 0) <= 100]
    if len(served) > 1 and traffic != 100:
        errors.append(f"traffic must sum to 100 over several predictors, not {traffic}")
    if len(predictors) == 1 and 0 < traffic < 100:
        errors.append(f"the traffic of a single predictor must be 100 when set, not {traffic}")
    if len(predictors) == 1 and shadows:
        errors.append("a shadow cannot be the only predictor")
    return errors


# --- built-in kinds: kubernetes-validate ----------------------------------------------------------

def kubernetes_validate(*paths):
    """kubernetes-validate --strict over each of K8S_VERSIONS: its exit code and its report."""
    versions = [arg for version in K8S_VERSIONS for arg in ("-k", version)]
    done = subprocess.run([str(KUBERNETES_VALIDATE), "--strict", *versions, *map(str, paths)],
                          capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def test_builtin_kinds_pass_strict_validation_on_each_kubernetes_version():
    code, report = kubernetes_validate(*MANIFESTS)
    assert code == 0, report
    # It only warns on a kind it has no schema for (a misspelt apiVersion too): only the CRDs' kinds may.
    unchecked = re.findall(r"^WARN .* for kind (\S+) with api version", report, re.M)
    assert set(unchecked) <= CUSTOM_KINDS, report
    builtin = [d for d in all_documents() if d["kind"] not in CUSTOM_KINDS]
    assert report.count(" passed for resource ") == len(builtin) * len(K8S_VERSIONS), report


def test_each_custom_resource_matches_its_crd():
    custom = [d for d in all_documents() if d["kind"] in CUSTOM_KINDS]
    assert {d["kind"] for d in custom} == {"SeldonDeployment", "PodMonitor", "PrometheusRule"}
    for resource in custom:
        assert crd_errors(resource) == [], resource["kind"]


def test_the_seldon_deployment_passes_the_webhook_rules():
    (sdep,) = named("SeldonDeployment")
    assert seldon_webhook_errors(sdep) == []


# --- the PrometheusRule: one source, and valid ----------------------------------------------------

def load_generator():
    spec = importlib.util.spec_from_file_location("generate_prometheus_rule", K8S / "generate_prometheus_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def promtool_check_rules(groups, tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    return subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True)


def test_the_prometheus_rule_is_generated_from_monitoring_rules():
    assert load_generator().main(["--check"]) == 0, "run `make prometheus-rule`"


def test_the_prometheus_rule_is_refused_when_a_source_rule_changed(tmp_path, monkeypatch):
    generator = load_generator()
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text(generator.OUTPUT.read_text().replace("< 0.8", "< 0.7"))
    monkeypatch.setattr(generator, "OUTPUT", stale)
    assert generator.main(["--check"]) == 1


def test_promtool_accepts_the_rules_of_the_prometheus_rule(tmp_path):
    (rule,) = named("PrometheusRule")
    done = promtool_check_rules(rule["spec"]["groups"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_refuses_a_broken_expression(tmp_path):
    (rule,) = named("PrometheusRule")
    groups = copy.deepcopy(rule["spec"]["groups"])
    groups[0]["rules"][0]["expr"] = "sum by (outcome (feedback_outcomes_total)"
    assert promtool_check_rules(groups, tmp_path).returncode != 0


# --- what the manifests promise, beyond any schema ------------------------------------------------

def pod_specs():
    """Each pod template: the StatefulSet's, and one per predictor of the SeldonDeployment."""
    (statefulset,) = named("StatefulSet")
    (sdep,) = named("SeldonDeployment")
    return [statefulset["spec"]["template"]["spec"]] + [
        c["spec"] for p in sdep["spec"]["predictors"] for c in p["componentSpecs"]]


def test_each_pod_runs_locked_down_with_probes_and_scratch_space():
    for pod in pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 8888
        (model,) = [c for c in pod["containers"] if c["name"] == "docker-model"]
        assert model["securityContext"] == {
            "runAsNonRoot": True, "runAsUser": 8888, "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        assert set(model["resources"]) == {"requests", "limits"}
        assert model["readinessProbe"]["httpGet"]["path"] == "/health/ping"
        assert model["livenessProbe"]["httpGet"]["path"] == "/health/status"
        assert {p["httpGet"]["port"] for p in (model["readinessProbe"], model["livenessProbe"])} <= {9000, "http"}
        mounts = {m["mountPath"]: m["name"] for m in model["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def feedback_volume(pod):
    """The name of the volume the model's container keeps its feedback log on (FEEDBACK_DB's folder)."""
    (model,) = [c for c in pod["containers"] if c["name"] == "docker-model"]
    (mount,) = [m for m in model["volumeMounts"] if m["mountPath"] == "/var/lib/docker-model"]
    return mount["name"]


def test_each_pod_keeps_its_own_feedback_log_on_a_claim():
    (statefulset,) = named("StatefulSet")
    templates = [t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]]
    assert feedback_volume(statefulset["spec"]["template"]["spec"]) in templates
    # Seldon v1 has no claim template: one pod per predictor, each with a claim of its own.
    (sdep,) = named("SeldonDeployment")
    claims = []
    for predictor in sdep["spec"]["predictors"]:
        assert predictor["replicas"] == 1 and all(c.get("replicas", 1) == 1 for c in predictor["componentSpecs"])
        (pod,) = [c["spec"] for c in predictor["componentSpecs"]]
        (volume,) = [v for v in pod["volumes"] if v["name"] == feedback_volume(pod)]
        claims.append(volume["persistentVolumeClaim"]["claimName"])
    assert len(set(claims)) == len(claims)
    assert set(claims) <= {c["metadata"]["name"] for c in named("PersistentVolumeClaim")}


# --- negative: what a user would get wrong is refused ---------------------------------------------

def misspelt(text, right, wrong, tmp_path):
    assert right in text
    path = tmp_path / "misspelt.yaml"
    path.write_text(text.replace(right, wrong, 1))
    return path


@pytest.mark.parametrize("right, wrong", [("minReplicas: 2", "minReplcias: 2"),
                                          ("readinessProbe:", "readinesProbe:")])
def test_strict_validation_refuses_a_misspelt_field_of_a_builtin_kind(right, wrong, tmp_path):
    path = misspelt((K8S / "statefulset.yaml").read_text(), right, wrong, tmp_path)
    code, report = kubernetes_validate(path)
    assert code != 0 and wrong.strip().split(":")[0] in report, report


@pytest.mark.parametrize("right, wrong", [("      replicas: 1", "      replcias: 1"),
                                          ("readinessProbe:", "readinesProbe:")])
def test_the_crd_schema_refuses_a_misspelt_field_of_the_seldon_deployment(right, wrong, tmp_path):
    path = misspelt((K8S / "seldondeployment.yaml").read_text(), right, wrong, tmp_path)
    (sdep,) = [d for d in documents(path) if d["kind"] == "SeldonDeployment"]
    errors = crd_errors(sdep)
    assert any(wrong.strip().split(":")[0] in e for e in errors), errors


def test_the_crd_schema_refuses_a_misspelt_field_of_the_pod_monitor(tmp_path):
    path = misspelt((K8S / "podmonitor.yaml").read_text(), "podMetricsEndpoints:", "podMetricEndpoints:", tmp_path)
    (monitor,) = documents(path)
    assert crd_errors(monitor)


def test_the_webhook_rules_refuse_traffic_that_does_not_sum_to_100():
    (sdep,) = copy.deepcopy(named("SeldonDeployment"))
    sdep["spec"]["predictors"][1]["traffic"] = 40
    assert crd_errors(sdep) == []  # the schema alone lets it through
    assert seldon_webhook_errors(sdep) == ["traffic must sum to 100 over several predictors, not 90"]


def test_the_webhook_rules_refuse_two_shadows():
    (sdep,) = copy.deepcopy(named("SeldonDeployment"))
    predictors = sdep["spec"]["predictors"]
    for name in ("shadow-1", "shadow-2"):
        predictors.append({**copy.deepcopy(predictors[0]), "name": name, "shadow": True, "traffic": 0})
    predictors[0]["traffic"], predictors[1]["traffic"] = 60, 40
    assert crd_errors(sdep) == []
    assert seldon_webhook_errors(sdep) == ["multiple shadows are not allowed: ['shadow-1', 'shadow-2']"]
