#!/usr/bin/env bash
# Starts, stops or reports the model server on the article's ports: REST 9000, gRPC 5000,
# Prometheus 6000. In Docker (container docker-model, feedback log on the volume
# docker-model-feedback) where an engine answers; otherwise from venvs/serving, same class, same ports.
#   scripts/serve/serve.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${IMAGE:-docker-model:$(cat VERSION)}
name=${CONTAINER:-docker-model}
volume=${FEEDBACK_VOLUME:-docker-model-feedback}
workers=${GUNICORN_WORKERS:-2}
tuning=${SERVING_TUNING:-on}  # serving/tuning: on, off, or the steps to apply
local_pid=build/local-server.pid
say() { echo "[serve] $*" >&2; }

engine() { docker info >/dev/null 2>&1; }
healthy() { python3 - "$@" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:9000/health/status", timeout=2).read()
except Exception:
    sys.exit(1)
PY
}
wait_ready() {
  for _ in $(seq 1 150); do
    healthy && return 0
    sleep 0.2
  done
  return 1
}

# :9000 is answered either by this server or by the balancer of `make scale`: starting one stops the other.
stop_scaled_out() {
  if bash balancer/balancer.sh status >/dev/null 2>&1; then
    say "stopping make scale's balancer and replicas: one server answers on :9000 now (their volumes are kept)"
    bash scripts/serve/scale.sh down
  fi
}

start_container() {
  stop_scaled_out
  if [ "$(docker ps -q -f "name=^${name}$")" ]; then
    wait_ready && { say "$name is already running"; return; }
  fi
  docker image inspect "$image" >/dev/null 2>&1 || { say "no image $image: run 'make image' first"; exit 1; }
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --init --name "$name" \
    -p 127.0.0.1:9000:9000 -p 127.0.0.1:5000:5000 -p 127.0.0.1:6000:6000 \
    -v "$volume":/var/lib/docker-model -e GUNICORN_WORKERS="$workers" -e SERVING_TUNING="$tuning" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    "$image" >/dev/null
  if ! wait_ready; then
    docker logs --tail 30 "$name" >&2 || true
    say "$name did not become healthy in 30 s (its log is above)"; exit 1
  fi
}

start_local() {
  say "no Docker engine answers: serving the same class from venvs/serving instead"
  [ -x venvs/serving/bin/python ] || { say "no venvs/serving: run 'make setup' first"; exit 1; }
  command -v setsid >/dev/null || { say "serving without Docker needs setsid (util-linux: Linux): start Docker (Docker Desktop on macOS)"; exit 1; }
  if healthy; then say "a server already answers on :9000"; return; fi
  mkdir -p build
  # A session of its own, so that stop can end the whole process group (gRPC and metrics children too).
  # The same settings as the image's (Dockerfile).
  FEEDBACK_DB=${FEEDBACK_DB:-build/feedback.sqlite} GUNICORN_WORKERS="$workers" GUNICORN_THREADS=1 \
    SERVING_TUNING="$tuning" setsid nohup venvs/serving/bin/python -m serving DockerModel --service-type MODEL \
    >build/local-server.log 2>&1 &
  echo $! > "$local_pid"
  wait_ready || { tail -n 30 build/local-server.log >&2; say "the local server did not start (log above)"; exit 1; }
}

stop() {
  if engine && [ "$(docker ps -aq -f "name=^${name}$")" ]; then
    docker stop -t 20 "$name" >/dev/null && docker rm "$name" >/dev/null 2>&1 || true
    say "stopped $name"
  fi
  if [ -f "$local_pid" ]; then
    local group; group=$(cat "$local_pid")
    kill -TERM -- "-$group" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$group" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$group" 2>/dev/null || true
    rm -f "$local_pid"
    say "stopped the local server"
  fi
}

case "${1:-start}" in
  start)
    if engine; then start_container; else start_local; fi
    say "model answers on http://localhost:9000/api/v1.0/predictions (REST), localhost:5000 (gRPC),"
    say "Prometheus metrics on http://localhost:6000/metrics"
    ;;
  stop) stop ;;
  status) healthy && echo "serving on :9000" || { echo "nothing answers on :9000"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
