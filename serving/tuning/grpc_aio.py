"""The gRPC server runs on grpcio's asyncio server (grpc.aio) instead of its thread-pool server.

seldon-core 1.17.1 serves gRPC from `grpc.server(ThreadPoolExecutor(GRPC_THREADS))`: every call is
handed from grpcio's polling thread to a pool thread and back, and the two contend for the GIL. That
hand-off was the largest part of a call's cost (37% in py-spy, bench/README.md). grpc.aio reads,
answers and writes each call in one thread, the event loop's, as MLServer does.

Each call is answered in the loop's thread, one at a time, by the same servicer (seldon-core's
SeldonModelGRPC, with the other steps' changes), as GRPC_THREADS=1 answers them: the model is
never called from two threads at once. A servicer that calls `context.abort(code, message)`
(grpc_status) ends the call with that code and message, as it does on the thread-pool server.
With tracing on (seldon-core's --tracing), or more than one thread asked for (GRPC_THREADS), seldon-core's
own server is kept: its interceptors are written for the thread-pool server, and one thread here
answers one call at a time.
"""
import asyncio

SERVICES = ("Generic", "Model", "Transformer", "OutputTransformer", "Combiner", "Router", "Seldon")


class _Aborted(Exception):
    def __init__(self, code, details):
        super().__init__(details)
        self.code, self.details = code, details


class _SyncContext:
    """The servicer context a synchronous method sees: abort() raises, as on the thread-pool server,
    and the asynchronous handler then ends the call with its code and message."""

    def __init__(self, context):
        self._context = context

    def abort(self, code, details=""):
        raise _Aborted(code, details)

    def __getattr__(self, name):  # the aio context's other methods; none of seldon-core's uses a coroutine one
        return getattr(self._context, name)


def answered_in_loop(method):
    async def answer(request, context):
        try:
            return method(request, _SyncContext(context))
        except _Aborted as aborted:
            await context.abort(aborted.code, aborted.details)

    return answer


class AsyncServicer:
    """Every method of `servicer` as a coroutine that runs it in the event loop's thread."""

    def __init__(self, servicer):
        self._servicer = servicer

    def __getattr__(self, name):
        return answered_in_loop(getattr(self._servicer, name))


def server_options(annotations):
    from seldon_core.wrapper import ANNOTATION_GRPC_MAX_MSG_SIZE

    options = [("grpc.so_reuseport", 1)]
    if ANNOTATION_GRPC_MAX_MSG_SIZE in annotations:
        max_msg = int(annotations[ANNOTATION_GRPC_MAX_MSG_SIZE])
        options += [("grpc.max_message_length", max_msg), ("grpc.max_send_message_length", max_msg),
                    ("grpc.max_receive_message_length", max_msg)]
    return options


async def serve(user_object, seldon_metrics, annotations, bind_address):
    import grpc
    from grpc_reflection.v1alpha import reflection
    from seldon_core.proto import prediction_pb2, prediction_pb2_grpc
    from seldon_core.wrapper import SeldonModelGRPC

    server = grpc.aio.server(options=server_options(annotations))
    servicer = AsyncServicer(SeldonModelGRPC(user_object, seldon_metrics))
    for service in SERVICES:
        getattr(prediction_pb2_grpc, f"add_{service}Servicer_to_server")(servicer, server)
    reflection.enable_server_reflection(
        [prediction_pb2.DESCRIPTOR.services_by_name[s].full_name for s in SERVICES] + [reflection.SERVICE_NAME],
        server)
    try:
        user_object.load()
    except (NotImplementedError, AttributeError):
        pass
    server.add_insecure_port(bind_address)
    await server.start()
    await server.wait_for_termination()


def install():
    import seldon_core.microservice as microservice

    run_thread_pool_server = microservice._run_grpc_server

    def run_grpc_server(user_object, seldon_metrics, args, annotations, bind_address):
        if args.tracing or int(args.grpc_threads) != 1:
            microservice.logger.info("GRPC_THREADS=%s or tracing: seldon-core's thread-pool gRPC server", args.grpc_threads)
            return run_thread_pool_server(user_object, seldon_metrics, args, annotations, bind_address)
        microservice.logger.info("Starting new GRPC server on grpc.aio (serving.tuning.grpc_aio).")
        try:
            asyncio.run(serve(user_object, seldon_metrics, annotations, bind_address))
        except KeyboardInterrupt:  # Ctrl-C in a terminal: the process ends quietly, as seldon-core's does
            pass

    microservice._run_grpc_server = run_grpc_server
