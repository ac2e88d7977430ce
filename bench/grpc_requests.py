"""Serialized gRPC requests for bench/grpc_load.py, and the predictions in a serialized response.

No one venv has both servers' protobuf classes (venvs/serving: seldon-core's, protobuf 3.20;
venvs/mlserver: MLServer's, protobuf 6), so each protocol runs under its own server's python:

    venvs/serving/bin/python  bench/grpc_requests.py build seldon --row '[30 floats]' --out seldon-1.bin
    venvs/mlserver/bin/python bench/grpc_requests.py build v2 --row '[30 floats]' --out v2-1.bin [--model binary-lr]
    PYTHON bench/grpc_requests.py decode seldon|v2 < response.bin   # prints the predictions as a JSON list

`build` also prints the gRPC method to call, for grpc_load.py's --method:
  seldon  /seldon.protos.Model/Predict, a SeldonMessage with data.ndarray = [row]
  v2      /inference.GRPCInferenceService/ModelInfer, a ModelInferRequest with one FP64 input
          "input-0" of shape [1, len(row)] in contents.fp64_contents
"""
import argparse
import json
import sys

METHODS = {
    "seldon": "/seldon.protos.Model/Predict",
    "v2": "/inference.GRPCInferenceService/ModelInfer",
}


def seldon_request(row):
    from seldon_core.proto import prediction_pb2

    request = prediction_pb2.SeldonMessage()
    request.data.ndarray.append([float(v) for v in row])
    return request.SerializeToString()


def v2_request(row, model_name, input_name="input-0"):
    from mlserver.grpc import dataplane_pb2

    request = dataplane_pb2.ModelInferRequest(model_name=model_name)
    tensor = request.inputs.add(name=input_name, datatype="FP64", shape=[1, len(row)])
    tensor.contents.fp64_contents.extend(float(v) for v in row)
    return request.SerializeToString()


def seldon_predictions(response_bytes):
    from google.protobuf import json_format
    from seldon_core.proto import prediction_pb2

    response = prediction_pb2.SeldonMessage.FromString(response_bytes)
    return json_format.MessageToDict(response.data.ndarray)


def v2_predictions(response_bytes):
    from mlserver.grpc import dataplane_pb2

    response = dataplane_pb2.ModelInferResponse.FromString(response_bytes)
    output = response.outputs[0]
    if response.raw_output_contents:
        import numpy as np

        dtype = {"INT64": np.int64, "INT32": np.int32, "FP64": np.float64, "FP32": np.float32}[output.datatype]
        return np.frombuffer(response.raw_output_contents[0], dtype=dtype).tolist()
    contents = output.contents
    # MLServer fills the one contents field that matches the output's datatype.
    for field in ("int64_contents", "int_contents", "fp64_contents", "fp32_contents", "bool_contents"):
        values = list(getattr(contents, field))
        if values:
            return values
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write one serialized request")
    build.add_argument("protocol", choices=sorted(METHODS))
    build.add_argument("--row", required=True, help="the features as a JSON list of numbers")
    build.add_argument("--out", required=True)
    build.add_argument("--model", default="binary-lr", help="v2 only: the model's name (its model-settings.json)")
    decode = sub.add_parser("decode", help="the predictions in a serialized response on stdin, as JSON")
    decode.add_argument("protocol", choices=sorted(METHODS))
    args = ap.parse_args()
    if args.command == "build":
        row = json.loads(args.row)
        payload = seldon_request(row) if args.protocol == "seldon" else v2_request(row, args.model)
        with open(args.out, "wb") as f:
            f.write(payload)
        print(METHODS[args.protocol])
    else:
        response_bytes = sys.stdin.buffer.read()
        decoded = seldon_predictions if args.protocol == "seldon" else v2_predictions
        print(json.dumps(decoded(response_bytes)))


if __name__ == "__main__":
    main()
