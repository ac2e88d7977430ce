"""Replaying the test set's ground truth to the served model, and comparing what it reports."""
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from tqdm import tqdm

from serving.feedback_log import OUTCOMES, ratios
from kit.client import outcome_totals

# What the article printed after its replay.
ARTICLE_PRINTED = {"accuracy": 0.92607003, "precision": 0.9528302, "recall": 0.9294478, "f1_score": 0.9409938}
# The article's confusion matrix over the 513 rows, and this kit's: the fit that OpenBLAS's AVX2
# kernels give (the Makefile asks for them). Its printed accuracy counted one more true negative:
# 476/514.
ARTICLE_COUNTS = {"tp": 303, "fp": 15, "tn": 172, "fn": 23}


def replay_one_by_one(client, X, y, progress=True):
    """One feedback call per row, as the article does; returns the last response."""
    response = None
    for row, label in tqdm(list(zip(X, y)), desc="feedback", disable=not progress, mininterval=1):
        response = client.feedback([row], [label])
    return response


def counted_since(before, metrics_url=None):
    """Confusion counts added since `before` (a dict from outcome_totals)."""
    after = outcome_totals(metrics_url) if metrics_url else outcome_totals()
    return {o: after[o] - before[o] for o in OUTCOMES}


def comparison(counts, y_true, y_pred):
    """The server's figures beside sklearn.metrics on the same rows and the article's printout."""
    server = ratios(counts)
    sk = {
        "accuracy": accuracy_score(y_true, y_pred),
        "precision": precision_score(y_true, y_pred),
        "recall": recall_score(y_true, y_pred),
        "f1_score": f1_score(y_true, y_pred),
    }
    table = pd.DataFrame({
        "server (counters)": server,
        "sklearn.metrics": sk,
        "article printed": ARTICLE_PRINTED,
        "article's fit (513 rows)": ratios(ARTICLE_COUNTS),
    })
    return table.round(8)


def replay_concurrently(base_urls, X, y, repeats=1, clients=8, retry_refused_for=0.0):
    """Sends every (row, label) `repeats` times as one-row feedback calls from `clients` threads,
    spread round-robin over the replicas at `base_urls`. Returns (acknowledged, failures).

    retry_refused_for: seconds during which a call whose connection was refused or reset before any
    answer is sent again (a replica restarting gracefully answers what it accepted and refuses the rest)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from kit.client import ModelClient, ModelError

    def send(replica, row, label):
        deadline = time.monotonic() + retry_refused_for
        while True:
            try:
                return replica.feedback([row], [label])
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    jobs = [(i % len(base_urls), row, label) for i, (row, label) in enumerate(list(zip(X, y)) * repeats)]
    shards = [jobs[k::clients] for k in range(clients)]

    def run(shard):
        replicas = [ModelClient(url) for url in base_urls]
        ok, failed = 0, []
        for replica, row, label in shard:
            try:
                send(replicas[replica], row, label)
                ok += 1
            except (ModelError, OSError) as err:
                failed.append(str(err))
        return ok, failed

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(run, shards))
    return sum(ok for ok, _ in results), [f for _, failed in results for f in failed]


def replay_exactly_once(url, X, y, repeats=1, clients=8, retry_for=60.0):
    """Asks for each row's prediction, then sends its feedback with the prediction's response, from
    `clients` threads; every call without an answer (refused, reset, timed out, 5xx) is sent again
    until answered, for at most `retry_for` seconds each. Returns (acknowledged, calls sent again)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from kit.client import ModelClient, ModelError

    def answered(call):
        deadline = time.monotonic() + retry_for
        again = 0
        while True:
            try:
                return call(), again
            except (requests.RequestException, ModelError) as err:
                if isinstance(err, ModelError) and err.status < 500 or time.monotonic() > deadline:
                    raise
                again += 1
                time.sleep(0.1)

    jobs = list(zip(X, y)) * repeats

    def run(shard):
        client = ModelClient(url, timeout=15)
        ok = sent_again = 0
        for row, label in shard:
            response, again_p = answered(lambda: client.predict([row]))
            _, again_f = answered(lambda: client.feedback([row], [label], response=response))
            ok, sent_again = ok + 1, sent_again + again_p + again_f
        return ok, sent_again

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(run, [jobs[k::clients] for k in range(clients)]))
    return sum(ok for ok, _ in results), sum(again for _, again in results)


def totals_across(metrics_urls):
    """feedback_outcomes_total summed by outcome over every series of every replica."""
    totals = dict.fromkeys(OUTCOMES, 0)
    for url in metrics_urls:
        for outcome, n in outcome_totals(url).items():
            totals[outcome] += n
    return totals
