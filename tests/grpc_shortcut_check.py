"""Checks of the gRPC steps grpc_aio and grpc_shortcut (serving/tuning), run in venvs/serving by
tests/test_tuning.py: `grpc_shortcut_check.py NAME` runs the check NAME and prints "ok", or fails.

Each compares the steps' way with seldon-core's own, in one process with every step applied: the
same answers for the requests the shortcut reads, seldon-core's way for those it does not, and over
a real grpc.aio server on loopback the status codes clients get.
"""
import asyncio
import os
import random
import socket
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ["DRIFT"] = "off"

from serving import tuning  # noqa: E402

tuning.apply("on")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from seldon_core.metrics import SeldonMetrics  # noqa: E402
from seldon_core.proto import prediction_pb2, prediction_pb2_grpc  # noqa: E402
from seldon_core.utils import array_to_grpc_datadef  # noqa: E402
from seldon_core.wrapper import SeldonModelGRPC  # noqa: E402

from DockerModel import DockerModel  # noqa: E402
from serving.tuning import grpc_aio, grpc_shortcut  # noqa: E402

ROWS = np.load(ROOT / "models" / "training-rows.npy")[:5].astype(float)
MODEL = DockerModel()
SERVICER = SeldonModelGRPC(MODEL, SeldonMetrics())


class Aborted(Exception):
    pass


class Context:
    """What the thread-pool server's context does on abort: raise."""

    def abort(self, code, details):
        raise Aborted(code, details)


def message(kind, rows, puid="", names=()):
    m = prediction_pb2.SeldonMessage(data=array_to_grpc_datadef(kind, np.array(rows), list(names)))
    if puid:
        m.meta.puid = puid
    return m


def seldon_way(raw):
    """The answer without the shortcut: seldon-core's Predict, with the other steps, on the message."""
    try:
        return ("answer", SeldonModelGRPC.Predict.seldon_way(
            SERVICER, prediction_pb2.SeldonMessage.FromString(raw), Context()))
    except Aborted as aborted:
        return ("aborted", aborted.args)


def shortcut_way(raw):
    try:
        response = SERVICER.Predict(grpc_shortcut.read_request(raw), Context())
    except Aborted as aborted:
        return ("aborted", aborted.args)
    return ("answer", prediction_pb2.SeldonMessage.FromString(grpc_shortcut.write_response(response)))


def plain_requests():
    yield "1 row", message("ndarray", ROWS[:1], puid="p1")
    yield "3 rows", message("ndarray", ROWS[:3], puid="p2")
    yield "tensor 1x30", message("tensor", ROWS[:1], puid="p3")
    yield "tensor 4x30", message("tensor", ROWS[:4], puid="p4")
    yield "names", message("ndarray", ROWS[:2], puid="p5", names=[f"f{i}" for i in range(30)])
    yield "integers", message("ndarray", np.rint(ROWS[:1] * 100), puid="p6")


def check_plain_requests_are_answered_as_seldon_core_answers_them():
    for name, m in plain_requests():
        raw = m.SerializeToString()
        assert isinstance(grpc_shortcut.read_request(raw), grpc_shortcut.PlainRequest), name
        fast = SERVICER.Predict(grpc_shortcut.read_request(raw), Context())
        assert isinstance(fast, bytes), name
        slow = seldon_way(raw)
        assert slow[0] == "answer", (name, slow)
        assert prediction_pb2.SeldonMessage.FromString(fast) == slow[1], (name, fast, slow[1])
        assert fast == slow[1].SerializeToString(), name  # byte for byte, as protobuf writes it


def check_a_request_without_puid_gets_one_and_the_same_answer_otherwise():
    raw = message("ndarray", ROWS[:2]).SerializeToString()
    fast = prediction_pb2.SeldonMessage.FromString(SERVICER.Predict(grpc_shortcut.read_request(raw), Context()))
    slow = seldon_way(raw)[1]
    assert fast.meta.puid and slow.meta.puid and fast.meta.puid != slow.meta.puid
    fast.meta.puid = slow.meta.puid = ""
    assert fast == slow


def check_the_answer_follows_the_figures_when_feedback_is_logged():
    raw = message("ndarray", ROWS[:1], puid="q1").SerializeToString()
    before = shortcut_way(raw)[1]
    MODEL.send_feedback(ROWS[:3], None, 0, [0, 1, 1])  # scored as sent: the figures change
    first = shortcut_way(raw)[1]  # the first answer after it carries the 3 rows' outcome counts
    assert sum(m.value for m in first.meta.metrics if m.type == prediction_pb2.Metric.COUNTER) == 3, first
    assert [m.value for m in first.meta.metrics if m.type == prediction_pb2.Metric.GAUGE] != \
        [m.value for m in before.meta.metrics if m.type == prediction_pb2.Metric.GAUGE]
    assert shortcut_way(raw) == seldon_way(raw)  # counts claimed: both answer the same again
    assert shortcut_way(message("ndarray", ROWS[:3], puid="q2").SerializeToString())[1].meta.tags[
        "shape_input_data"].string_value == "(3, 30)"


def check_a_model_that_writes_into_meta_is_answered_as_seldon_core_answers_it():
    class Tagging(DockerModel):
        def predict(self, X, features_names=None, meta=None):
            meta["tags"] = {"route": "a"}  # seldon-core's construct_response puts these in the answer
            return super().predict(X, features_names, meta)

    global SERVICER
    SERVICER = SeldonModelGRPC(Tagging(), SeldonMetrics())
    raw = message("ndarray", ROWS[:1], puid="t1").SerializeToString()
    fast = shortcut_way(raw)
    assert fast == seldon_way(raw) and fast[1].meta.tags["route"].string_value == "a", fast


def unpacked_tensor():
    """A tensor whose values are written one by one (valid protobuf, not how protobuf writes them)."""
    import struct

    values = b"".join(b"\x11" + struct.pack("<d", v) for v in ROWS[0])
    tensor = b"\x0a\x02\x01\x1e" + values  # shape [1, 30] packed, values unpacked (field 2, fixed64)
    return grpc_shortcut._len_field(3, grpc_shortcut._len_field(2, tensor))


def other_requests():
    """Requests the shortcut must leave to seldon-core's way: named, with their bytes."""
    rows = ROWS[:1].tolist()
    ragged = prediction_pb2.SeldonMessage()
    json_format.ParseDict({"data": {"ndarray": [rows[0], rows[0][:29]]}}, ragged)
    cases = {
        "29 features": message("ndarray", ROWS[:1, :29]),
        "NaN": message("ndarray", [[float("nan")] + rows[0][1:]]),
        "tensor 29 features": message("tensor", ROWS[:1, :29]),
        "ragged": ragged,
        "1-D ndarray": json_format.ParseDict({"data": {"ndarray": rows[0]}}, prediction_pb2.SeldonMessage()),
        "a boolean": json_format.ParseDict({"data": {"ndarray": [[True] + rows[0][1:]]}}, prediction_pb2.SeldonMessage()),
        "a string": json_format.ParseDict({"data": {"ndarray": [["1"] + rows[0][1:]]}}, prediction_pb2.SeldonMessage()),
        "a string last": json_format.ParseDict({"data": {"ndarray": [rows[0] + ["1"]]}},
                                               prediction_pb2.SeldonMessage()),
        "meta tags": json_format.ParseDict({"meta": {"tags": {"probe": "yes"}}, "data": {"ndarray": rows}},
                                           prediction_pb2.SeldonMessage()),
        "strData": prediction_pb2.SeldonMessage(strData="hello"),
        "no data": prediction_pb2.SeldonMessage(),
        "tensor shape lies": prediction_pb2.SeldonMessage(data=prediction_pb2.DefaultData(
            tensor=prediction_pb2.Tensor(shape=[2, 30], values=rows[0]))),
    }
    named = {name: m.SerializeToString() for name, m in cases.items()}
    named["unpacked tensor values"] = unpacked_tensor()
    return named


def hand_built_requests():
    """Valid protobuf that protobuf itself does not write, each of which protobuf reads otherwise
    than a reader of the usual encoding would: named, with their bytes."""
    L = grpc_shortcut._len_field
    number = lambda v: b"\x11" + np.float64(v).tobytes()  # noqa: E731 - Value.number_value
    row = L(6, b"".join(L(1, number(v)) for v in ROWS[0]))  # Value.list_value of 30 numbers
    ndarray = L(3, L(1, row))
    tensor = L(2, L(1, b"\x01\x1e") + L(2, ROWS[0].tobytes()))
    return {
        "two data fields": L(3, ndarray) + L(3, ndarray),  # merged: one data holding the last ndarray
        "two ndarrays in one data": L(3, ndarray + ndarray),
        "a tensor, then an ndarray": L(3, tensor + ndarray),
        "a value of a number and a list": L(3, L(3, L(1, number(1.0) + row))),
        "an overlong tag": b"\x9a\x00" + grpc_shortcut._varint_bytes(len(ndarray)) + ndarray,  # field 3, two bytes
        "two puids": L(2, L(1, b"mine") + L(1, b"")) + L(3, ndarray),
        "meta after data": L(3, ndarray) + L(2, L(1, b"later")),
    }


def check_hand_built_requests_are_read_as_protobuf_reads_them():
    for name, raw in hand_built_requests().items():
        read = grpc_shortcut.read_request(raw)
        if isinstance(read, grpc_shortcut.PlainRequest):  # allowed only where it reads what protobuf reads
            message = prediction_pb2.SeldonMessage.FromString(raw)
            assert read.puid == message.meta.puid, name
            assert message.WhichOneof("data_oneof") == "data", name
        fast, slow = shortcut_way(raw), seldon_way(raw)
        for way in (fast, slow):
            if way[0] == "answer" and not prediction_pb2.SeldonMessage.FromString(raw).meta.puid:
                way[1].meta.puid = ""
        assert fast == slow, (name, fast, slow)


def check_other_requests_take_seldon_cores_way():
    for name, raw in other_requests().items():
        if name not in ("29 features", "NaN", "tensor 29 features"):  # the model refuses those: read, then left
            assert not isinstance(grpc_shortcut.read_request(raw), grpc_shortcut.PlainRequest), name
        fast, slow = shortcut_way(raw), seldon_way(raw)
        for way in (fast, slow):
            if way[0] == "answer":  # each call gets a puid of its own
                assert way[1].meta.puid, name
                way[1].meta.puid = ""
        assert fast == slow, (name, fast, slow)
    refused = shortcut_way(other_requests()["29 features"])
    assert refused == ("aborted", (grpc.StatusCode.INVALID_ARGUMENT, "each row must have 30 features, got 29")), refused


def check_random_rows_are_read_as_protobuf_reads_them():
    rng = random.Random(7)
    for _ in range(300):
        n, k = rng.randint(1, 6), rng.randint(1, 40)
        rows = [[rng.choice([0.0, -0.0, 1e-300, rng.uniform(-1e6, 1e6), float(rng.randint(-9, 9))])
                 for _ in range(k)] for _ in range(n)]
        for kind in ("ndarray", "tensor"):
            raw = message(kind, rows).SerializeToString()
            read = grpc_shortcut.read_request(raw)
            assert isinstance(read, grpc_shortcut.PlainRequest)
            expected = np.array(json_format.MessageToDict(prediction_pb2.SeldonMessage.FromString(raw).data)
                                [kind] if kind == "ndarray" else rows)
            assert read.features.shape == expected.shape, (kind, rows)
            assert read.features.astype(float).tobytes() == expected.astype(float).tobytes(), (kind, rows)  # -0.0 too
            for cut in sorted(rng.sample(range(len(raw)), 3)):  # a truncated request: protobuf's own error
                try:
                    prediction_pb2.SeldonMessage.FromString(raw[:cut])
                    protobuf_reads = True
                except Exception:
                    protobuf_reads = False
                try:
                    grpc_shortcut.read_request(raw[:cut])
                    shortcut_reads = True
                except Exception:
                    shortcut_reads = False
                assert shortcut_reads == protobuf_reads, (kind, cut)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_the_aio_server_answers_and_refuses_with_gRPC_status_codes():
    port = free_port()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_until_complete, daemon=True,
                     args=(grpc_aio.serve(MODEL, SeldonMetrics(), {}, f"127.0.0.1:{port}"),)).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=20)
    model, seldon = prediction_pb2_grpc.ModelStub(channel), prediction_pb2_grpc.SeldonStub(channel)
    for stub in (model, seldon):
        answer = stub.Predict(message("ndarray", ROWS[:2]), timeout=10)
        assert list(answer.data.ndarray) == MODEL.model.predict(ROWS[:2]).tolist() and answer.meta.puid
    for raw, code, text in ((other_requests()["29 features"], grpc.StatusCode.INVALID_ARGUMENT, "30 features"),
                            (other_requests()["a boolean"], grpc.StatusCode.INVALID_ARGUMENT, "must be numbers"),
                            (other_requests()["strData"], grpc.StatusCode.INVALID_ARGUMENT, "needs 'data'")):
        try:
            model.Predict(prediction_pb2.SeldonMessage.FromString(raw), timeout=10)
            raise AssertionError(f"{raw!r} was answered")
        except grpc.RpcError as err:
            assert err.code() == code and text in err.details(), (err.code(), err.details())
    try:
        seldon.GraphMetadata(prediction_pb2.SeldonMessage(), timeout=10)  # a server fault stays UNKNOWN
        raise AssertionError("GraphMetadata answered")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNKNOWN, err.code()


if __name__ == "__main__":
    globals()[f"check_{sys.argv[1]}"]()
    print("ok")
