"""Prediction ids (Seldon's `meta.puid`), and which replica made each prediction.

On Kubernetes Seldon's executor gives every prediction a puid; with no executor in front, the server
gives one (serving/tuning/prediction_ids.py). A puid this server gives ends with the name of its
replica (REPLICA, set per replica in deploy/compose.scale.yml), so that feedback reaching another
replica can be handed to the one whose feedback log holds its prediction (serving/peers.py).
"""
import os
import secrets

REPLICA = os.environ.get("REPLICA", "")
# Every replica a puid may name, comma-separated: a puid naming another is refused, not chased.
PEERS = [p for p in os.environ.get("PEERS", "").split(",") if p]
assigning = False  # set by the tuning step prediction_ids once installed


def new_puid():
    return f"{secrets.token_hex(10)}.{REPLICA}" if REPLICA else secrets.token_hex(10)


def puid_for(meta):
    """The request's own puid, else a new one if this server gives them, else None."""
    given = meta.get("puid") if isinstance(meta, dict) else None
    return given or (new_puid() if assigning else None)


def replica_of(puid):
    """The replica a puid names ('' for a puid from elsewhere: Seldon's executor, the client)."""
    _, dot, replica = puid.rpartition(".")
    return replica if dot and replica in PEERS else ""
