"""Everything the served model needs beyond the article's class (DockerModel.py):

    validation.py     what a valid request holds; BadInput, answered 400 with what is wrong
    artifacts.py      the model artifact, loaded only if it matches models/metadata.json
    feedback_log.py   the durable feedback log (SQLite, WAL) and the confusion counts from it
    metrics.py        what DockerModel.metrics() reports, exact over every worker
    drift.py          the drift monitor: recent prediction rows against the training rows
    scraped.py        what the metrics page reads when scraped (drift, the log's disk)
    peers.py, prediction_ids.py, feedback_message.py   feedback counted once across replicas
    request_guard.py  malformed REST requests refused with a 4xx before seldon-core parses them
    __main__.py       the server's start: `python3 -m serving DockerModel --service-type MODEL`
    tuning/           every adjustment of other libraries: SERVING_TUNING=on|off|steps
"""
