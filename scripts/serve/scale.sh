#!/usr/bin/env bash
# Starts REPLICAS (1-3) replicas of the model with WORKERS gunicorn workers each, from
# deploy/compose.scale.yml, waits until each answers, and puts the balancer (balancer/balancer.sh,
# nginx) in front of them on the article's ports: REST 9000, gRPC 5000. Or stops them all.
#   scripts/serve/scale.sh up [REPLICAS] [WORKERS] | down | reset
# WEIGHTS=3,1 (one per replica) splits the traffic unevenly; the default is even.
# MODELS=binary-lr.joblib,binary-percept.joblib (one artifact of models/ per replica): an A/B test.
# IMAGES=docker-model:1.0.0,docker-model:1.0.0-retrained-<sha> (one per replica): a canary of a new
# image version (make retrain), whose MODELS entry names the artifact it carries.
# Replicas beyond REPLICAS that run are stopped (their volumes are kept).
set -euo pipefail
cd "$(dirname "$0")/../.."
export IMAGE=${IMAGE:-docker-model:$(cat VERSION)}
compose=(docker-compose -p docker-model-scale -f deploy/compose.scale.yml)
say() { echo "[scale] $*" >&2; }

case "${1:-up}" in
  up)
    replicas=${2:-3}; export WORKERS=${3:-2}
    [[ "$replicas" =~ ^[1-3]$ ]] || { say "REPLICAS must be 1, 2 or 3 (deploy/compose.scale.yml defines three)"; exit 2; }
    docker image inspect "$IMAGE" >/dev/null 2>&1 || { say "no image $IMAGE: run 'make image' first"; exit 1; }
    if [ "$(docker ps -q -f name=^docker-model$)" ]; then
      say "stopping the single container of make serve: the replicas answer on :9000 now (its feedback volume is kept)"
      bash scripts/serve/serve.sh stop
    fi
    services=(); for i in $(seq 1 "$replicas"); do services+=("r$i"); done
    images=()
    if [ -n "${IMAGES:-}" ]; then
      IFS=, read -ra images <<<"$IMAGES"
      [ ${#images[@]} = "$replicas" ] || { say "IMAGES=$IMAGES must name one image per replica ($replicas)"; exit 2; }
    fi
    for i in 1 2 3; do
      image=${images[$((i - 1))]:-$IMAGE}
      docker image inspect "$image" >/dev/null 2>&1 || { say "no image $image: make image, or make retrain for a retrained one"; exit 1; }
      export "IMAGE_R$i=$image"
    done
    # compose sets each replica's MODEL_PATH: another image's own artifact must be named.
    if [ ${#images[@]} -gt 0 ] && [ -z "${MODELS:-}" ] && [ "$(printf '%s\n' "${images[@]}" | sort -u)" != "$IMAGE" ]; then
      say "IMAGES=$IMAGES runs another image version: name each replica's artifact too, MODELS=binary-lr.joblib,<its artifact>"; exit 2
    fi
    if [ -n "${MODELS:-}" ]; then
      IFS=, read -ra models <<<"$MODELS"
      [ ${#models[@]} = "$replicas" ] || { say "MODELS=$MODELS must name one artifact per replica ($replicas)"; exit 2; }
      for i in $(seq 1 "$replicas"); do
        # Another image carries its own models (the replica's start checks the artifact against them).
        if [ "${images[$((i - 1))]:-$IMAGE}" = "$IMAGE" ] && [ ! -f "models/${models[$((i - 1))]}" ]; then
          say "no models/${models[$((i - 1))]}: MODELS names files of models/ (or of the replica's image, with IMAGES)"; exit 2
        fi
        export "MODEL_R$i=${models[$((i - 1))]}"
      done
    fi
    extra=(); for i in $(seq $((replicas + 1)) 3); do extra+=("r$i"); done
    if [ ${#extra[@]} -gt 0 ] && [ -n "$("${compose[@]}" ps -q "${extra[@]}" 2>/dev/null)" ]; then
      say "stopping ${extra[*]}: REPLICAS=$replicas (their feedback volumes are kept)"
      "${compose[@]}" stop "${extra[@]}" 2>&1 | grep -v "^$" >&2 || true
    fi
    # A replica whose settings (MODELS, WORKERS, the image) changed is created again, its volume kept.
    say "\$ ${compose[*]} up -d ${services[*]}"
    "${compose[@]}" up -d "${services[@]}" 2>&1 | grep -v "^$" >&2 || true
    for i in $(seq 1 "$replicas"); do
      for _ in $(seq 1 150); do
        curl -fs "http://127.0.0.1:900$i/health/status" >/dev/null 2>&1 && break
        sleep 0.2
      done
      curl -fs "http://127.0.0.1:900$i/health/status" >/dev/null \
        || { docker logs --tail 20 "docker-model-r$i" >&2; say "replica $i did not become healthy"; exit 1; }
      say "replica $i: REST http://localhost:900$i, metrics http://localhost:600$i/metrics ($WORKERS workers)"
    done
    weights=${WEIGHTS:-$(printf '1,%.0s' $(seq 1 "$replicas") | sed 's/,$//')}
    [ "$(tr ',' '\n' <<<"$weights" | wc -l)" = "$replicas" ] \
      || { say "WEIGHTS=$weights must give one weight per replica ($replicas)"; exit 2; }
    bash balancer/balancer.sh start "$weights"
    ;;
  down) bash balancer/balancer.sh stop; "${compose[@]}" down 2>&1 | grep -v "^$" >&2 || true ;;
  reset) bash balancer/balancer.sh stop; "${compose[@]}" down -v 2>&1 | grep -v "^$" >&2 || true ;;
  *) echo "usage: $0 up [REPLICAS] [WORKERS] | down | reset" >&2; exit 2 ;;
esac
