#!/usr/bin/env bash
# Prometheus (and a blackbox exporter that times real prediction requests) for the served model,
# as local processes of this project: nothing of Debian's system services is used. They come from
# (scripts/environments/platforms.py prometheus_source): the user's own on PATH (Homebrew's, a release
# archive's), else Debian's packages installed here with apt, else their official images.
#   monitoring/monitor.sh install   make sure one of those is there (apt, or a pull of the images)
#   monitoring/monitor.sh start     install if needed, discover targets, start both, wait until ready
#   monitoring/monitor.sh stop      stop what `start` started (by pidfile)
#   monitoring/monitor.sh status    say what runs, and which targets are scraped
#   monitoring/monitor.sh refresh   rewrite the target lists now (make stop / make scale call it)
#   monitoring/monitor.sh reload    re-read monitoring/*.yml (rules, config) without a restart
# Config: monitoring/prometheus.yml, rules in monitoring/rules/. Everything it writes (pidfiles,
# logs, TSDB, target lists) is under build/prometheus/. Prometheus listens on 127.0.0.1:9090
# (PROMETHEUS_PORT), the exporter on 127.0.0.1:9115. Targets: monitoring/targets.py.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
dir=build/prometheus
port=${PROMETHEUS_PORT:-9090}
bb_port=9115
refresh_every=${MONITOR_REFRESH_SECONDS:-5}
# The releases Debian 12 packages, which the rules' promtool tests are run with.
images=(prom/prometheus:v2.42.0 prom/blackbox-exporter:v0.23.0)
containers=(kit-prometheus kit-blackbox-exporter)
say() { echo "[monitor] $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
  say "needs root for: $*"; return 1; fi; }

# Debian's packages start their own service on install where a service manager allows it
# (systemd, or sysvinit without a policy-rc.d that forbids it): it would hold :9090 and scrape
# localhost forever. Stop and disable those; this project runs its own processes instead.
quiet_system_services() {
  local svc
  for svc in prometheus prometheus-blackbox-exporter; do
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
      if systemctl is-enabled --quiet "$svc" 2>/dev/null || systemctl is-active --quiet "$svc" 2>/dev/null; then
        as_root systemctl disable --now "$svc" >/dev/null 2>&1 && say "stopped and disabled the system service $svc"
      fi
    elif [ -x "/etc/init.d/$svc" ]; then
      if /etc/init.d/"$svc" status >/dev/null 2>&1; then
        as_root /etc/init.d/"$svc" stop >/dev/null 2>&1 && say "stopped the system service $svc"
      fi
      if ls /etc/rc[2-5].d/S*"$svc" >/dev/null 2>&1; then
        as_root update-rc.d "$svc" disable >/dev/null 2>&1 && say "disabled the system service $svc"
      fi
    fi
  done
}

# Debian names the exporter prometheus-blackbox-exporter, its release archive and Homebrew blackbox_exporter.
exporter_binary() { command -v prometheus-blackbox-exporter || command -v blackbox_exporter; }
installed() { command -v prometheus >/dev/null && command -v promtool >/dev/null && exporter_binary >/dev/null; }

# The offline bundle's packages (make setup BUNDLE=...) this system lacks: installed from files, no network.
bundled_debs() {
  local deb
  for deb in build/debs/*.deb; do
    [ -e "$deb" ] || continue
    dpkg-query -W -f='${Status}' "$(basename "${deb%%_*}")" 2>/dev/null | grep -q ' installed$' || echo "$PWD/$deb"
  done
}

install_debian() {
  local debs=() deb
  while read -r deb; do debs+=("$deb"); done < <(bundled_debs)  # not mapfile: macOS's bash 3.2 lacks it
  if [ ${#debs[@]} -gt 0 ]; then
    say "installing Debian's prometheus and prometheus-blackbox-exporter from build/debs (the offline bundle)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >&2
  else
    say "installing Debian's prometheus and prometheus-blackbox-exporter (apt)"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-blackbox-exporter >&2
  fi
  quiet_system_services
  installed || { say "the install did not provide prometheus, promtool and the exporter"; exit 1; }
}

# Sets prometheus_cmd and exporter_cmd, installing or pulling first where needed.
install() {
  local source
  source=$(python3 scripts/environments/platforms.py prometheus "${images[@]}") || exit 1
  case "$source" in
    binaries) prometheus_cmd=(prometheus) exporter_cmd=("$(exporter_binary)") ;;
    apt) install_debian; prometheus_cmd=(prometheus) exporter_cmd=(prometheus-blackbox-exporter) ;;
    docker)
      say "no Prometheus on PATH, and apt cannot install it here: running ${images[*]} (promtool is not on PATH then)"
      # On the host's network (the model's ports and 127.0.0.1, as for the binaries), as this user
      # (build/prometheus stays writable), with the paths of here; in the foreground, so that the
      # pidfile holds the docker client, which hands the container the signals it gets.
      local run=(docker run --rm --network host --user "$(id -u):$(id -g)" -w "$repo"
                 -v "$repo/monitoring:$repo/monitoring:ro" -v "$repo/$dir:$repo/$dir")
      prometheus_cmd=("${run[@]}" --name "${containers[0]}" "${images[0]}")
      exporter_cmd=("${run[@]}" --name "${containers[1]}" "${images[1]}") ;;
  esac
}

alive() {  # pidfile, expected word in the command line: true if that process still runs
  local pid
  [ -f "$1" ] && pid=$(cat "$1") && [ -n "$pid" ] || return 1
  if [ -d /proc/self ]; then
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
  else  # macOS: no /proc; a zombie's state starts with Z
    ps -p "$pid" -o stat=,command= 2>/dev/null | grep -v '^ *Z' | grep -q -- "$2"
  fi
}

url_ok() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" \
  >/dev/null 2>&1; }

port_taken() { python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go servers do: TIME_WAIT is no obstacle
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}

refresh() { python3 monitoring/targets.py "$dir/targets"; }

refresh_loop() {  # runs while this project's Prometheus runs, not longer
  while alive "$dir/prometheus.pid" prometheus; do
    refresh || true
    sleep "$refresh_every"
  done
}

start() {
  install
  quiet_system_services
  mkdir -p "$dir/data" "$dir/targets"
  refresh
  if ! alive "$dir/blackbox.pid" blackbox; then
    if port_taken "$bb_port"; then say "127.0.0.1:$bb_port is taken by another process"; exit 1; fi
    nohup "${exporter_cmd[@]}" --config.file=monitoring/blackbox.yml \
      --web.listen-address="127.0.0.1:$bb_port" >"$dir/blackbox.log" 2>&1 &
    echo $! >"$dir/blackbox.pid"
  fi
  if alive "$dir/prometheus.pid" prometheus; then
    say "Prometheus already runs (pid $(cat "$dir/prometheus.pid"))"
  else
    if port_taken "$port"; then
      say "127.0.0.1:$port is taken by another process (a system Prometheus? see 'ss -ltnp')"; exit 1
    fi
    # lookback 30 s (default 5 min; kit/monitoring.py LOOKBACK_SECONDS): with a 2 s scrape interval that is 15 missed scrapes, and the
    # series of a server that went away while Prometheus was stopped (no staleness marker then)
    # stop counting in the sums 30 s after a restart instead of 5 min.
    nohup "${prometheus_cmd[@]}" --config.file=monitoring/prometheus.yml \
      --storage.tsdb.path="$dir/data" --storage.tsdb.retention.time=7d \
      --query.lookback-delta=30s \
      --web.listen-address="127.0.0.1:$port" --web.enable-lifecycle \
      --web.external-url="http://localhost:$port/" >"$dir/prometheus.log" 2>&1 &
    echo $! >"$dir/prometheus.pid"
  fi
  if ! alive "$dir/refresh.pid" monitor.sh; then
    nohup bash monitoring/monitor.sh _refresh-loop >>"$dir/refresh.log" 2>&1 &
    echo $! >"$dir/refresh.pid"
  fi
  for _ in $(seq 1 60); do
    url_ok "http://127.0.0.1:$port/-/ready" && url_ok "http://127.0.0.1:$bb_port/metrics" && break
    alive "$dir/prometheus.pid" prometheus || break
    sleep 0.5
  done
  if ! url_ok "http://127.0.0.1:$port/-/ready"; then
    tail -n 20 "$dir/prometheus.log" >&2; say "Prometheus did not become ready (log above)"; exit 1
  fi
  say "Prometheus on http://localhost:$port (rules: monitoring/rules, data: $dir/data)"
}

stop_one() {  # pidfile, word, label
  local pid
  if alive "$1" "$2"; then
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    # alive, not /proc/$pid: an exited process stays there as a zombie until its new parent reaps
    # it, which some init processes (a container's, a CI sandbox's) do only every second or two.
    for _ in $(seq 1 100); do alive "$1" "$2" || break; sleep 0.1; done
    alive "$1" "$2" && kill -9 "$pid" 2>/dev/null || true
    say "stopped $3"
  fi
  rm -f "$1"
}

stop() {
  stop_one "$dir/refresh.pid" monitor.sh "the target refresher"
  stop_one "$dir/prometheus.pid" prometheus "Prometheus"
  stop_one "$dir/blackbox.pid" blackbox "the blackbox exporter"
  # The images' containers, should a docker client have died without stopping its own.
  if command -v docker >/dev/null; then docker rm -f "${containers[@]}" >/dev/null 2>&1 || true; fi
}

status() {
  local ok=0
  alive "$dir/prometheus.pid" prometheus && echo "Prometheus runs (pid $(cat "$dir/prometheus.pid")) on :$port" \
    || { echo "Prometheus is not running"; ok=1; }
  alive "$dir/blackbox.pid" blackbox && echo "blackbox exporter runs on :$bb_port" || echo "blackbox exporter is not running"
  [ -f "$dir/targets/model.json" ] && python3 -c 'import json,sys; print("targets:", ", ".join(
    g["labels"]["replica"] + " " + t for g in json.load(open(sys.argv[1])) for t in g["targets"]) or "none")' \
    "$dir/targets/model.json"
  return $ok
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  refresh) mkdir -p "$dir/targets"; refresh ;;
  reload) python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST"), timeout=10)' \
            "http://127.0.0.1:$port/-/reload" && say "configuration and rules reloaded" ;;
  _refresh-loop) refresh_loop ;;
  *) echo "usage: $0 install|start|stop|status|refresh|reload" >&2; exit 2 ;;
esac
