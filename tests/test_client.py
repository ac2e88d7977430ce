"""kit.client: a kept-alive connection is reused only while the server still keeps it (the server
closes one idle for 2 s; a request sent as it closes would fail with "Remote end closed connection")."""
import http.server
import json
import threading
import time

import pytest

from kit import client


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections stay open between requests

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"data": {"ndarray": [0]}, "port": self.client_address[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_connection_is_reused_within_the_idle_limit_and_not_after(server):
    model = client.ModelClient(server, timeout=5)
    ports = [model.predict([[0.0]])["port"] for _ in range(3)]
    assert len(set(ports)) == 1  # back to back: one kept-alive connection
    time.sleep(client.REUSE_IDLE_SECONDS + 0.2)
    after_idle = model.predict([[0.0]])["port"]
    assert after_idle != ports[0]  # idle past the limit: a new connection
    assert model.predict([[0.0]])["port"] == after_idle

