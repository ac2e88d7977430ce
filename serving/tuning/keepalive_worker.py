"""The gunicorn worker of the REST server when each worker has one thread (GUNICORN_THREADS=1, the
image's default).

seldon-core runs gunicorn's `sync` worker for one thread, which closes the connection after every
response, and `gthread` for more, whose main thread waits on the connections and hands each request
to a pool thread and back. This worker keeps gthread's handling of connections (one poller, idle
keep-alive connections closed after `keepalive` seconds) but answers each request in its main
thread, one at a time, as an event loop does: no hand-off between threads, and no contention for
the GIL between them. Measured with `make bench` on 2 cores, 2 workers of this kind answer 15-25%
more predictions per second than 4 workers x 2 threads of gthread, at a lower p99.

A request is read only once its first bytes have arrived, its body is read to the end before the
worker turns to other connections, and a client that stops sending or reading in the middle of a
request loses its connection after STALLED_CLIENT_SECONDS without a byte: it holds up the other
connections of the worker no longer than that. A SIGTERM wakes the worker at once: it finishes the
request in hand and exits, rather than at the end of its poller's 1 s wait.
"""
import os
import selectors
import time
from concurrent import futures

from gunicorn.workers.gthread import TConn, ThreadWorker

STALLED_CLIENT_SECONDS = 5
# What is left of a refused body is read and dropped, up to these bounds, before the connection is
# kept or closed: a client that sends its whole body before reading (the standard library's urllib)
# then reads the 413 instead of meeting a reset. Past them the connection is closed.
DRAIN_BYTES = 128 * 1024 * 1024
DRAIN_SECONDS = 5


class KeepAliveWorker(ThreadWorker):
    def run(self):
        # Python writes every signal this worker receives to PIPE (gunicorn's signal.set_wakeup_fd).
        self.poller.register(self.PIPE[0], selectors.EVENT_READ, self._signalled)
        super().run()

    @staticmethod
    def _signalled(wakeup_fd):
        """The handler (SIGTERM's sets alive to False) has run: empty the pipe, the loop does the rest."""
        try:
            os.read(wakeup_fd, 64)
        except BlockingIOError:
            pass

    def accept(self, server, listener):
        try:
            sock, client = listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up
        self.nr_conns += 1
        # Into the poller as a kept-alive connection: its request is read once it has arrived.
        self.finish_request(_handled(True, TConn(self.cfg, sock, client, server)))

    def enqueue_req(self, conn):
        conn.init()
        conn.sock.settimeout(STALLED_CLIENT_SECONDS)
        keepalive, conn = self.handle(conn)  # not kept alive after a timeout or an error
        drained = self._discard_unread_body(conn)
        # gthread's finish_request keeps the connection alive (back in the poller) or closes it.
        self.finish_request(_handled(keepalive and drained, conn))

    @staticmethod
    def _discard_unread_body(conn):
        """Reads what is left of a request body the application did not read (one refused as too
        large, say), as gunicorn's parser would before the next request; but now, so that the
        connection becomes readable again only when that request comes, rather than waiting for it
        here, and within DRAIN_BYTES and DRAIN_SECONDS. False if the client stalled, broke off or
        sent more than that."""
        deadline, left = time.monotonic() + DRAIN_SECONDS, DRAIN_BYTES
        try:
            body = conn.parser.mesg.body
            while left > 0 and time.monotonic() < deadline:
                chunk = body.read(65536)
                if not chunk:
                    return True
                left -= len(chunk)
        except Exception:  # noqa: BLE001 - a timeout, a reset, a malformed chunk, no request: it ends
            return False
        return False

    def murder_keepalived(self):
        """gthread's, except that a connection whose next request arrived while this worker was
        answering another, past its keep-alive time, is served rather than closed."""
        now = time.time()
        expired = []
        while self._keep and self._keep[0].timeout <= now:
            expired.append(self._keep.popleft())
        if not expired:
            return
        arrived = {key.fileobj for key, _ in self.poller.select(0)}
        for conn in reversed(expired):
            if conn.sock in arrived:
                self._keep.appendleft(conn)  # still registered: the next select hands it over
            else:
                self.nr_conns -= 1
                self.poller.unregister(conn.sock)
                conn.close()


def _handled(keepalive, conn):
    """A request's outcome as gthread's finish_request takes it: a done future of (keepalive, conn)."""
    done = futures.Future()
    done.set_result((keepalive, conn))
    return done


def install():
    """seldon-core's REST server runs KeepAliveWorker where it would run gunicorn's sync worker."""
    from seldon_core.gunicorn_utils import UserModelApplication

    original_load_config = UserModelApplication.load_config

    def load_config(self):
        original_load_config(self)
        if self.cfg.threads == 1:
            self.cfg.set("worker_class", f"{__name__}.{KeepAliveWorker.__name__}")

    UserModelApplication.load_config = load_config
