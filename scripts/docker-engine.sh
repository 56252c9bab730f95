#!/usr/bin/env bash
# Start, stop or inspect a local Docker engine for the container tests.
#
#   scripts/docker-engine.sh start    install docker.io + debootstrap if missing, start dockerd, wait
#   scripts/docker-engine.sh stop     stop the dockerd this script started
#   scripts/docker-engine.sh status   say whether an engine answers (exit 0 if it does)
#
# dockerd runs without a bridge, iptables or NAT: containers use `--network host` only, so all
# traffic stays on 127.0.0.1. Needs root (CI runs as root). Idempotent: `start` on a running engine
# only reports it.
set -euo pipefail

STATE_DIR="${DOCKER_ENGINE_STATE_DIR:-/var/run/stroke-mlops-dockerd}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="${DOCKER_ENGINE_LOG:-/var/log/stroke-mlops-dockerd.log}"
WAIT_SECONDS="${DOCKER_ENGINE_WAIT_SECONDS:-60}"

say() { printf 'docker-engine: %s\n' "$*"; }
fail() { printf 'docker-engine: error: %s\n' "$*" >&2; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || fail "$1 needs root (run with sudo, or start Docker yourself)"
}

install_if_missing() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ "${#missing[@]}" -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start() {
  if engine_answers; then
    say "an engine already answers ($(docker info --format '{{.ServerVersion}}' 2>/dev/null))"
    return 0
  fi
  install_if_missing
  need_root "starting dockerd"
  mkdir -p "$STATE_DIR" "$(dirname "$LOG_FILE")"
  if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    say "dockerd (pid $(cat "$PID_FILE")) is starting; waiting for it"
  else
    say "starting dockerd (log: $LOG_FILE)"
    # setsid: dockerd outlives this shell and is not killed with make's process group.
    setsid dockerd --bridge=none --iptables=false --ip-masq=false \
      --pidfile "$STATE_DIR/dockerd.internal.pid" >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
  fi
  local waited=0
  until engine_answers; do
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      tail -n 20 "$LOG_FILE" >&2 || true
      fail "dockerd exited during start-up; see $LOG_FILE"
    fi
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
      fail "dockerd did not answer within ${WAIT_SECONDS}s; see $LOG_FILE"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "engine ready after ${waited}s ($(docker info --format '{{.ServerVersion}}'))"
}

stop() {
  if [ ! -f "$PID_FILE" ]; then
    if engine_answers; then
      say "an engine answers but was not started by this script; leaving it alone"
    else
      say "not running"
    fi
    return 0
  fi
  local pid
  pid="$(cat "$PID_FILE")"
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do
      sleep 1
      waited=$((waited + 1))
    done
    kill -0 "$pid" 2>/dev/null && fail "dockerd (pid $pid) still running after 30s"
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

status() {
  if engine_answers; then
    say "running ($(docker info --format '{{.ServerVersion}}'))"
  else
    say "no engine answers"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
