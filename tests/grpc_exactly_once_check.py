"""Over gRPC (ADDRESS, default localhost:5000): a prediction's puid, then its feedback sent with the
response three times, once with another label, and once with a response that has no puid; prints,
as JSON, the puid and the status code and message of each feedback call. Runs in venvs/serving."""
import json
import sys

import grpc
from seldon_core.proto import prediction_pb2, prediction_pb2_grpc

from grpc_bad_request_check import ROW, message  # beside this file

stub = prediction_pb2_grpc.ModelStub(grpc.insecure_channel(sys.argv[1] if len(sys.argv) > 1 else "localhost:5000"))
response = stub.Predict(message([ROW]), timeout=10)
no_puid = prediction_pb2.SeldonMessage()
no_puid.CopyFrom(response)
no_puid.meta.puid = ""
calls = [("first", response, 1), ("again", response, 1), ("again through another", response, 1),
         ("other label", response, 0), ("no puid", no_puid, 1)]
answers = {}
for what, answered, label in calls:
    try:
        stub.SendFeedback(prediction_pb2.Feedback(request=message([ROW]), response=answered, truth=message([label])),
                          timeout=10)
        answers[what] = ["OK", ""]
    except grpc.RpcError as err:
        answers[what] = [err.code().name, err.details()]
print(json.dumps({"puid": response.meta.puid, "prediction": list(response.data.tensor.values), "answers": answers}))
