"""gRPC answers that say whose mistake it was. A request the model refuses (serving.validation.BadInput,
a 4xx over REST) ends with INVALID_ARGUMENT and the same message, as gRPC's convention (and MLServer's,
KServe's) has it; feedback for a prediction fed back already with other labels (409) with
ALREADY_EXISTS; a call to be sent again later (serving.validation.Unavailable, 503) with UNAVAILABLE.
seldon-core 1.17.1 lets the exception reach grpcio, which then answers UNKNOWN, the code of a server
fault; server faults keep it. A prediction request is first checked as the REST side checks it, so
that what REST refuses with a 400 gRPC refuses with the same message. A message over gRPC's limit
(4 MB, seldon-core's default) grpcio itself ends with RESOURCE_EXHAUSTED.
"""


def check_prediction_request(request):
    """Refuses, as the REST side refuses them (serving/request_guard.py), the requests seldon-core's
    conversion to numpy would fail on with a server fault, or would pass (a boolean feature turns 1.0):
    no data, a tensor whose shape does not hold its values, ragged or non-numeric rows."""
    from google.protobuf import json_format

    from serving.validation import BadInput, check_tensor_shape, features_from_message, refuse_booleans

    if request.WhichOneof("data_oneof") != "data":
        raise BadInput("the request needs 'data': {'ndarray': [[30 numbers], ...]} or a 'tensor'")
    kind = request.data.WhichOneof("data_oneof")
    if kind == "tensor":  # packed doubles: only the shape can be wrong here, the values the model checks
        check_tensor_shape([int(d) for d in request.data.tensor.shape], len(request.data.tensor.values))
    elif kind == "ndarray":
        message = {"data": {"ndarray": json_format.MessageToDict(request.data.ndarray)}}
        refuse_booleans(message, "request")
        features_from_message(message)
    else:
        raise BadInput(f"the request's data is {kind or 'empty'}: send 'ndarray' or 'tensor'")


def refusing_bad_input(method, check=None):
    import grpc

    from serving.validation import BadInput, Unavailable

    def answer(self, request, context):
        try:
            if check is not None:
                check(request)
            return method(self, request, context)
        except BadInput as err:
            code = grpc.StatusCode.ALREADY_EXISTS if err.status_code == 409 else grpc.StatusCode.INVALID_ARGUMENT
            context.abort(code, str(err))
        except Unavailable as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))

    return answer


def install():
    from seldon_core.wrapper import SeldonModelGRPC

    SeldonModelGRPC.Predict = refusing_bad_input(SeldonModelGRPC.Predict, check_prediction_request)
    SeldonModelGRPC.SendFeedback = refusing_bad_input(SeldonModelGRPC.SendFeedback)
