"""gRPC answers that say whose mistake it was. A request the model refuses (serving.validation.BadInput,
a 4xx over REST) ends with INVALID_ARGUMENT and the same message, as gRPC's convention (and MLServer's,
KServe's) has it. seldon-core 1.17.1 lets the exception reach grpcio, which then answers UNKNOWN, the
code of a server fault; server faults keep it.
"""


def refusing_bad_input(method):
    import grpc

    from serving.validation import BadInput

    def answer(self, request, context):
        try:
            return method(self, request, context)
        except BadInput as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))

    return answer


def install():
    from seldon_core.wrapper import SeldonModelGRPC

    SeldonModelGRPC.Predict = refusing_bad_input(SeldonModelGRPC.Predict)
    SeldonModelGRPC.SendFeedback = refusing_bad_input(SeldonModelGRPC.SendFeedback)
