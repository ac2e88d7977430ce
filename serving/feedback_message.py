"""seldon-core's Feedback message, as its own REST route and its gRPC server hand it to the model
(DockerModel.send_feedback_raw): the whole message, `response` included, which send_feedback's
arguments leave out."""
import numpy as np


def feedback_parts(feedback):
    """(rows, labels, reward, response) of a Feedback protobuf message, checked, or BadInput."""
    from google.protobuf import json_format

    from serving.validation import check_feedback, refuse_booleans

    message = json_format.MessageToDict(feedback)
    refuse_booleans(message, "feedback")
    return check_feedback(message)


def feedback_answer(model, feedback):
    """The answer seldon-core itself would give: no data, the model's tags and its metrics (which
    seldon-core records, and drops from the answer unless told to keep them)."""
    from seldon_core.utils import construct_response

    # A metric of value 0 would leave the protobuf message without its value, and seldon-core, reading
    # the metrics back out of it, fails (KeyError 'value'). Nothing is lost without them: a counter
    # increment of 0 changes nothing, and a ratio of the log's counts, which only grow, stays 0 only
    # until it first is not (and every prediction reports it too).
    metrics = [m for m in model.metrics() if m["value"]]
    return construct_response(model, False, feedback.request, np.array([]), None, metrics)
