"""Feedback handed to the replica that made its prediction, whose feedback log holds it.

A feedback call that carries its prediction's response is counted once per puid, and only the log
of the replica that answered the prediction can tell whether it was counted already. Feedback that
reaches another replica (the balancer spreads the calls) is sent on to that one, named in its puid
(serving/prediction_ids.py), and its answer, or its refusal, is the answer.
"""
import json
import os
import urllib.error
import urllib.request

from serving.validation import BadInput, Unavailable

# Where replica NAME answers REST, as seen from another: compose's service names (deploy/compose.scale.yml).
PEER_URL = os.environ.get("PEER_URL", "http://{replica}:9000")
TIMEOUT_SECONDS = 10


def _info(body):
    try:
        return json.loads(body)["status"]["info"]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def forward_feedback(replica, rows, labels, response):
    body = json.dumps({"request": {"data": {"ndarray": rows.tolist()}},
                       "truth": {"data": {"ndarray": labels.tolist()}}, "response": response}).encode()
    request = urllib.request.Request(PEER_URL.format(replica=replica) + "/api/v1.0/feedback", data=body,
                                     headers={"Content-Type": "application/json"})
    keeper = f"replica {replica}, which made this prediction and keeps its feedback,"
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            answer.read()
    except urllib.error.HTTPError as err:
        if 400 <= err.code < 500:
            raise BadInput(_info(err.read()), err.code) from None
        raise Unavailable(f"{keeper} answered {err.code} ({_info(err.read())}): send the call again") from None
    except OSError as err:
        raise Unavailable(f"{keeper} does not answer ({err}): send the call again") from None
