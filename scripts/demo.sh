#!/usr/bin/env bash
# demo.sh — build hacache, start one standalone node on loopback and walk through its HTTP API.
#
# On a fresh Debian 12 machine, run as root: it installs the Debian packages it needs first.
# The node keeps running until Ctrl-C (it is then stopped with SIGTERM), or with --detach the
# script returns and prints how to stop it.
#
# usage: scripts/demo.sh [--port N] [--detach]
# env:   HC_BUILD_DIR  build directory (default: build)
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/demo.sh [--port N] [--detach]
  --port N    HTTP port on 127.0.0.1 (default 8080)
  --detach    leave the node running in the background and return
EOF
}

die() { echo "demo.sh: $*" >&2; exit 1; }

port=8080 detach=0
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port=${2:-}; shift ;;
        --port=*) port=${1#--port=} ;;
        --detach) detach=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
case "$port" in ''|*[!0-9]*) usage >&2; exit 2 ;; esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then usage >&2; exit 2; fi

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
build_dir=${HC_BUILD_DIR:-build}
case "$build_dir" in /*) ;; *) build_dir="$(pwd)/$build_dir" ;; esac

# ---------------------------------------------------------------- packages
# gcc only recommends libc6-dev and cmake only recommends make: both are listed so that
# --no-install-recommends still yields a working toolchain.
packages=(cmake make gcc libc6-dev pkg-config libuv1-dev libh2o-dev libprotobuf-c-dev
    protobuf-c-compiler libssl-dev libsodium-dev curl)
if command -v dpkg-query >/dev/null; then
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
        echo "==> installing ${missing[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

# ---------------------------------------------------------------- build
echo "==> building in $build_dir"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j2
hacached="$build_dir/bin/hacached"
[ -x "$hacached" ] || die "the build did not produce $hacached"

# ---------------------------------------------------------------- start
url="http://127.0.0.1:$port"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "something already listens on 127.0.0.1:$port (a detached demo? stop it, or use --port N)"
fi
run_dir="$build_dir/demo"
mkdir -p "$run_dir"
log="$run_dir/hacached-$port.log"

# Its own session, so a Ctrl-C in this terminal reaches only this script, which then stops the
# node with SIGTERM, the way Kubernetes would.
CACHE_HTTP_ADDR="127.0.0.1:$port" CACHE_LOG_LEVEL=info CACHE_DATA_DIR="$run_dir/data-$port" \
    setsid "$hacached" </dev/null >"$log" 2>&1 &
pid=$!

# shellcheck disable=SC2317  # stop_node and on_exit run from the traps
stop_node() {
    kill -0 "$pid" 2>/dev/null || return 0
    echo
    echo "==> stopping hacached (pid $pid) with SIGTERM"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "hacached did not stop within 10 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317
on_exit() {
    local rc=$?
    stop_node
    if [ "$rc" != 0 ] && [ "$interrupted" = 0 ] && [ -s "$log" ]; then
        echo "--- last lines of $log" >&2
        tail -n 20 "$log" >&2
    fi
}
interrupted=0
trap on_exit EXIT
trap 'interrupted=1; exit 130' INT
trap 'interrupted=1; exit 143' TERM

echo "==> starting $hacached on $url (log: $log)"
deadline=$((SECONDS + 20))
until curl -fsS --max-time 1 -o /dev/null "$url/healthz" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "hacached exited during start-up"
    [ "$SECONDS" -lt "$deadline" ] || die "hacached did not answer $url/healthz within 20 s"
    sleep 0.1
done

# ---------------------------------------------------------------- walkthrough
# show ARGS...: prints the command line the way it can be pasted into a shell.
show() {
    local a line="$"
    for a in "$@"; do
        case "$a" in
            *[!A-Za-z0-9_/:.=,@%+-]*) line="$line '${a//\'/\'\\\'\'}'" ;;
            *) line="$line $a" ;;
        esac
    done
    echo "$line"
}

# api STATUS CURL-ARGS...: shows and runs `curl -sS CURL-ARGS`, prints the body, and fails
# unless the answer has the given HTTP status. Leaves the body in $body.
api() {
    local want=$1 out status
    shift
    echo
    show curl -sS "$@"
    out=$(curl -sS --max-time 10 -w '\n%{http_code}' "$@") || die "curl failed"
    status=${out##*$'\n'}
    body=${out%$'\n'*}
    [ -n "$body" ] && printf '%s\n' "$body"
    echo "  (HTTP $status)"
    [ "$status" = "$want" ] || die "expected HTTP $want"
}

step() { echo; echo "==> $*"; }

step "store a value (the cache 'demo' is created on first write)"
api 200 -X PUT --data-binary 'hello, hacache' "$url/v1/caches/demo/greeting"
step "read it back"
api 200 "$url/v1/caches/demo/greeting"
[ "$body" = 'hello, hacache' ] || die "GET returned '$body', not the value just stored"

step "store a value that expires after 1.5 s, and read it while it is there"
api 200 -X PUT --data-binary 'short-lived' "$url/v1/caches/demo/ephemeral?ttl_ms=1500"
api 200 "$url/v1/caches/demo/ephemeral"
[ "$body" = 'short-lived' ] || die "GET returned '$body', not the value just stored"
echo
echo "... waiting for it to expire"
deadline=$((SECONDS + 10))
while [ "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$url/v1/caches/demo/ephemeral")" != 404 ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the entry with ttl_ms=1500 was still there after 10 s"
    sleep 0.25
done
api 404 "$url/v1/caches/demo/ephemeral"

step "counters"
api 200 -X POST "$url/v1/caches/demo/visits/incr"
api 200 -X POST "$url/v1/caches/demo/visits/incr?by=5"
grep -Eq '(^|[^0-9])6([^0-9]|$)' <<<"$body" || die "incr by 1 then by 5 should give 6, got '$body'"

step "node status"
api 200 "$url/v1/status"

step "a few metrics"
echo
echo "\$ curl -sS $url/metrics | grep '^hacache_' | head -n 12"
metrics=$(curl -sS --max-time 10 "$url/metrics") || die "GET /metrics failed"
grep '^hacache_' <<<"$metrics" | awk 'NR <= 12' || die "no hacache_ metrics in /metrics"

# ---------------------------------------------------------------- keep running or detach
echo
if [ "$detach" = 1 ]; then
    trap - EXIT INT TERM
    echo "hacached keeps running at $url (pid $pid, log: $log)."
    echo "stop it with: kill $pid"
    exit 0
fi
echo "hacached is running at $url (pid $pid, log: $log). Press Ctrl-C to stop it."
set +e
wait "$pid"
rc=$?
set -e
die "hacached exited by itself with status $rc"
