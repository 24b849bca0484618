#!/usr/bin/env bash
# A real S3-compatible server for the delivery integration tests
# (internal/deliver): versitygw (Apache-2.0), pinned, built from the Go module
# proxy, serving its posix backend from a scratch folder on loopback.
#
#   scripts/s3-test-server.sh install   build the pinned version (skipped when present)
#   scripts/s3-test-server.sh start     install if needed, start on a free loopback port
#                                       (idempotent) and print the test environment:
#                                         eval "$(scripts/s3-test-server.sh start)"
#   scripts/s3-test-server.sh env       print the environment of the running server
#   scripts/s3-test-server.sh stop      stop it and remove its data
#
# Each server keeps its pid, port, log and data in its own state folder:
# WAN22_S3_STATE_DIR, or a fresh folder made by start, whose path start
# prints as WAN22_S3_STATE_DIR with the rest of the environment (so env and
# stop in the same shell find it). Two runs on one machine never share one.
#
# The tests read WAN22_TEST_S3_ENDPOINT, WAN22_TEST_S3_ACCESS_KEY,
# WAN22_TEST_S3_SECRET_KEY and WAN22_TEST_S3_REGION, and skip when they are
# unset. The scratch folder must support extended attributes (ext4, xfs,
# btrfs; tmpfs on Linux 6.6+), where versitygw keeps object metadata.
set -euo pipefail

VERSION=v1.8.0
MODULE=github.com/versity/versitygw/cmd/versitygw
ACCESS_KEY=wan22test
SECRET_KEY=wan22test-secret-key
REGION=us-east-1
CACHE=${WAN22_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wan22-worker}
BIN_DIR=$CACHE/versitygw-$VERSION
BIN=$BIN_DIR/versitygw
STATE=${WAN22_S3_STATE_DIR:-}

set_state() {
  STATE=$1
  PIDFILE=$STATE/pid
  PORTFILE=$STATE/port
  LOG=$STATE/versitygw.log
}

log() { echo "s3-test-server: $*" >&2; }

install() {
  if [ -x "$BIN" ]; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || { log "Go is required to build versitygw"; exit 1; }
  log "building versitygw $VERSION (takes a few minutes on 2 cores)"
  mkdir -p "$BIN_DIR"
  # Outside any module, with no inherited flags: a plain install of the pinned version.
  (cd / && GOFLAGS='' GOBIN="$BIN_DIR" go install "$MODULE@$VERSION")
  [ -x "$BIN" ] || { log "build finished but $BIN is missing"; exit 1; }
}

running() {
  [ -f "$PIDFILE" ] && [ -f "$PORTFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  answers "$(cat "$PORTFILE")"
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

print_env() {
  local port
  port=$(cat "$PORTFILE")
  echo "export WAN22_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
  echo "export WAN22_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
  echo "export WAN22_TEST_S3_SECRET_KEY=$SECRET_KEY"
  echo "export WAN22_TEST_S3_REGION=$REGION"
  echo "export WAN22_S3_STATE_DIR=$STATE"
}

start() {
  if [ -z "$STATE" ]; then
    STATE=$(mktemp -d "${TMPDIR:-/tmp}/wan22-s3-test.XXXXXX")
  fi
  set_state "$STATE"
  if running; then
    print_env
    return 0
  fi
  install
  stop_quietly
  mkdir -p "$STATE/data"
  local port=17070
  while answers "$port"; do
    port=$((port + 1))
    [ "$port" -lt 17170 ] || { log "no free port in 17070-17169"; exit 1; }
  done
  ROOT_ACCESS_KEY=$ACCESS_KEY ROOT_SECRET_KEY=$SECRET_KEY \
    nohup "$BIN" --port "127.0.0.1:$port" --region "$REGION" --quiet posix "$STATE/data" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  echo "$port" >"$PORTFILE"
  for _ in $(seq 1 100); do
    if answers "$port"; then
      print_env
      return 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.1
  done
  log "versitygw did not start; its log:"
  cat "$LOG" >&2 || true
  exit 1
}

stop_quietly() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid=$(cat "$PIDFILE")
    # Only our own server: the pid must still be a versitygw process.
    if kill -0 "$pid" 2>/dev/null && grep -q versitygw "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
  fi
  rm -rf "$STATE"
}

need_state() {
  if [ -z "$STATE" ]; then
    log "WAN22_S3_STATE_DIR is not set: eval the output of '$0 start' in this shell first"
    exit 1
  fi
  set_state "$STATE"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  env)
    need_state
    running || { log "not running; use: $0 start"; exit 1; }
    print_env
    ;;
  stop)
    need_state
    stop_quietly
    ;;
  *)
    echo "usage: $0 install|start|env|stop" >&2
    exit 2
    ;;
esac
