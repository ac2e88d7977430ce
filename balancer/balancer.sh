#!/usr/bin/env bash
# nginx in front of the replicas of `make scale`, as a process of this project (like Prometheus):
# REST on 127.0.0.1:9000 and gRPC on 127.0.0.1:5000, the article's URL, spread over the replicas'
# own ports (900i, 500i) by weight.
#   balancer/balancer.sh install               Debian's nginx-light if nginx is missing (apt)
#   balancer/balancer.sh start WEIGHTS         one weight per replica, comma-separated: 1,1,1 or 9,1
#   balancer/balancer.sh stop | status
# Config: balancer/nginx.conf.template; what it writes (config, pidfile, log) is under build/balancer/.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$PWD/build/balancer
say() { echo "[balancer] $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
  say "needs root for: $*"; return 1; fi; }

install() {
  command -v nginx >/dev/null && return
  local debs=(); for deb in build/debs/nginx*.deb build/debs/libnginx*.deb; do [ -e "$deb" ] && debs+=("$PWD/$deb"); done
  if [ ${#debs[@]} -gt 0 ]; then
    say "installing Debian's nginx-light from build/debs (the offline bundle)"
  else
    say "installing Debian's nginx-light (apt)"
    as_root apt-get update -qq >&2
    debs=(nginx-light)
  fi
  # policy-rc.d 101: Debian's package must not start its own nginx on :80; this project runs its own.
  as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >&2 \
    || { as_root rm -f /usr/sbin/policy-rc.d; say "apt could not install nginx: install nginx yourself and run make scale again"; exit 1; }
  as_root rm -f /usr/sbin/policy-rc.d
  command -v nginx >/dev/null || { say "the install did not provide nginx"; exit 1; }
}

running() { [ -f "$dir/nginx.pid" ] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; }

write_config() {  # WEIGHTS
  local rest="" grpc="" i=0 weight
  IFS=, read -ra weights <<<"$1"
  for weight in "${weights[@]}"; do
    i=$((i + 1))
    [[ "$weight" =~ ^[0-9]+$ ]] || { say "weights must be whole numbers, got '$weight' in '$1'"; exit 2; }
    [ "$weight" -gt 0 ] || continue  # weight 0: the replica takes no traffic
    # max_fails=1 fail_timeout=2s: a replica that failed once is left alone for 2 s, then tried again
    rest+="    server 127.0.0.1:900$i weight=$weight max_fails=1 fail_timeout=2s;"$'\n'
    grpc+="    server 127.0.0.1:500$i weight=$weight max_fails=1 fail_timeout=2s;"$'\n'
  done
  [ -n "$rest" ] || { say "no replica has a weight above 0 in '$1'"; exit 2; }
  mkdir -p "$dir/tmp"
  local user=""
  # As root, nginx's workers would run as nobody, who cannot write build/: they keep root's user.
  [ "$(id -u)" = 0 ] && user="user root;"
  REST="$rest" GRPC="$grpc" DIR="$dir" USER_LINE="$user" python3 - <<'PY'
import os
text = open("balancer/nginx.conf.template").read()
for key, value in {"@REPLICAS_REST@": os.environ["REST"].rstrip("\n"), "@REPLICAS_GRPC@": os.environ["GRPC"].rstrip("\n"),
                   "@DIR@": os.environ["DIR"], "@USER@": os.environ["USER_LINE"]}.items():
    text = text.replace(key, value)
open(os.path.join(os.environ["DIR"], "nginx.conf.new"), "w").write(text)
PY
  nginx -t -q -e stderr -p "$dir" -c "$dir/nginx.conf.new" || { say "nginx refused $dir/nginx.conf.new (above)"; exit 1; }
}

start() {  # WEIGHTS
  install
  write_config "$1"
  if running && cmp -s "$dir/nginx.conf.new" "$dir/nginx.conf"; then
    # Unchanged: no reload, whose old worker would close its clients' idle keep-alive connections.
    rm -f "$dir/nginx.conf.new"
    say "nginx already runs with weights $1: REST http://localhost:9000, gRPC localhost:5000"
  elif running; then
    mv "$dir/nginx.conf.new" "$dir/nginx.conf"
    kill -HUP "$(cat "$dir/nginx.pid")"  # re-read the configuration: new weights
    say "reloaded: weights $1"
  else
    mv "$dir/nginx.conf.new" "$dir/nginx.conf"
    nginx -e stderr -p "$dir" -c "$dir/nginx.conf" 2>>"$dir/error.log" \
      || { tail -n 5 "$dir/error.log" >&2; say "nginx did not start: is 127.0.0.1:9000 or :5000 taken ('ss -ltnp')? make stop frees them"; exit 1; }
    say "started nginx (weights $1): REST http://localhost:9000, gRPC localhost:5000"
  fi
}

stop() {
  running || { rm -f "$dir/nginx.pid"; return 0; }
  local pid; pid=$(cat "$dir/nginx.pid")
  kill -QUIT "$pid"  # graceful: calls in flight are answered first
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" || true
  say "stopped nginx"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-1,1,1}" ;;
  stop) stop ;;
  status) running && echo "nginx runs (pid $(cat "$dir/nginx.pid")): $(grep -c 'server 127.0.0.1:500' "$dir/nginx.conf") replica(s) on :9000 and :5000" \
            || { echo "the balancer is not running"; exit 1; } ;;
  *) echo "usage: $0 install | start WEIGHTS | stop | status" >&2; exit 2 ;;
esac
