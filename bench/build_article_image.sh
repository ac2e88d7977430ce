#!/usr/bin/env bash
# Builds docker-model:article: the article's configuration, faithfully, on a machine with no image
# registry (the baseline `make bench` compares against). Idempotent; every step is skipped when
# its output is already there.
#   1. base image local/bullseye-python:3.9: debootstrap --variant=minbase --include=python3,python3-distutils
#      (python:3.9-slim has the whole standard library; Debian ships distutils apart, and pip 23 on
#      Python 3.9 imports it)
#      bullseye (Python 3.9, the article's), plus pip/setuptools/wheel as python:3.9-slim had them;
#   2. wheelhouse build/article-wheels: the article's requirements resolved BY A PYTHON 3.9
#      (a container from that base, host network, host CA bundle read-only, a modern pip run from
#      its wheel), sdists turned into wheels there too;
#   3. the image, from bench/article/Dockerfile (the article's, pip pointed at the wheelhouse
#      served on loopback for the build);
#   4. the models, trained by the article's own code inside that image (scikit-learn 1.0.2),
#      then the image rebuilt with them (the pip layer comes from the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
image=${ARTICLE_IMAGE:-docker-model:article}
base=${ARTICLE_BASE_IMAGE:-local/bullseye-python:3.9}
src=bench/article
tools=build/article-tools
wheels=build/article-wheels
ctx=build/article-context
models=build/article-models
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
# The fit depends on the CPU's BLAS kernel, not only on library versions: liblinear's trust-region
# Newton solver sums with scipy's OpenBLAS, whose AVX-512 (SkylakeX) kernel rounds differently from
# the AVX2 (Haswell) one. On an AVX-512 machine the article's code gives TP 302 FP 14 TN 173 FN 24;
# with the Haswell kernel (a typical laptop's) it gives the article's TP 303 FP 15 TN 172 FN 23.
train_coretype=${ARTICLE_TRAIN_OPENBLAS_CORETYPE-Haswell}
wheels_port=${ARTICLE_WHEELS_PORT:-18790}
# What python:3.9-slim shipped in late 2023, and a pip recent enough to resolve with --cert.
IMAGE_PIP=pip==23.0.1 IMAGE_SETUPTOOLS=setuptools==58.1.0 IMAGE_WHEEL=wheel==0.41.2
RESOLVER_PIP=pip==24.3.1
say() { echo "[article-image] $*" >&2; }

docker info >/dev/null 2>&1 || { say "no Docker engine answers"; exit 1; }
mkdir -p "$tools" "$wheels" "$models"

# --- 0. tool wheels (host; the host reaches the package registry) -----------------------------
for req in "$RESOLVER_PIP" "$IMAGE_PIP" "$IMAGE_SETUPTOOLS" "$IMAGE_WHEEL"; do
  name=${req%%==*}; ver=${req##*==}
  ls "$tools/$name-$ver-"*.whl >/dev/null 2>&1 \
    || python3 -m pip download -q --no-deps --only-binary :all: -d "$tools" "$req"
done
resolver_whl=$(ls "$tools"/pip-24.3.1-*.whl)

# --- 1. base image -------------------------------------------------------------------------------
if ! docker image inspect "$base" >/dev/null 2>&1; then
  rootfs=$(mktemp -d /tmp/bullseye-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  bash image/debootstrap_rootfs.sh bullseye "$rootfs"
  # pip, setuptools and wheel in /usr/local, where python:3.9-slim has them (`pip` on PATH).
  mkdir -p "$rootfs/tmp/tools"
  cp "$tools"/pip-23.0.1-*.whl "$tools"/setuptools-58.1.0-*.whl "$tools"/wheel-0.41.2-*.whl "$rootfs/tmp/tools/"
  chroot "$rootfs" /bin/sh -c 'python3 "$(ls /tmp/tools/pip-23.0.1-*.whl)/pip" install -q --no-index --no-cache-dir \
      --disable-pip-version-check /tmp/tools/*.whl && ln -sf python3 /usr/bin/python && rm -rf /tmp/tools'
  rm -rf "$rootfs"/usr/share/{doc,man,info,locale} "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  say "importing as $base"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    -c 'CMD ["python3"]' - "$base" >/dev/null
  rm -rf "$rootfs"; trap - EXIT
fi

# --- 2. wheelhouse, resolved by Python 3.9 -------------------------------------------------------
stamp=$wheels/.done-$(cat "$src/requirements.txt" "$src/wheel-constraints.txt" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "resolving the article's requirements with Python 3.9 (container from $base, host network)"
  rm -rf "$wheels"; mkdir -p "$wheels"
  docker run --rm --network host \
    -v "$ca":/ca.crt:ro -v "$PWD/$tools":/tools:ro -v "$PWD/$src":/src:ro -v "$PWD/$wheels":/wheels \
    -e PIP_CERT=/ca.crt -e PIP_DISABLE_PIP_VERSION_CHECK=1 -e PIP_ROOT_USER_ACTION=ignore \
    "$base" /bin/sh -ec "
      # PIP_CERT, not --cert: pip's build-isolation subprocesses (sdists' metadata) must see it too
      pip_() { python3 /tools/$(basename "$resolver_whl")/pip \"\$@\"; }
      pip_ download -q -d /wheels -r /src/requirements.txt -c /src/wheel-constraints.txt
      for sdist in /wheels/*.tar.gz /wheels/*.zip; do
        [ -e \"\$sdist\" ] || continue
        pip_ wheel -q --no-deps -w /wheels \"\$sdist\" && rm \"\$sdist\"
      done
      chmod -R a+rX /wheels"
  touch "$stamp"
fi

# --- 3. build context and image ------------------------------------------------------------------
serve_wheels() {
  python3 -m http.server --bind 127.0.0.1 --directory "$wheels" "$wheels_port" >/dev/null 2>&1 &
  http_pid=$!
  trap 'kill $http_pid 2>/dev/null || true' EXIT
  for _ in $(seq 50); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$wheels_port/', timeout=1)" 2>/dev/null && return; sleep 0.1; done
  say "could not serve the wheelhouse on 127.0.0.1:$wheels_port (port taken? set ARTICLE_WHEELS_PORT)"; exit 1
}
build() {
  local old; old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  rm -rf "$ctx"; mkdir -p "$ctx/models"
  cp "$src/Dockerfile" "$src/DockerModel.py" "$src/requirements.txt" "$ctx/"
  cp "$models"/*.joblib "$ctx/models/" 2>/dev/null || true
  docker build -q --network host --build-arg BASE_IMAGE="$base" \
    --build-arg WHEELS_URL="http://127.0.0.1:$wheels_port/" -t "$image" "$ctx" >/dev/null
  # the image it replaces, if nothing else uses it (never a global prune: other work shares the engine)
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
}
start=$(date +%s)
serve_wheels
build
if ! ls "$models"/.trained-in-article-image >/dev/null 2>&1; then
  say "training the article's models inside $image (its code, its scikit-learn)"
  rm -f "$models"/*.joblib
  docker run --rm -e OPENBLAS_CORETYPE="$train_coretype" -v "$PWD/$models":/app/models \
    -v "$PWD/$src":/train:ro "$image" python /train/train_report.py | tee "$models/training.txt" >&2
  touch "$models/.trained-in-article-image"
  build
fi
size=$(docker image inspect -f '{{.Size}}' "$image")
say "$image ready ($(( size / 1000000 )) MB; $(( $(date +%s) - start )) s)"
