"""Sends bad requests to the served model over gRPC (localhost:5000) and prints, as JSON, the status
code and message each one ends with. Runs in venvs/serving (grpcio and seldon-core's protos).

    grpc_bad_request_check.py            a few requests, and a good one
    grpc_bad_request_check.py --corpus   every request of tests/bad_requests.json a protobuf message can
                                         carry, and one over gRPC's size limit
"""
import json
import sys
from pathlib import Path

import grpc
import numpy as np
from seldon_core.proto import prediction_pb2, prediction_pb2_grpc
from seldon_core.utils import array_to_grpc_datadef

ROW = [13.4, 20.52, 88.64, 556.7, 0.1106, 0.1469, 0.1445, 0.08172, 0.2116, 0.07325, 0.3906, 0.9306, 3.093,
       33.67, 0.005414, 0.02265, 0.03452, 0.01334, 0.01705, 0.004005, 16.41, 29.66, 113.3, 844.4, 0.1574,
       0.3856, 0.5106, 0.2051, 0.3585, 0.1109]


def message(rows):
    return prediction_pb2.SeldonMessage(data=array_to_grpc_datadef("tensor", np.array(rows, dtype=float)))


def feedback(rows, truth):
    return prediction_pb2.Feedback(request=message(rows), truth=message(truth))


def corpus():
    """{name: [code, message, what REST's message contains]} over the corpus; cases no protobuf message
    can carry (malformed JSON, unknown keys, form bodies: the client's library refuses them) left out."""
    from google.protobuf import json_format

    stub = prediction_pb2_grpc.ModelStub(grpc.insecure_channel("localhost:5000"))
    answers = {}
    for case in json.loads((Path(__file__).parent / "bad_requests.json").read_text())["requests"]:
        if case["path"] not in ("/api/v1.0/predictions", "/api/v1.0/feedback") or "body" not in case \
                or case.get("content_type") != "application/json":
            continue
        kind, call = ((prediction_pb2.SeldonMessage, stub.Predict) if case["path"].endswith("predictions")
                      else (prediction_pb2.Feedback, stub.SendFeedback))
        try:
            request = json_format.ParseDict(json.loads(case["body"]), kind())
        except (ValueError, json_format.ParseError, RecursionError, OverflowError):
            continue
        try:
            call(request, timeout=10)
            answers[case["name"]] = ["OK", "", case["message_contains"]]
        except grpc.RpcError as err:
            answers[case["name"]] = [err.code().name, err.details(), case["message_contains"]]
    big = message([ROW] * 20_000)  # 600,000 doubles: 4.8 MB, over the 4 MB gRPC allows by default
    try:
        stub.Predict(big, timeout=30)
        answers["over the size limit"] = ["OK", "", ""]
    except grpc.RpcError as err:
        answers["over the size limit"] = [err.code().name, err.details(), ""]
    return answers


def main():
    if "--corpus" in sys.argv:
        print(json.dumps(corpus()))
        return
    calls = {
        "29 features": ("Predict", message([ROW[:29]])),
        "NaN": ("Predict", message([[float("nan")] + ROW[1:]])),
        "truth label 2": ("SendFeedback", feedback([ROW], [2])),
        "two labels, one row": ("SendFeedback", feedback([ROW], [1, 0])),
        "a good row": ("Predict", message([ROW])),
    }
    stub = prediction_pb2_grpc.ModelStub(grpc.insecure_channel("localhost:5000"))
    answers = {}
    for what, (method, request) in calls.items():
        try:
            getattr(stub, method)(request, timeout=10)
            answers[what] = ["OK", ""]
        except grpc.RpcError as err:
            answers[what] = [err.code().name, err.details()]
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
