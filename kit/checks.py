"""The check cells of the exercises: each tells the learner whether an answer is right.

A check works the answer out again on its own, from the artifacts, the test set or the running
server, and compares. A wrong or missing answer raises NotYet with what is still to do; a right one
prints "Right:" and why.
"""
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import requests

from kit import MODELS_DIR, REPO_ROOT
from serving.feedback_log import OUTCOMES


class NotYet(AssertionError):
    """The answer is missing or wrong: the message says what to do."""


def _given(answer, what):
    if answer is Ellipsis or answer is None:
        raise NotYet(f"not answered yet: replace the ... in the cell above with {what}")
    return answer


def _expect(condition, message):
    if not condition:
        raise NotYet(message)


def _right(message):
    print("Right:", message)


def _counts(answer, what):
    answer = _given(answer, what)
    if hasattr(answer, "TP"):  # DockerModel.scores
        answer = {o: getattr(answer, o.upper()) for o in OUTCOMES}
    _expect(isinstance(answer, dict) and set(answer) == set(OUTCOMES),
            f"{what} should be a dict with the keys tp, fp, tn, fn; got {answer!r}")
    return {o: int(answer[o]) for o in OUTCOMES}


def _confusion(y_true, y_pred):
    from kit.training import evaluate

    return {o: evaluate(y_true, y_pred)[o] for o in OUTCOMES}


def _test_set():
    from kit.training import load_test_set

    return load_test_set()


def _scored(n_rows=None, artifact="binary-lr.joblib"):
    """The confusion counts of a committed model on the first n_rows test rows (all by default)."""
    X_test, y_test = _test_set()
    return _confusion(y_test[:n_rows], joblib.load(MODELS_DIR / artifact).predict(X_test[:n_rows]))


# --- 01: training ----------------------------------------------------------------------------------

def perceptron_training_counts(answer):
    from kit.training import load_split

    X_train, _, y_train, _ = load_split()
    expected = _confusion(y_train, joblib.load(MODELS_DIR / "binary-percept.joblib").predict(X_train))
    got = _counts(answer, "the Perceptron's confusion counts on the training rows")
    _expect(got == expected, f"{got} is not the Perceptron's confusion matrix on the {len(y_train)} training rows: "
                             "did you predict X_train with binary-percept.joblib, and read confusion_matrix's "
                             "ravel() as tn, fp, fn, tp?")
    right = expected["tp"] + expected["tn"]
    _right(f"the Perceptron gets {right}/{len(y_train)} training rows right ({right / len(y_train):.3f}) and 470/513 "
           "test rows (0.916): a model scores better on the rows it was fitted to, which is why it is judged on others.")


def unsure_rows(answer):
    X_test, _ = _test_set()
    p_benign = joblib.load(MODELS_DIR / "binary-lr.joblib").predict_proba(X_test)[:, 1]
    expected = int(((p_benign > 0.25) & (p_benign < 0.75)).sum())
    got = _given(answer, "a number of rows")
    _expect(isinstance(got, (int, np.integer)), f"the answer should be a count (an int), not {type(got).__name__}")
    _expect(int(got) == expected, f"{got} rows is not it. Take predict_proba(X_test)[:, 1] (the probability of "
                                  "class 1, benign) and count the rows strictly between 0.25 and 0.75.")
    _right(f"{expected} of the 513 test rows have a probability of benign between 0.25 and 0.75: "
           "those are the ones a slightly different fit could flip.")


# --- 02: the class, locally --------------------------------------------------------------------------

def first_twenty_scores(answer):
    expected = _scored(20)
    got = _counts(answer, "the scores after feeding back the first 20 rows")
    _expect(got == expected, f"{got} is not what 20 rows give: use a fresh DockerModel (feedback_db=':memory:') "
                             "and send X_test[:20] with y_test[:20] in one send_feedback call.")
    _right(f"the first 20 rows score {expected}.")


def handed_out_once(first, second, model):
    _given(first, "the sum of the COUNTER values of the first metrics() call")
    _given(second, "the same sum for the second call")
    _expect(sum(model.feedback.totals().values()) == 7, "the model should hold the 7 rows fed back: make a new one")
    left = sum(m["value"] for m in model.metrics() if m["type"] == "COUNTER")
    _expect(left == 0, f"this model still had {left} rows to hand out: call its metrics() in your answer")
    _expect(first == 7, f"the first metrics() call should hand out the 7 rows fed back, not {first}: sum the "
                        "values of the metrics whose type is COUNTER, and call metrics() nowhere else in between")
    _expect(second == 0, f"the second call should hand out nothing new, not {second}")
    _right("the counters hand out each logged row once: 7, then 0. The wrapper adds them to the "
           "process's running totals, which is why all workers' counters add up exactly.")


# --- 03: the image -----------------------------------------------------------------------------------

def _in_image(image, *command):
    return subprocess.run(["docker", "run", "--rm", "--entrypoint", command[0], image, *command[1:]],
                          capture_output=True, text=True, check=True).stdout.strip()


def image_user(answer, image):
    got = _given(answer, "the uid the image's server runs as (an int)")
    expected = int(_in_image(image, "id", "-u"))
    _expect(int(got) == expected, f"uid {got} is not it: run `id -u` in a container of {image}")
    _right(f"the server runs as uid {expected}, not root (0): a process that breaks out of the model "
           "cannot write to the image or the host's files as root.")


def image_sklearn(answer, image):
    import sklearn

    got = _given(answer, "the scikit-learn version inside the image (a string)")
    expected = _in_image(image, "python3", "-c", "import sklearn; print(sklearn.__version__)")
    _expect(str(got) == expected, f"{got!r} is not the version inside {image}: ask the image's python3")
    if expected != sklearn.__version__:
        _right(f"the image has scikit-learn {expected}, but this notebook {sklearn.__version__}: rebuild the image "
               "(make image) before serving a model trained here.")
        return
    _right(f"scikit-learn {expected} in the image and in this notebook: the model pickled here loads there.")


# --- 04: predictions ---------------------------------------------------------------------------------

def tensor_response(payload, answer, model_url, X):
    payload = _given(payload, "the request you sent (a dict)")
    response = _given(answer, "the server's JSON answer to the tensor request (a dict)")
    try:
        tensor = payload["data"]["tensor"]
        sent = np.asarray(tensor["values"], dtype=float).reshape(tensor["shape"])
    except (KeyError, TypeError, ValueError) as err:
        raise NotYet(f'the request should be {{"data": {{"tensor": {{"shape": [3, 30], "values": [...]}}}}}} ({err})') from None
    _expect(sent.shape == (3, 30) and np.array_equal(sent, np.asarray(X[:3], dtype=float)),
            "the request's values are not the first three test rows, row after row")
    _expect(isinstance(response, dict) and "data" in response and "meta" in response,
            f"expected the decoded JSON answer (response.json()), got {type(response).__name__}")
    _expect("tensor" in response["data"], "the answer holds no 'tensor': send the rows as "
                                          '{"data": {"tensor": {"shape": [3, 30], "values": [...90 numbers]}}}')
    shape = response["meta"]["tags"]["shape_input_data"]
    _expect(shape == "(3, 30)", f"the model saw shape {shape}, not (3, 30): send the first three test rows, "
                                "flattened row after row into 'values'")
    as_ndarray = requests.post(f"{model_url}/api/v1.0/predictions", timeout=10,
                               json={"data": {"ndarray": np.asarray(X[:3]).tolist()}}).json()
    _expect([int(v) for v in response["data"]["tensor"]["values"]] == [int(v) for v in np.ravel(as_ndarray["data"]["ndarray"])],
            "these predictions are not those of the first three test rows")
    _right(f"a tensor in, a tensor out: shape_input_data {shape}, predictions {response['data']['tensor']['values']}.")


def bad_request(status, message, model_url, row):
    _given(status, "the HTTP status code (an int)")
    _given(message, "the server's message (response.json()['status']['info'])")
    answer = requests.post(f"{model_url}/api/v1.0/predictions", timeout=10,
                           json={"data": {"ndarray": [["abc"] + [float(v) for v in row[1:]]]}})
    _expect(int(status) == answer.status_code, f"status {status} is not what the server answers ({answer.status_code})")
    _expect(message == answer.json()["status"]["info"], f"{message!r} is not the server's message")
    _right(f"HTTP {status}, a client error: the request was wrong, not the server. The message says which "
           f"value: {message!r}")


# --- 05: feedback ------------------------------------------------------------------------------------

def precision_recall(precision, recall, metrics_text):
    from kit.client import outcomes_in

    _given(metrics_text, "the metrics page you read (its text)")
    _given(precision, "the precision you computed from its lines")
    _given(recall, "the recall")
    c = outcomes_in(metrics_text)
    _expect(c["tp"] + c["fp"] > 0, "that page holds no feedback_outcomes_total lines with feedback: read "
                                   "requests.get(metrics_url).text after the replay")
    exact = {"precision": c["tp"] / (c["tp"] + c["fp"]), "recall": c["tp"] / (c["tp"] + c["fn"])}
    for name, got in (("precision", precision), ("recall", recall)):
        _expect(abs(got - exact[name]) < 1e-6, f"{name} {got} is not it (to 6 decimals): sum every "
                                               "feedback_outcomes_total line by its outcome label (all workers, all "
                                               "methods) first, then divide")
    _right(f"precision TP/(TP+FP) = {c['tp']}/{c['tp'] + c['fp']} = {exact['precision']:.8f}, recall "
           f"TP/(TP+FN) = {c['tp']}/{c['tp'] + c['fn']} = {exact['recall']:.8f}, over all the feedback the server held when you read it.")


def ten_rows_added(prediction, answer, before, metrics_url):
    from kit.replay import counted_since

    expected = _scored(10)
    predicted = _counts(prediction, "your prediction of what the ten rows add")
    _expect(predicted == expected, f"your prediction {predicted} is not what the model's answers give: compare "
                                   "local_predictions[:10] with y_test[:10], row by row")
    got = _counts(answer, "what the server's counters added (counted_since)")
    since = counted_since(before, metrics_url)
    _expect(all(since[o] >= got[o] for o in OUTCOMES), f"the server's counters added only {since} since "
                                                       "before_ten: send the ten rows")
    _expect(got == expected, f"{got} is not what the first ten rows add ({sum(got.values())} rows counted): read "
                             "the counters before, send X_test[:10] with y_test[:10], then counted_since(before, metrics_url)")
    _right(f"the ten rows added {expected}, as the model's own predictions against the truth say they should.")


# --- 06: monitoring ----------------------------------------------------------------------------------

_FP_RATE_TEST = """
rule_files: [rules.yml]
evaluation_interval: 2s
group_eval_order: [model-quality, exercise]
tests:
  - interval: 2s
    input_series:
      - series: 'feedback_outcomes_total{job="model",instance="a:6001",worker_id="1",outcome="fp"}'
        values: '0 10x5'
      - series: 'feedback_outcomes_total{job="model",instance="b:6002",worker_id="2",outcome="fp"}'
        values: '0 5x5'
      - series: 'feedback_outcomes_total{job="model",instance="a:6001",worker_id="1",outcome="tn"}'
        values: '0 100x5'
      - series: 'feedback_outcomes_total{job="model",instance="b:6002",worker_id="2",outcome="tn"}'
        values: '0 72x5'
      - series: 'feedback_outcomes_total{job="model",instance="a:6001",worker_id="1",outcome="tp"}'
        values: '0 303x5'
    promql_expr_test:
      - expr: model:false_positive_rate:ratio
        eval_time: 10s
        exp_samples:
          - labels: model:false_positive_rate:ratio
            value: 0.08021390374331551
  # no false positive yet: the rate is 0, not missing
  - interval: 2s
    input_series:
      - series: 'feedback_outcomes_total{job="model",instance="a:6001",worker_id="1",outcome="tn"}'
        values: '0 40x5'
    promql_expr_test:
      - expr: model:false_positive_rate:ratio
        eval_time: 10s
        exp_samples:
          - labels: model:false_positive_rate:ratio
            value: 0
  # no truly negative row at all: undefined, so nothing is recorded (not NaN, not +Inf)
  - interval: 2s
    input_series:
      - series: 'feedback_outcomes_total{job="model",instance="a:6001",worker_id="1",outcome="tp"}'
        values: '0 40x5'
    promql_expr_test:
      - expr: model:false_positive_rate:ratio
        eval_time: 10s
        exp_samples: []
"""


def false_positive_rate_rule(rule):
    """Runs promtool's unit test of the learner's rule: FP 15 and TN 172 over two replicas give 15/187."""
    import yaml

    rule = _given(rule, "your recording rule, as YAML text")
    promtool = shutil.which("promtool")
    _expect(promtool, "promtool is missing: run `make monitor`, which installs Prometheus and promtool")
    try:
        parsed = yaml.safe_load(rule)
    except yaml.YAMLError as err:
        raise NotYet(f"that is not valid YAML: {err}") from None
    _expect(isinstance(parsed, dict) and parsed.get("record") == "model:false_positive_rate:ratio",
            "the rule should be one mapping with record: model:false_positive_rate:ratio and an expr")
    recording = yaml.safe_load((REPO_ROOT / "monitoring" / "rules" / "recording.yml").read_text())
    groups = [g for g in recording["groups"] if g["name"] == "model-quality"] + [{"name": "exercise", "rules": [parsed]}]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
        Path(tmp, "test.yml").write_text(_FP_RATE_TEST)
        done = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp, capture_output=True, text=True)
    _expect(done.returncode == 0, "promtool's unit tests fail: FP 15 and TN 172, spread over two replicas, should "
                                  "give 15/187 = 0.0802; TN only, 0; no negative row at all, nothing recorded."
                                  f"\n{done.stdout[-1500:]}{done.stderr[-500:]}")
    _right(f"promtool's unit tests pass: {parsed['expr'].strip()} gives 15/187 = 0.0802 over two replicas, 0 before "
           "the first false positive, and nothing while no negative row has been seen.")


def false_negatives_query(query, prometheus):
    query = _given(query, "your PromQL query, as a string")
    at = time.time()
    try:
        result = prometheus.query(query, at=at)
    except RuntimeError as err:
        raise NotYet(f"Prometheus refused the query: {err}") from None
    _expect(len(result) == 1, f"the query gives {len(result)} series; sum them into one")
    expected = prometheus.value('sum(feedback_outcomes_total{job="model",outcome="fn"})', at=at)
    _expect(result[0][1] == expected, f"{result[0][1]} is not the number of false negatives over every "
                                      f"series of every model target ({expected})")
    _right(f"{int(expected)} false negatives, summed over every worker of every replica Prometheus scrapes.")


# --- 07: scale-out -----------------------------------------------------------------------------------

def average_of_ratios(mean_of_precisions, precision_of_sums, shares):
    _given(mean_of_precisions, "the mean of the replicas' own precisions")
    _given(precision_of_sums, "the precision of the summed counts")
    per_replica = shares["tp"] / (shares["tp"] + shares["fp"])
    summed = shares[list(OUTCOMES)].sum()
    exact = summed["tp"] / (summed["tp"] + summed["fp"])
    _expect(abs(mean_of_precisions - per_replica.mean()) < 1e-12,
            f"{mean_of_precisions} is not the mean of the per-replica precisions {per_replica.round(6).tolist()}")
    _expect(abs(precision_of_sums - exact) < 1e-12, f"{precision_of_sums} is not TP/(TP+FP) of the summed counts")
    _right(f"mean of the replicas' precisions {mean_of_precisions:.8f}, precision of the sums {exact:.8f} = "
           f"{summed['tp']}/{summed['tp'] + summed['fp']}. Only the second is the model's precision: the mean weighs "
           "a replica that predicted few positives like one that predicted many.")


def logs_match_counters(answer, metrics_urls):
    from kit.replay import totals_across

    got = _given(answer, "the number of rows in the three replicas' feedback logs")
    exported = sum(totals_across(metrics_urls).values())
    _expect(int(got) == exported, f"{got} rows, but the replicas' counters add up to {exported}: count the rows of "
                                  "`docker exec docker-model-rN python3 -m serving.feedback_log` for N = 1, 2, 3")
    _right(f"{exported} rows in the logs, {exported} in the counters: every acknowledged row is in a log, "
           "and each one was counted once.")



def chi_square_p_value(p_value, table):
    """Notebook 08: the chi-square test of the 2x2 table of right and wrong answers per variant."""
    from kit.ab_test import difference_test

    got = float(_given(p_value, "the p-value of scipy.stats.chi2_contingency(..., correction=False)"))
    (a, b) = table.index
    expected = difference_test(table.loc[a, "right"], table.loc[a, "rows"], table.loc[b, "right"], table.loc[b, "rows"])
    _expect(0 <= got <= 1, f"{got} is not a probability: take the p-value, the second value chi2_contingency returns")
    _expect(abs(got - expected["p_value"]) < 1e-9,
            f"{got:.6f} is not the p-value of the table [[right, wrong] for {a}, [right, wrong] for {b}] without "
            f"Yates's correction (correction=False): build the table from the counts above")
    _right(f"p = {got:.4f}, the two-proportion z-test's p-value: on a 2x2 table the chi-square statistic is z squared "
           f"({expected['z'] ** 2:.4f}). Either way, a difference this size happens by chance "
           f"{'often' if got > 0.05 else 'rarely'}.")


def rows_for_a_decision(rows_per_variant, days, accuracy_a, accuracy_b, rows_a_day):
    """Notebook 08: the rows each variant needs to tell the two accuracies apart (alpha 0.05, power 0.8)."""
    import math

    from kit.ab_test import rows_needed

    got = int(_given(rows_per_variant, "an int: the rows each variant needs"))
    need = rows_needed(accuracy_a, accuracy_b)
    _expect(abs(got - need) <= 1, f"{got} rows per variant; kit.ab_test.rows_needed({accuracy_a:.4f}, {accuracy_b:.4f}) "
                                  f"(alpha 0.05, power 0.8) gives another number: call it")
    want_days = math.ceil(2 * need / rows_a_day)
    _expect(int(_given(days, "an int: the days of traffic")) == want_days,
            f"{days} days: both variants need {need} rows each, and the day's {rows_a_day} rows are split between them")
    _right(f"{need} rows per variant, {want_days} days at {rows_a_day} rows a day: a one-point difference in accuracy "
           "needs thousands of labelled rows. With a few hundred, only a large difference shows.")


def uncorrected_false_alarms(answer, min_p_values):
    """The share of tests that would have cried drift with no correction: a p-value under 0.05."""
    answer = float(_given(answer, "a share between 0 and 1"))
    expected = float(np.mean(np.asarray(min_p_values) < 0.05))
    _expect(abs(answer - expected) < 1e-9,
            f"{answer:.4f} is not it: count the tests whose smallest p-value (min_p_values) is under 0.05, "
            "and divide by the number of tests")
    independent = 1 - 0.95 ** 30
    _right(f"{expected:.1%} of the tests would have raised a false alarm, against {independent:.1%} if the 30 "
           "features were independent: they are not (radius, perimeter and area move together), and "
           "Bonferroni's alpha / 30 is stricter than it needs to be, so the corrected rate is under alpha.")


def smallest_detected_factor(answer, reference, pool, factors, max_median_delay):
    """The smallest rescaling of `factors` whose median detection delay is at most max_median_delay rows."""
    from kit.drift import detection_delays, rescale

    answer = float(_given(answer, "one of the factors listed"))
    _expect(answer in factors, f"{answer} is not one of {factors}")

    def median_delay(factor):
        runs = next(iter(detection_delays(reference, pool, [rescale(factor)], runs=10, max_rows=1000).values()))
        return float(np.median([1000 if d is None else d for d in runs]))

    at_answer = median_delay(answer)
    _expect(at_answer <= max_median_delay,
            f"x {answer} is seen after {at_answer:.0f} rows (median of 10 runs): more than {max_median_delay}")
    smaller = [f for f in factors if f < answer]
    if smaller:
        below = median_delay(max(smaller))
        _expect(below > max_median_delay,
                f"x {max(smaller)} is seen within {below:.0f} rows already: a smaller factor does it")
    _right(f"x {answer} is seen after {at_answer:.0f} rows (median of 10 runs); a smaller rescaling takes "
           f"longer than {max_median_delay} rows. A 56-row reference cannot tell small changes from chance "
           "quickly: a larger reference (the feedback log's rows, notebook 10) would.")


def canary_llr(answer, verdict, canary):
    """The log-likelihood ratio of the canary's counts, worked out by hand."""
    import math

    answer = float(_given(answer, "a float"))
    errors, rows = canary["fp"] + canary["fn"], sum(canary.values())
    expected = errors * math.log(verdict["p1"] / verdict["p0"]) + (rows - errors) * math.log(
        (1 - verdict["p1"]) / (1 - verdict["p0"]))
    _expect(abs(answer - expected) < 1e-6,
            f"{answer:.4f} is not it: add log(p1 / p0) for each of the {errors} errors and log((1 - p1) / (1 - p0)) "
            f"for each of the {rows - errors} right answers")
    _right(f"{expected:.3f}, over the boundary {verdict['upper']:.3f}: {errors} errors in {rows} rows are far more "
           f"likely from a model erring {verdict['p1']:.1%} of the time than from one erring {verdict['p0']:.1%}.")


def rows_to_promote(answer, p0, worse_by=0.05, alpha=0.05, beta=0.05):
    """The right answers in a row that take a canary from 0 to the promotion boundary."""
    import math

    answer = _given(answer, "an int")
    p1 = p0 + worse_by
    expected = math.ceil(math.log(beta / (1 - alpha)) / math.log((1 - p1) / (1 - p0)))
    _expect(answer == expected, f"{answer} is not it: how many times must log((1 - p1) / (1 - p0)) be added "
                                "to reach log(beta / (1 - alpha))?")
    _right(f"{expected} right answers without an error, with p0 = {p0:.3f}: a canary is promoted only on evidence, "
           "and every error it makes sets it back by log(p1 / p0), several right answers' worth.")
