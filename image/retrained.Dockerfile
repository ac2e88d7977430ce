# A new version of the serving image, serving a retrained model: the current image (BASE_IMAGE) with
# the models folder kit.retraining wrote copied over /app/models, and MODEL_PATH at the new artifact.
# kit.retraining.build_image builds it (make retrain); the build context is that folder's parent.
ARG BASE_IMAGE=docker-model:1.0.0
FROM ${BASE_IMAGE}
ARG MODELS=models
ARG MODEL_FILE
ARG IMAGE_VERSION
LABEL org.opencontainers.image.version="${IMAGE_VERSION}"
# Copied root-owned with the files' own mode, 0644 (kit.retraining sets it): the server's user 8888,
# which the base image runs as, reads them and cannot change them. Files of the base image's
# /app/models stay; metadata.json, which lists them all, is replaced.
COPY ${MODELS}/ /app/models/
ENV MODEL_PATH=/app/models/${MODEL_FILE}
