"""gRPC answers that say whose mistake it was. A request the model refuses (serving.validation.BadInput,
a 4xx over REST) ends with INVALID_ARGUMENT and the same message, as gRPC's convention (and MLServer's,
KServe's) has it; feedback for a prediction fed back already with other labels (409) with
ALREADY_EXISTS; a call to be sent again later (serving.validation.Unavailable, 503) with UNAVAILABLE.
seldon-core 1.17.1 lets the exception reach grpcio, which then answers UNKNOWN, the code of a server
fault; server faults keep it.
"""


def refusing_bad_input(method):
    import grpc

    from serving.validation import BadInput, Unavailable

    def answer(self, request, context):
        try:
            return method(self, request, context)
        except BadInput as err:
            code = grpc.StatusCode.ALREADY_EXISTS if err.status_code == 409 else grpc.StatusCode.INVALID_ARGUMENT
            context.abort(code, str(err))
        except Unavailable as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))

    return answer


def install():
    from seldon_core.wrapper import SeldonModelGRPC

    SeldonModelGRPC.Predict = refusing_bad_input(SeldonModelGRPC.Predict)
    SeldonModelGRPC.SendFeedback = refusing_bad_input(SeldonModelGRPC.SendFeedback)
