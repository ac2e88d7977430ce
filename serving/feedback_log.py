"""The durable feedback log, and the confusion-matrix counts derived from it.

One SQLite file (WAL mode) per server: every worker process appends to it, and a feedback row is
committed before the call is answered, so a killed worker or container loses nothing that was
acknowledged. The `totals` table holds the running confusion matrix of each model version in the log;
`exported` records which part of it each process has already handed to Prometheus, so that the
per-process counters add up to the totals exactly once.
"""
import contextlib
import fcntl
import json
import mmap
import os
import sqlite3
import struct
import threading
import time

OUTCOMES = ("tp", "fp", "tn", "fn")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id            INTEGER PRIMARY KEY,
    received_at   REAL    NOT NULL,
    model_version TEXT    NOT NULL,
    features      TEXT    NOT NULL,
    prediction    INTEGER NOT NULL,
    truth         INTEGER NOT NULL,
    outcome       TEXT    NOT NULL
);
-- One row per feedback call that named its prediction (the puid of the response it carried), with
-- a digest of what it fed back: the same call again is recognised, another one for the same
-- prediction refused.
CREATE TABLE IF NOT EXISTS answered_calls (puid TEXT PRIMARY KEY, digest TEXT NOT NULL);
-- The running confusion matrix of each model version in the log, and which part of it each
-- process has handed to Prometheus.
CREATE TABLE IF NOT EXISTS totals (
    model_version TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (model_version, outcome)
);
CREATE TABLE IF NOT EXISTS exported (
    exporter      INTEGER NOT NULL,
    model_version TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (exporter, model_version, outcome)
);
"""


class AlreadyFedBack(ValueError):
    """Feedback for a prediction whose feedback was logged already, with other rows or labels."""


class LogUnwritable(OSError):
    """The log cannot be written (its disk is full, or it is read-only): nothing of the call was stored."""


FULL = "the disk holding the feedback log is full"
FREE_AGAIN = 1 << 20  # bytes free again after a full disk: room for the write-ahead log to grow


def _unwritable(err):
    """The LogUnwritable an SQLite error means, or None if it means something else."""
    text = str(err)
    if "full" in text:
        return LogUnwritable(f"{FULL} ({text})")
    if any(s in text for s in ("readonly", "disk I/O error", "unable to open")):
        return LogUnwritable(f"the feedback log cannot be written ({text})")
    return None


def outcome_of(prediction, truth):
    """'tp', 'fp', 'tn' or 'fn' for one binary prediction against its true label."""
    if truth == 1:
        return "tp" if prediction == 1 else "fn"
    return "fp" if prediction == 1 else "tn"


class Score:
    """Confusion-matrix counts of a binary classifier, as the article's class kept them."""

    def __init__(self, tp=0, fp=0, tn=0, fn=0):
        self.TP, self.FP, self.TN, self.FN = tp, fp, tn, fn

    def __repr__(self):
        return f"Score(TP={self.TP}, FP={self.FP}, TN={self.TN}, FN={self.FN})"


def ratios(counts):
    """Accuracy, precision, recall and F1 from confusion counts; 0.0 where a ratio is undefined."""
    tp, fp, tn, fn = (counts[o] for o in OUTCOMES)
    total = tp + fp + tn + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": (tp + tn) / total if total else 0.0,
        "precision": precision,
        "recall": recall,
        "f1_score": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


class _LastFailure:
    """When a write last failed and why, in memory shared by the processes forked after it is made
    (a full disk has no room to record it): cleared by the next write that commits."""

    def __init__(self):
        self._memory = mmap.mmap(-1, 512)  # MAP_SHARED: 8 bytes of time, then the reason

    def write(self, when, reason):
        text = reason.encode()[:500]
        self._memory[8:] = text.ljust(504, b"\0")
        self._memory[:8] = struct.pack("d", when)

    def clear(self):
        if self._memory[:8] != bytes(8):
            self._memory[:8] = bytes(8)

    def read(self):
        (when,) = struct.unpack("d", self._memory[:8])
        return when, self._memory[8:].rstrip(b"\0").decode(errors="replace")


class FeedbackLog:
    """Append-only feedback rows plus running totals, shared by all processes of one server."""

    def __init__(self, path):
        self.path = path
        self._failure = _LastFailure()
        self._lock = threading.Lock()
        self._pid = None
        self._conn = None
        self._writer_lock = None
        with self._locked(write=True) as conn:
            columns = [c[1] for c in conn.execute("PRAGMA table_info(totals)")]
            if columns and "model_version" not in columns:
                # A log of an earlier version of the kit, whose totals were not kept per model
                # version: they are counted again from its rows.
                conn.executescript("DROP TABLE totals; DROP TABLE IF EXISTS exported;" + _SCHEMA +
                                   "INSERT INTO totals SELECT model_version, outcome, COUNT(*) FROM feedback"
                                   " GROUP BY model_version, outcome;")
            conn.executescript(_SCHEMA)

    def _connect(self):
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        # One connection per process, shared by its threads (seldon's gRPC server calls the
        # model from a thread other than the one that built it); the lock serialises them.
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process or container being killed; only an operating
        # system crash can lose the last transactions.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _locked(self, write=False):
        """The connection, for this thread alone; with write=True, for this process alone too.

        Writers of other processes queue on a lock file: SQLite's own wait for a busy database
        sleeps 1 ms or more between attempts, so with two workers writing, a feedback call could
        spend more time asleep than working. The kernel hands a lock file over at once."""
        with self._lock:
            if self._pid != os.getpid():  # a forked worker must not reuse its parent's handles
                self._conn = self._connect()
                if self.path != ":memory:":
                    self._writer_lock = open(self.path + ".lock", "a")
                self._pid = os.getpid()
            if write and self._writer_lock is not None:
                fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
                try:
                    yield self._conn
                finally:
                    fcntl.flock(self._writer_lock, fcntl.LOCK_UN)
            else:
                yield self._conn

    @contextlib.contextmanager
    def _transaction(self):
        """A write transaction: committed if the block completes, rolled back otherwise.
        LogUnwritable when the disk is full or the file read-only: then nothing of it is stored."""
        with self._locked(write=True) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as err:
                unwritable = _unwritable(err)
                if unwritable is None:
                    raise
                self._failure.write(time.time(), str(unwritable))
                raise unwritable from err
            self._failure.clear()

    def writable(self):
        """None unless the last write of any process failed and nothing could be written since, else
        why: what /health/status and the metrics page say. A log whose disk was full counts as
        writable again once FREE_AGAIN bytes are free (a write of its own to find out would take
        from what little is left, and a small one can fit where a feedback call's pages do not)."""
        failed_at, reason = self._failure.read()
        if not failed_at:
            return None
        if reason.startswith(FULL) and self.free_bytes() >= FREE_AGAIN:
            return None
        return reason

    def free_bytes(self):
        if self.path == ":memory:":
            return FREE_AGAIN
        st = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        return st.f_bavail * st.f_frsize

    def append(self, features, predictions, truths, model_version, exporter=None, puid=None, digest=None):
        """Stores one feedback call (any number of rows) of one model version atomically; returns its
        outcome counts.
        With `exporter`, they are credited to it in the same transaction (see claim_unexported).
        With `puid` (and the `digest` of what is fed back), a call for that prediction is stored once:
        the same call again stores nothing and returns None; another one raises AlreadyFedBack."""
        now = time.time()
        rows, batch = [], dict.fromkeys(OUTCOMES, 0)
        for x, p, t in zip(features, predictions, truths):
            o = outcome_of(int(p), int(t))
            batch[o] += 1
            rows.append((now, model_version, json.dumps([float(v) for v in x]), int(p), int(t), o))
        with self._transaction() as conn:
            if puid is not None:
                if conn.execute("INSERT INTO answered_calls VALUES (?, ?) ON CONFLICT (puid) DO NOTHING",
                                (puid, digest)).rowcount == 0:
                    (first,) = conn.execute("SELECT digest FROM answered_calls WHERE puid = ?", (puid,)).fetchone()
                    if first != digest:
                        raise AlreadyFedBack(f"the prediction {puid} has had its feedback already, with other "
                                             "rows or labels: feedback is counted once per prediction")
                    return None
            conn.executemany(
                "INSERT INTO feedback (received_at, model_version, features, prediction, truth, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?)", rows)
            counts = {(model_version, o): n for o, n in batch.items() if n}
            conn.executemany("INSERT INTO totals VALUES (?, ?, ?) ON CONFLICT (model_version, outcome)"
                             " DO UPDATE SET n = n + excluded.n", [(v, o, n) for (v, o), n in counts.items()])
            if exporter is not None:
                self._credit(conn, exporter, counts)
        return batch

    def version(self):
        """Changes whenever any process or thread commits to the log (equal versions: same contents)."""
        with self._locked() as conn:
            # data_version moves with other connections' commits, total_changes with this one's.
            return self._pid, conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes

    def totals(self):
        """The confusion matrix of everything in the log, every model version together."""
        with self._locked() as conn:
            counts = dict(conn.execute("SELECT outcome, SUM(n) FROM totals GROUP BY outcome").fetchall())
        return {o: counts.get(o, 0) for o in OUTCOMES}

    def totals_by_model(self):
        """{(model version, outcome): rows} of everything in the log."""
        with self._locked() as conn:
            return {(v, o): n for v, o, n in conn.execute("SELECT model_version, outcome, n FROM totals")}

    def claim_unexported(self, exporter):
        """The part of the totals no live exporter has reported yet, {(model version, outcome): rows},
        now credited to `exporter`."""
        with self._locked() as conn:
            if not any(self._pending(conn).values()):
                return {}
        with self._transaction() as conn:
            pending = self._pending(conn)  # again, under the write lock
            self._credit(conn, exporter, pending)
        return pending

    @staticmethod
    def _credit(conn, exporter, counts):
        conn.executemany("INSERT INTO exported VALUES (?, ?, ?, ?)"
                         " ON CONFLICT (exporter, model_version, outcome) DO UPDATE SET n = n + excluded.n",
                         [(exporter, v, o, n) for (v, o), n in counts.items() if n])

    @staticmethod
    def _pending(conn):
        return {(v, o): n for v, o, n in conn.execute(
            "SELECT t.model_version, t.outcome, t.n - COALESCE((SELECT SUM(e.n) FROM exported e"
            " WHERE e.model_version = t.model_version AND e.outcome = t.outcome), 0) FROM totals t") if n}

    def release(self, exporter):
        """An exporter's counters are gone (its process ended cleanly): its share is unclaimed again."""
        with self._locked(write=True) as conn:
            conn.execute("DELETE FROM exported WHERE exporter = ?", (exporter,))

    def forget_exports(self):
        """A new server process starts with empty counters: everything is to be exported again."""
        with self._locked(write=True) as conn:
            conn.execute("DELETE FROM exported")

    def rows(self):
        """Every feedback row, oldest first, as dicts (the retraining data set)."""
        with self._locked() as conn:
            cur = conn.execute("SELECT id, received_at, model_version, features, prediction, truth,"
                               " outcome FROM feedback ORDER BY id")
            names = [c[0] for c in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]


if __name__ == "__main__":
    # `docker exec CONTAINER python3 -m serving.feedback_log`: a served model's log, one JSON row a line.
    for row in FeedbackLog(os.environ["FEEDBACK_DB"]).rows():
        print(json.dumps(row))
