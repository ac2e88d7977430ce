"""A REST response leaves in one write, its headers with its body.

gunicorn 20.1 writes a response's headers and then its body in two calls: a replica killed between
them leaves the balancer with headers and no body, which it can no longer send to another replica,
and the client sees a broken response instead of a prediction that failed over. In one write, a
response is either whole or not begun. One system call fewer per response, too.
"""


def install():
    from gunicorn import util
    from gunicorn.http.wsgi import Response

    write_separately = Response.write

    def write(self, arg):
        if self.headers_sent or self.chunked or not isinstance(arg, bytes):
            return write_separately(self, arg)
        lines = self.default_headers()
        lines.extend("%s: %s\r\n" % (k, v) for k, v in self.headers)
        head = util.to_bytestring("%s\r\n" % "".join(lines), "latin-1")
        body = arg if self.response_length is None else arg[:max(self.response_length - self.sent, 0)]
        self.headers_sent = True
        self.sent += len(body)
        util.write(self.sock, head + body)

    Response.write = write
