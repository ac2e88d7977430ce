# The serving image: the model class, its artifacts, and seldon-core's Python wrapper.
# BASE_IMAGE defaults to the official slim Python; `make image` passes a locally built
# Debian bookworm base where no registry can be reached. Packages come from build/wheels,
# prepared on the host by scripts/build_wheelhouse.sh, so the build itself needs no network.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
COPY build/wheels /wheels
# install.txt pins every wheel with its sha256 (scripts/build_wheelhouse.sh checked the downloads
# against requirements.lock, then stripped their shared objects): pip refuses any file that differs.
RUN python3 -m venv --without-pip /opt/venv \
 && python3 "$(ls /wheels/pip-*.whl)/pip" --python /opt/venv/bin/python install -q \
      --no-index --find-links /wheels --no-compile --require-hashes -r /wheels/install.txt \
 && rm -rf /opt/venv/lib/python3*/site-packages/pip*
# Only what the server loads (scripts/prune_venv.py says what goes, and why; no tests, caches or
# headers either), and bytecode for what it imports, at the level the server runs with.
ENV PYTHONOPTIMIZE=2
COPY scripts/prune_venv.py scripts/serving_modules.txt /prune/
RUN /opt/venv/bin/python /prune/prune_venv.py /opt/venv/lib/python3.11/site-packages /prune/serving_modules.txt
# A prune that breaks the server fails the build here: every module the server imports must import,
# and both artifacts must load and serve through seldon-core's REST, metrics and gRPC entry points.
COPY DockerModel.py feedback_log.py keepalive_worker.py request_guard.py seldon_metrics_patch.py start_server.py /app/
COPY models/ /app/models/
RUN cd /app && PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 \
    /opt/venv/bin/python -W ignore::UserWarning /prune/prune_venv.py --check /prune/serving_modules.txt \
 && python3 /prune/prune_venv.py --stdlib-bytecode /stdlib-bytecode /prune/serving_modules.txt

FROM ${BASE_IMAGE}
ARG MODEL_VERSION=1.0.0
LABEL org.opencontainers.image.title="docker-model" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# SETUPTOOLS_USE_DISTUTILS=stdlib spares every start setuptools' distutils hook (0.4 s).
# PYTHONOPTIMIZE=2 (python -OO): bytecode without docstrings or asserts, and scipy.stats skips
# building its distributions' docstrings: a tenth less start-up (3.05 s -> 2.73 s, medians of 8
# starts) and 9 MB less image. The build's check above imports and serves at this level, and the
# kit's own code validates input with exceptions, never with assert.
# SKLEARN_ASSUME_FINITE=1: DockerModel.check_features refuses NaN and infinities before scikit-learn
# sees the rows, so scikit-learn's own check (about half of a one-row predict) is skipped.
# 2 workers x 1 thread, chosen with `make bench` on 2 cores: with one thread, each worker answers its
# keep-alive connections in turn in its main thread (keepalive_worker.py). Against 4 workers x 2
# threads (gunicorn's gthread): 15-25% more predictions/s at a lower p99. 3 workers take concurrent
# feedback about as fast but predict with a longer tail: each runnable process more on 2 cores
# waits its turn for a CPU.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=2 \
    SETUPTOOLS_USE_DISTUTILS=stdlib \
    SKLEARN_ASSUME_FINITE=1 \
    MODEL_PATH=/app/models/binary-lr.joblib \
    FEEDBACK_DB=/var/lib/docker-model/feedback.sqlite \
    GUNICORN_WORKERS=2 \
    GUNICORN_THREADS=1
COPY --from=build /opt/venv /opt/venv
# The base ships no bytecode (it stays small): this adds it for the standard-library modules the
# server imports, which it would otherwise compile at every start (0.7 s).
COPY --from=build /stdlib-bytecode/ /
WORKDIR /app
COPY DockerModel.py feedback_log.py keepalive_worker.py request_guard.py seldon_metrics_patch.py start_server.py /app/
COPY models/ /app/models/
# The serving class's own modules' bytecode too (PYTHONDONTWRITEBYTECODE: never written at run time),
# and the list of modules both of start_server.py's threads import, from this very environment.
RUN python3 -m compileall -q /app \
 && cd /app && python3 start_server.py --write-shared-imports \
 && mkdir -p /var/lib/docker-model && chown 8888:8888 /var/lib/docker-model
VOLUME /var/lib/docker-model
USER 8888:8888
# REST, gRPC, Prometheus exposition
EXPOSE 9000 5000 6000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/health/status', timeout=2)"]
# seldon-core-microservice DockerModel --service-type MODEL, with scikit-learn imported in a second
# thread while seldon-core is (start_server.py).
CMD ["python3", "/app/start_server.py", "DockerModel", "--service-type", "MODEL"]
