"""Sends bad requests to the served model over gRPC (localhost:5000) and prints, as JSON, the status
code and message each one ends with. Runs in venvs/serving (grpcio and seldon-core's protos)."""
import json

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


def main():
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
