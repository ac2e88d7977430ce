# The serving image: the article's model class, its artifacts and seldon-core's Python wrapper.
# `make image` builds it (image/build.sh). Packages come from build/wheels, downloaded on the host
# with their hashes checked (image/wheelhouse.sh), so the build needs no network. BASE_IMAGE is the
# official slim Python; where no registry answers, `make image` passes a Debian bookworm base it
# builds itself (image/base_image.sh).
ARG BASE_IMAGE=python:3.11-slim

# --- Stage 1, the environment: every package from the wheelhouse, then slimmed (image/) ----------
FROM ${BASE_IMAGE} AS environment
COPY build/wheels /wheels
RUN python3 -m venv --without-pip /opt/venv \
 && python3 "$(ls /wheels/pip-*.whl)/pip" --python /opt/venv/bin/python install -q \
      --no-index --find-links /wheels --no-compile --require-hashes -r /wheels/install.txt
# Slimming: only what the server loads stays, with its bytecode (image/prune_venv.py says what goes
# and why: 40% of the environment); the server is started and called here, so a prune that breaks
# it fails the build.
COPY image/prune_venv.py image/serving_modules.txt /slim/
COPY DockerModel.py /app/
COPY serving/ /app/serving/
COPY models/ /app/models/
RUN PYTHONOPTIMIZE=2 /opt/venv/bin/python /slim/prune_venv.py /opt/venv /app /slim/serving_modules.txt

# --- Stage 2, the serving image ------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG MODEL_VERSION=1.0.0
LABEL org.opencontainers.image.title="docker-model" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=environment /opt/venv /opt/venv
# The bytecode stage 1 compiled for the standard-library modules the server imports.
COPY --from=environment /slim/stdlib/ /
# Python runs at -OO: the bytecode stage 1 compiled at that level, without docstrings or asserts
# (the kit validates input with exceptions, never with assert).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=2 \
    MODEL_PATH=/app/models/binary-lr.joblib \
    FEEDBACK_DB=/var/lib/docker-model/feedback.sqlite \
    GUNICORN_WORKERS=2 \
    GUNICORN_THREADS=1
WORKDIR /app
COPY --from=environment /app /app
# The feedback log lives on a volume, written by the non-root user the server runs as.
RUN mkdir -p /var/lib/docker-model && chown 8888:8888 /var/lib/docker-model
VOLUME /var/lib/docker-model
USER 8888:8888
# REST, gRPC, Prometheus exposition
EXPOSE 9000 5000 6000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/health/status', timeout=2)"]
# seldon-core-microservice DockerModel --service-type MODEL, with the kit's tuning applied first
# (serving/tuning; SERVING_TUNING=off: stock seldon-core).
CMD ["python3", "-m", "serving", "DockerModel", "--service-type", "MODEL"]
