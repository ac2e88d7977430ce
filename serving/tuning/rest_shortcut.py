"""REST predictions and feedback answered straight from the JSON the request guard has checked.

seldon-core would convert a prediction's JSON to numpy and its answer back through generic code,
and a feedback message to protobuf and back in pure Python (protobuf<4 has no compiled extension for
Python 3.11): most of the cost of a large feedback call. The model is called through the same
methods (predict, send_feedback, metrics, tags), the metrics are recorded in seldon-core's
store as its routes record them, and the responses have the shape of seldon-core's.
"""
from serving import prediction_ids


def _answer(model, store, checked):
    if checked.kind == "predict":
        predictions = model.predict(checked.rows, None, checked.message.get("meta") or {}).tolist()
        if "tensor" in checked.message["data"]:
            data = {"names": [], "tensor": {"shape": [len(predictions)], "values": predictions}}
        else:
            data = {"names": [], "ndarray": predictions}
        method = "predict"
    else:
        model.send_feedback(checked.rows, None, checked.reward, checked.labels, response=checked.response)
        data = {"names": [], "ndarray": []}
        method = "feedback"
    metrics = model.metrics()
    if method == "feedback":
        store.update_reward(checked.reward)
    store.update(metrics, method)
    meta = {"metrics": metrics, "tags": model.tags()}
    # A feedback message has no meta of its own (the guard refuses any key but request, response,
    # reward and truth): only a prediction's answer carries a puid.
    puid = prediction_ids.puid_for(checked.message.get("meta") or {}) if method == "predict" else None
    if puid:
        meta["puid"] = puid
    return {"data": data, "meta": meta}


def install():
    from flask import g, jsonify
    from seldon_core import wrapper

    original = wrapper.get_rest_microservice

    def get_rest_microservice(user_model, seldon_metrics):
        app = original(user_model, seldon_metrics)

        @app.before_request
        def answer_checked_request():  # runs after the request guard, which set g.checked
            checked = g.pop("checked", None)
            if checked is not None:
                return jsonify(_answer(user_model, seldon_metrics, checked))

        return app

    wrapper.get_rest_microservice = get_rest_microservice
