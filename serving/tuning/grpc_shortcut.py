"""gRPC predictions of plain numbers read from, and answered in, protobuf's wire format.

seldon-core 1.17.1 needs protobuf<4, which has no compiled extension for Python 3.11: decoding a
request of 30 numbers builds some 60 Python message objects, and seldon-core turns them into numpy
through a dict and builds its answer through json_format. Together that was most of a gRPC call's
cost. This step reads the encoding protobuf writes for the usual request, a SeldonMessage whose
data is an `ndarray` of rows of numbers or a `tensor`, with no meta but a puid, straight into
numpy, and writes the answer's bytes (its meta, which changes only when the figures change, is
encoded once per change by protobuf itself).

Everything else takes seldon-core's way, with the other steps' checks: any other field, another
encoding, a value that is not a number, ragged rows, a tensor whose shape does not hold its values,
and any request the model refuses (it is then answered by that way, with its status and message).
The model, its metrics and tags, and seldon-core's metrics store are called as seldon-core calls
them; tests/grpc_shortcut_check.py (run by tests/test_tuning.py) checks that both ways answer alike.
"""
import re
import struct

# Value{number_value: v} inside ListValue.values, as protobuf writes it: field 1 (9 bytes long),
# then field 2 as 8 little-endian bytes.
_NUMBER_IN_LIST = b"\n\t\x11"
_ROW = re.compile(b"(?:" + re.escape(_NUMBER_IN_LIST) + b".{8})+", re.DOTALL)
_ROW_STRUCTS = {}  # row length: its struct, for the first ROW_STRUCTS_KEPT lengths seen
ROW_STRUCTS_KEPT = 64
_DOUBLE = struct.Struct("<d")
META_CACHE_SIZE = 64


class NotPlain(Exception):
    """The request is not one this step reads: seldon-core's way answers it."""


def _varint(buf, i):
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise NotPlain("varint too long")


def _fields(buf, start, end):
    """(field number, start, end) of each length-delimited field of the message in buf[start:end]."""
    i = start
    while i < end:
        if buf[i] & 0x80:  # every field read here has a one-byte tag; protobuf reads a longer one as another
            raise NotPlain("a tag of more than one byte")
        key, i = _varint(buf, i)
        if key & 7 != 2:
            raise NotPlain("a field that is not length-delimited")
        size, i = _varint(buf, i)
        if i + size > end:
            raise NotPlain("truncated")
        yield key >> 3, i, i + size
        i += size


def _row(buf, start, end):
    if not _ROW.fullmatch(buf, start, end):
        raise NotPlain("a row of something other than numbers, or none")
    n = (end - start) // 11
    unpack = _ROW_STRUCTS.get(n)
    if unpack is None:
        unpack = struct.Struct("<" + "3xd" * n).unpack_from
        if len(_ROW_STRUCTS) < ROW_STRUCTS_KEPT:
            _ROW_STRUCTS[n] = unpack
    return unpack(buf, start)


def _ndarray(buf, start, end):
    rows = []
    for number, s, e in _fields(buf, start, end):  # ListValue.values
        inner = list(_fields(buf, s, e))  # Value: only list_value (6)
        if number != 1 or len(inner) != 1 or inner[0][0] != 6:
            raise NotPlain("an ndarray that is not a list of rows")
        rows.append(_row(buf, inner[0][1], inner[0][2]))
    if not rows or len({len(r) for r in rows}) != 1:
        raise NotPlain("no rows, or rows of different lengths")
    return rows


def _tensor(buf, start, end):
    shape, values = None, None
    for number, s, e in _fields(buf, start, end):
        if number == 1 and shape is None:  # packed int32
            shape, i = [], s
            while i < e:
                d, i = _varint(buf, i)
                shape.append(d)
            if i != e:
                raise NotPlain("truncated")
        elif number == 2 and values is None and (e - s) % 8 == 0:  # packed double
            values = struct.unpack_from(f"<{(e - s) // 8}d", buf, s)
        else:
            raise NotPlain("an odd tensor")
    if not shape or not values or len(shape) != 2 or shape[0] * shape[1] != len(values) or min(shape) < 1:
        raise NotPlain("a tensor whose shape is not that of its values")
    return shape, values


class PlainRequest:
    """A prediction request as this step reads it; `message()` is the SeldonMessage it encodes."""

    __slots__ = ("raw", "kind", "features", "names", "puid")

    def __init__(self, raw):
        import numpy as np

        self.raw, self.kind, self.features, self.names, self.puid = raw, None, None, [], ""
        seen = set()
        for number, s, e in _fields(raw, 0, len(raw)):
            if number in seen or number not in (2, 3):
                raise NotPlain("a field other than one meta and one data")
            seen.add(number)
            if number == 2:  # Meta: a puid at most
                for field, ps, pe in _fields(raw, s, e):
                    if field != 1 or self.puid:
                        raise NotPlain("meta with more than a puid")
                    self.puid = raw[ps:pe].decode()
                continue
            for field, ds, de in _fields(raw, s, e):  # DefaultData
                if field == 1:
                    self.names.append(raw[ds:de].decode())
                elif field in (2, 3) and self.kind is None:
                    if field == 3:
                        self.kind, self.features = "ndarray", np.array(_ndarray(raw, ds, de))
                    else:
                        shape, values = _tensor(raw, ds, de)
                        self.kind, self.features = "tensor", np.array(values).reshape(shape)
                else:
                    raise NotPlain("data other than an ndarray or a tensor")
        if self.kind is None:
            raise NotPlain("no data")

    def message(self):
        from seldon_core.proto import prediction_pb2

        return prediction_pb2.SeldonMessage.FromString(self.raw)


def read_request(raw):
    """The request deserializer: a PlainRequest, else the SeldonMessage protobuf decodes."""
    try:
        return PlainRequest(raw)
    except (NotPlain, IndexError, UnicodeDecodeError):
        from seldon_core.proto import prediction_pb2

        return prediction_pb2.SeldonMessage.FromString(raw)


def write_response(response):
    return response if isinstance(response, bytes) else response.SerializeToString()


def _varint_bytes(n):
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_field(number, payload):
    return bytes([number << 3 | 2]) + _varint_bytes(len(payload)) + payload


def _list_value(items):
    parts = []
    for v in items:
        if isinstance(v, list):
            parts.append(_len_field(1, _len_field(6, _list_value(v))))
        else:
            parts.append(_NUMBER_IN_LIST + _DOUBLE.pack(v))
    return b"".join(parts)


def _data(kind, predictions, names):
    names_bytes = b"".join(_len_field(1, n.encode()) for n in names)
    if kind == "tensor":
        tensor = b""
        if predictions.shape:
            tensor += _len_field(1, b"".join(_varint_bytes(d) for d in predictions.shape))
        if predictions.size:
            tensor += _len_field(2, struct.pack(f"<{predictions.size}d", *predictions.ravel().tolist()))
        return names_bytes + _len_field(2, tensor)
    return names_bytes + _len_field(3, _list_value(predictions.tolist()))


class Answers:
    """What seldon-core's Predict does with a request's features, for a PlainRequest."""

    def __init__(self):
        self._meta_bytes = {}

    def meta_bytes(self, user_model, metrics, runtime_tags):
        """Meta without its puid, as seldon-core's construct_response builds it, encoded by protobuf
        once for each set of tags and figures (they change when feedback is logged)."""
        from seldon_core.user_model import client_custom_tags
        from seldon_core.utils import get_request_path

        tags = dict(client_custom_tags(user_model) or {})
        tags.update(runtime_tags or {})
        request_path = get_request_path()
        # The tags' and figures' values are Python str, int and float (DockerModel's): their repr is exact.
        key = repr((request_path, tags, metrics))
        encoded = self._meta_bytes.get(key)
        if encoded is None:
            from google.protobuf import json_format
            from seldon_core.proto import prediction_pb2

            meta = {k: v for k, v in (("requestPath", request_path), ("tags", tags), ("metrics", metrics)) if v}
            encoded = json_format.ParseDict(meta, prediction_pb2.Meta()).SerializeToString()
            if len(self._meta_bytes) >= META_CACHE_SIZE:
                self._meta_bytes.clear()
            self._meta_bytes[key] = encoded
        return encoded

    def answer(self, servicer, request):
        """The response's bytes, or None if the model refuses the request (seldon-core's way then
        answers it, as it answers every refused request)."""
        import numpy as np
        from seldon_core.metrics import PREDICT_METRIC_METHOD_TAG
        from seldon_core.user_model import client_class_names, client_custom_metrics, client_predict
        from seldon_core.utils import construct_response

        from serving import prediction_ids
        from serving.validation import BadInput

        model = servicer.user_model
        if hasattr(model, "predict_raw") or hasattr(model, "predict_grpc"):  # seldon-core calls those instead
            return None
        puid = prediction_ids.puid_for({"puid": request.puid} if request.puid else {})
        meta = {"puid": puid} if puid else {}
        sent = dict(meta)
        try:
            response = client_predict(model, request.features, request.names, meta=meta)
        except BadInput:
            return None
        metrics = client_custom_metrics(model, servicer.seldon_metrics, PREDICT_METRIC_METHOD_TAG, response.metrics)
        predictions = response.data
        if isinstance(predictions, list):
            predictions = np.array(predictions)
        # seldon-core's answer also carries what the model wrote into meta: built by seldon-core then.
        if meta != sent or not isinstance(predictions, np.ndarray) or predictions.dtype.kind not in "iuf":
            message = request.message()
            if puid:
                message.meta.puid = puid
            return construct_response(model, False, message, response.data, meta, metrics,
                                      response.tags).SerializeToString()
        meta_bytes = (_len_field(1, puid.encode()) if puid else b"") + self.meta_bytes(model, metrics, response.tags)
        names = list(client_class_names(model, predictions))
        return _len_field(2, meta_bytes) + _len_field(3, _data(request.kind, predictions, names))


def answering_plain_requests(predict, answers):
    def answer(self, request, context):
        if isinstance(request, PlainRequest):
            response = answers.answer(self, request)
            if response is not None:
                return response
            request = request.message()
        return predict(self, request, context)

    answer.seldon_way = predict  # what answers the requests it leaves (tests compare the two)
    return answer


def with_plain_predict(service, add_servicer):
    """prediction_pb2_grpc's add_<service>Servicer_to_server, with Predict read by read_request."""
    import grpc

    def add(servicer, server):
        handler = grpc.unary_unary_rpc_method_handler(
            servicer.Predict, request_deserializer=read_request, response_serializer=write_response)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(f"seldon.protos.{service}", {"Predict": handler}),))
        add_servicer(servicer, server)  # the other methods; Predict is found in the handler above first

    return add


def install():
    from seldon_core.proto import prediction_pb2_grpc
    from seldon_core.wrapper import SeldonModelGRPC

    SeldonModelGRPC.Predict = answering_plain_requests(SeldonModelGRPC.Predict, Answers())
    for service in ("Model", "Seldon"):
        name = f"add_{service}Servicer_to_server"
        setattr(prediction_pb2_grpc, name, with_plain_predict(service, getattr(prediction_pb2_grpc, name)))
