"""Every prediction answered with a puid (`meta.puid`), over REST and gRPC.

seldon-core 1.17.1 copies a request's puid into its response and leaves giving one to Seldon's
executor, which runs in front of the model on Kubernetes. With no executor in front (make serve,
make scale), the server gives one (serving/prediction_ids.py) to each request that has none, before
seldon-core builds the response; the REST shortcut does the same. A feedback call that sends the
response back is then counted once however often it is sent.
"""


def install():
    import seldon_core.seldon_methods as methods
    from seldon_core.proto import prediction_pb2

    from serving import prediction_ids

    predict = methods.predict

    def predict_with_puid(user_model, request, seldon_metrics):
        if isinstance(request, prediction_pb2.SeldonMessage):
            if not request.meta.puid:
                request.meta.puid = prediction_ids.new_puid()
        elif isinstance(request, dict) and isinstance(request.setdefault("meta", {}), dict):
            request["meta"]["puid"] = prediction_ids.puid_for(request["meta"])
        return predict(user_model, request, seldon_metrics)

    methods.predict = predict_with_puid
    prediction_ids.assigning = True
