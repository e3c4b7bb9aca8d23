#!/usr/bin/env bash
# demo.sh — build hacache and run a 3-node mTLS cluster on loopback: status, a replicated write,
# a leader killed with SIGKILL and the failover, the killed node rejoining.
#
# On a fresh Debian 12 machine, run as root: it installs the Debian packages it needs first
# (apt-get update + install, only when something is missing). Works from any directory; every
# socket is on 127.0.0.1; the nodes' logs go to <build>/demo/*.log.
#
# The cluster keeps running until Ctrl-C (every node then gets SIGTERM), or with --detach the
# script returns after printing the PIDs, the log files and how to stop the nodes.
# --standalone runs the older single-node walk-through of the HTTP API instead.
#
# usage: scripts/demo.sh [--base-port N] [--detach]
#        scripts/demo.sh --standalone [--port N] [--detach]
# env:   HC_BUILD_DIR  build directory (default: build); an already configured one keeps its
#                      configuration, otherwise it is configured as RelWithDebInfo
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/demo.sh [--base-port N] [--detach]
       scripts/demo.sh --standalone [--port N] [--detach]
  (cluster)     3 nodes with mTLS between them, on 127.0.0.1
  --base-port N peer ports N+1..N+3, HTTP ports N+11..N+13
                (default: peer ports 7101-7103, HTTP ports 8081-8083)
  --standalone  one node without HA_MODE and a walk-through of its HTTP API
  --port N      HTTP port of the standalone node (default 8080)
  --detach      leave the node(s) running in the background and return
env: HC_BUILD_DIR  build directory (default: build)
EOF
}

die() { echo "demo.sh: $*" >&2; exit 1; }

mode=cluster base_port="" port=8080 detach=0
num() { case "$2" in '' | *[!0-9]*) echo "demo.sh: $1 needs a number" >&2; usage >&2; exit 2 ;; esac; }
while [ $# -gt 0 ]; do
    case "$1" in
        --base-port) num "$1" "${2:-}"; base_port=$2; shift ;;
        --base-port=*) base_port=${1#--base-port=}; num --base-port "$base_port" ;;
        --port) num "$1" "${2:-}"; port=$2; shift ;;
        --port=*) port=${1#--port=}; num --port "$port" ;;
        --standalone) mode=standalone ;;
        --detach) detach=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "demo.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$mode" = standalone ]; then
    [ -z "$base_port" ] || die "--base-port is for the cluster demo; use --port with --standalone"
    { [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; } || die "--port must be in 1..65535"
    ports=("$port")
else
    [ "$port" = 8080 ] || die "--port is for --standalone; use --base-port for the cluster"
    if [ -n "$base_port" ]; then
        { [ "$base_port" -ge 1 ] && [ "$base_port" -le 65520 ]; } || die "--base-port must be in 1..65520"
        peer_ports=($((base_port + 1)) $((base_port + 2)) $((base_port + 3)))
        http_ports=($((base_port + 11)) $((base_port + 12)) $((base_port + 13)))
    else
        peer_ports=(7101 7102 7103)
        http_ports=(8081 8082 8083)
    fi
    ports=("${peer_ports[@]}" "${http_ports[@]}")
fi

repo="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
cd "$repo"
repo=$(pwd)
build_dir=${HC_BUILD_DIR:-build}
case "$build_dir" in /*) ;; *) build_dir="$repo/$build_dir" ;; esac

# The nodes get their configuration from this script only: hacache variables that happen to
# be set in the caller's environment (an API token, another HA_HOSTS, ...) are dropped.
while read -r v; do
    case "$v" in CACHE_* | HA_* | HOSTNAME_OVERWRITE) unset "$v" ;; esac
done < <(compgen -e)

# ---------------------------------------------------------------- packages
# gcc only recommends libc6-dev and cmake only recommends make: both are listed so that
# --no-install-recommends still yields a working toolchain. openssl makes the dev
# certificates, jq reads /v1/status.
packages=(cmake make gcc libc6-dev pkg-config libuv1-dev libh2o-dev libprotobuf-c-dev
    protobuf-c-compiler libssl-dev libsodium-dev curl openssl jq)
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
for t in cmake curl openssl jq setsid; do
    command -v "$t" >/dev/null || die "$t is required"
done

# ---------------------------------------------------------------- build
echo "==> building in $build_dir"
if [ -z "${HC_BUILD_DIR:-}" ] || [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build_dir" -j "$(nproc 2>/dev/null || echo 2)"
hacached="$build_dir/bin/hacached"
[ -x "$hacached" ] || die "the build did not produce $hacached"

# ---------------------------------------------------------------- helpers
for p in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        if [ "$mode" = standalone ]; then
            die "port $p on 127.0.0.1 is already in use (a detached demo? stop it, or use --port N)"
        fi
        die "port $p on 127.0.0.1 is already in use; the cluster needs ${ports[*]} (a detached demo? stop it, or use --base-port N)"
    fi
done
run_dir="$build_dir/demo"
mkdir -p "$run_dir"

now_ms() { date +%s%3N; }
step() { echo; echo "==> $*"; }

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
    [ "$status" = "$want" ] || die "expected HTTP $want, got $status"
}

# fetch URL: one quiet GET; sets $code and $body ($code is 000 when nothing answered).
fetch() {
    local out
    out=$(curl -sS --max-time 2 -w '\n%{http_code}' "$1" 2>/dev/null) || out=$'\n000'
    code=${out##*$'\n'}
    body=${out%$'\n'*}
}

# poll_get URL WANT-BODY SECONDS: shows the command once, then repeats the GET every 50 ms
# until it answers 200 with WANT-BODY; prints the answer and how long that took.
poll_get() {
    local url=$1 want=$2 secs=$3 t0 deadline
    echo
    show curl -sS "$url"
    echo "  (repeated every 50 ms until it answers 200 '$want', at most $secs s)"
    t0=$(now_ms)
    deadline=$((SECONDS + secs))
    while :; do
        fetch "$url"
        [ "$code" = 200 ] && [ "$body" = "$want" ] && break
        [ "$SECONDS" -lt "$deadline" ] || die "$url: still HTTP $code '$body' after $secs s"
        sleep 0.05
    done
    printf '%s\n' "$body"
    echo "  (HTTP $code, visible after $(($(now_ms) - t0)) ms)"
}

if [ "$mode" = standalone ]; then
# ================================================================ standalone walk-through
url="http://127.0.0.1:$port"
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
fi

# ================================================================ cluster
n=3
certs="$run_dir/certs"
ha_hosts=""
for i in 0 1 2; do
    ha_hosts="${ha_hosts:+$ha_hosts,}https://127.0.0.1:${peer_ports[$i]}"
done
pids=(0 0 0) logs=() names=() urls=()
for i in 0 1 2; do
    names[i]="127.0.0.1:${peer_ports[$i]}"
    urls[i]="http://127.0.0.1:${http_ports[$i]}"
    logs[i]="$run_dir/node$((i + 1))-${http_ports[$i]}.log"
done

# ---------------------------------------------------------------- certificates
# Throw-away: a CA, one certificate per node (SANs include 127.0.0.1) and the peer token file.
# Kept while they are valid for at least another day, so a second demo on other ports (or a
# node of a detached one that is restarted) keeps trusting the same CA.
certs_ok() {
    local f
    for f in ca.crt node-0.crt node-1.crt node-2.crt; do
        openssl x509 -noout -checkend 86400 -in "$certs/$f" >/dev/null 2>&1 || return 1
    done
    for f in node-0.key node-1.key node-2.key token; do [ -s "$certs/$f" ] || return 1; done
}
if certs_ok; then
    step "dev certificates: reusing $certs (valid for at least another day)"
else
    step "dev certificates (throw-away CA, one certificate per node, peer token)"
    show scripts/dev-certs.sh "$certs" 3
    scripts/dev-certs.sh "$certs" 3
fi

# ---------------------------------------------------------------- nodes
# start_node I: starts node I in its own session (a Ctrl-C in the terminal reaches only this
# script, which stops the nodes with SIGTERM the way Kubernetes would); its log is appended to.
start_node() {
    local i=$1
    HA_MODE=true HA_HOSTS="$ha_hosts" HOSTNAME_OVERWRITE="${names[$i]}" \
        CACHE_LISTEN_ADDR=127.0.0.1 CACHE_HTTP_ADDR="127.0.0.1:${http_ports[$i]}" \
        CACHE_AUTH_TOKEN_FILE="$certs/token" CACHE_TLS=true \
        CACHE_TLS_SERVER_CERT="$certs/node-$i.crt" CACHE_TLS_SERVER_KEY="$certs/node-$i.key" \
        CACHE_TLS_CA_SERVER="$certs/ca.crt" CACHE_DATA_DIR="$run_dir/data-${peer_ports[$i]}" \
        CACHE_LOG_LEVEL=info \
        setsid "$hacached" </dev/null >>"${logs[$i]}" 2>&1 &
    pids[i]=$!
    echo "node$((i + 1)): pid ${pids[$i]}, peer port ${peer_ports[$i]}, HTTP ${urls[$i]}, log ${logs[$i]}"
}
alive() { [ "${pids[$1]}" != 0 ] && kill -0 "${pids[$1]}" 2>/dev/null; }

# shellcheck disable=SC2317  # runs from the traps
stop_all() {
    local i any=0
    for i in 0 1 2; do
        if alive "$i"; then any=1; kill -TERM "${pids[$i]}" 2>/dev/null || true; fi
    done
    [ "$any" = 1 ] || return 0
    echo
    echo "==> stopping the nodes (SIGTERM to ${pids[*]})"
    for i in 0 1 2; do
        [ "${pids[$i]}" != 0 ] || continue
        for _ in $(seq 100); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "node$((i + 1)) (pid ${pids[$i]}) did not stop within 10 s; killing it" >&2
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
        wait "${pids[$i]}" 2>/dev/null || true
    done
    echo "stopped."
}
# shellcheck disable=SC2317
on_exit() {
    local rc=$? i
    stop_all
    if [ "$rc" != 0 ] && [ "$interrupted" = 0 ]; then
        for i in 0 1 2; do
            [ -s "${logs[$i]}" ] || continue
            echo "--- last lines of ${logs[$i]}" >&2
            tail -n 15 "${logs[$i]}" >&2
        done
    fi
}
interrupted=0
trap on_exit EXIT
trap 'interrupted=1; exit 130' INT
trap 'interrupted=1; exit 143' TERM

# read_status I: one GET /v1/status on node I; sets st_node st_role st_term st_leader
# st_ready, or returns 1 when the node does not answer 200.
read_status() {
    fetch "${urls[$1]}/v1/status"
    [ "$code" = 200 ] || return 1
    read -r st_node st_role st_term st_leader st_ready < <(jq -r \
        '[.node, .role, (.term|tostring), (.leader // "-"), (.ready|tostring)] | join(" ")' \
        <<<"$body") || return 1
}

# agreed NODES...: exactly one of NODES is leader, and every one of them answers and reports
# the same term and leader. Sets leader_idx and leader_term.
agreed() {
    local i lt="" ll="" nl=0
    for i in "$@"; do
        read_status "$i" || return 1
        if [ "$st_role" = leader ]; then nl=$((nl + 1)); leader_idx=$i; fi
        [ -z "$lt" ] || [ "$st_term" = "$lt" ] || return 1
        [ -z "$ll" ] || [ "$st_leader" = "$ll" ] || return 1
        lt=$st_term ll=$st_leader
    done
    [ "$nl" = 1 ] && [ "$ll" = "${names[$leader_idx]}" ] || return 1
    leader_term=$lt
}

# wait_leader SECONDS MIN-TERM NODES...: polls /v1/status of NODES every 50 ms until they agree
# on one leader with a term of at least MIN-TERM.
wait_leader() {
    local secs=$1 min_term=$2 deadline i
    shift 2
    echo
    for i in "$@"; do show curl -sS "${urls[$i]}/v1/status"; done
    echo "  (repeated every 50 ms until exactly one node is leader and all agree on term and leader, at most $secs s)"
    deadline=$((SECONDS + secs))
    until agreed "$@" && [ "$leader_term" -ge "$min_term" ]; do
        for i in "$@"; do alive "$i" || die "node$((i + 1)) (pid ${pids[$i]}) exited; see ${logs[$i]}"; done
        [ "$SECONDS" -lt "$deadline" ] || die "no agreed leader within $secs s"
        sleep 0.05
    done
}

# status_table: one /v1/status per node, shown as a table.
status_table() {
    local i
    echo
    for i in 0 1 2; do show curl -sS "${urls[$i]}/v1/status"; done
    echo
    printf '  %-6s %-16s %-23s %-8s %-10s %-5s %-16s %s\n' NODE PEER HTTP PID ROLE TERM LEADER READY
    for i in 0 1 2; do
        if ! alive "$i"; then
            printf '  %-6s %-16s %-23s %-8s %s\n' "node$((i + 1))" "${names[$i]}" "${urls[$i]}" - "(down)"
        elif read_status "$i"; then
            printf '  %-6s %-16s %-23s %-8s %-10s %-5s %-16s %s\n' "node$((i + 1))" "$st_node" \
                "${urls[$i]}" "${pids[$i]}" "$st_role" "$st_term" "$st_leader" "$st_ready"
        else
            die "node$((i + 1)) answered HTTP $code to GET /v1/status"
        fi
    done
}

# ---------------------------------------------------------------- start
step "starting 3 nodes (HA_MODE=true, mTLS between peers; HA_HOSTS=$ha_hosts)"
for i in 0 1 2; do
    rm -rf "$run_dir/data-${peer_ports[$i]}"
    : >"${logs[$i]}"
    start_node "$i"
done

step "waiting for the election"
t0=$(now_ms)
wait_leader 30 1 0 1 2
echo "leader: node$((leader_idx + 1)) (${names[$leader_idx]}), term $leader_term, elected after $(($(now_ms) - t0)) ms"
status_table

# ---------------------------------------------------------------- write and read
f1=$(( (leader_idx + 1) % n )) f2=$(( (leader_idx + 2) % n ))
step "write on node$((f1 + 1)), a follower (it forwards to the leader; ack=quorum by default)"
api 200 -X PUT --data-binary 'hello, cluster' "${urls[$f1]}/v1/caches/demo/greeting"
step "read it on node$((f2 + 1)): a local read (this node's copy) until the write is visible there"
poll_get "${urls[$f2]}/v1/caches/demo/greeting?consistency=local" 'hello, cluster' 10
step "and a linearizable read on node$((f2 + 1)) (confirmed with the leader)"
api 200 "${urls[$f2]}/v1/caches/demo/greeting?consistency=linearizable"
[ "$body" = 'hello, cluster' ] || die "linearizable GET returned '$body'"

# ---------------------------------------------------------------- failover
old=$leader_idx old_term=$leader_term
survivors=()
for i in 0 1 2; do [ "$i" = "$old" ] || survivors+=("$i"); done
step "killing the leader node$((old + 1)) (pid ${pids[$old]}) with SIGKILL"
show kill -KILL "${pids[$old]}"
t0=$(now_ms)
# the shell's stderr is muted while the node is killed and reaped: no "Killed" job message
exec 4>&2 2>/dev/null
kill -KILL "${pids[$old]}" || true
wait "${pids[$old]}" || true
exec 2>&4 4>&-
step "watching the failover"
wait_leader 30 $((old_term + 1)) "${survivors[@]}"
failover_ms=$(($(now_ms) - t0))
echo "new leader: node$((leader_idx + 1)) (${names[$leader_idx]}), term $leader_term"
echo "failover took $failover_ms ms (from SIGKILL until the survivors agreed on a new leader)"
status_table

w=${survivors[0]} r=${survivors[1]}
[ "$w" != "$leader_idx" ] || { w=${survivors[1]}; r=${survivors[0]}; }
step "write again, through node$((w + 1))"
api 200 -X PUT --data-binary 'written after the failover' "${urls[$w]}/v1/caches/demo/greeting"
step "linearizable read on node$((r + 1))"
api 200 "${urls[$r]}/v1/caches/demo/greeting?consistency=linearizable"
[ "$body" = 'written after the failover' ] || die "linearizable GET returned '$body'"

# ---------------------------------------------------------------- rejoin
step "restarting node$((old + 1)) with the same data dir ($run_dir/data-${peer_ports[$old]})"
start_node "$old"
echo
show curl -sS "${urls[$old]}/readyz"
echo "  (repeated every 50 ms until HTTP 200, at most 30 s)"
deadline=$((SECONDS + 30))
while :; do
    fetch "${urls[$old]}/readyz"
    [ "$code" = 200 ] && break
    alive "$old" || die "node$((old + 1)) exited during start-up; see ${logs[$old]}"
    [ "$SECONDS" -lt "$deadline" ] || die "node$((old + 1)) not ready within 30 s (HTTP $code '$body')"
    sleep 0.05
done
printf '%s\n' "$body"
echo "  (HTTP $code)"
step "the rejoined node agrees on the leader and has caught up"
wait_leader 30 "$leader_term" 0 1 2
poll_get "${urls[$old]}/v1/caches/demo/greeting?consistency=local" 'written after the failover' 10
status_table

# ---------------------------------------------------------------- keep running or detach
echo
echo "logs: ${logs[*]}"
if [ "$detach" = 1 ]; then
    trap - EXIT INT TERM
    echo "The cluster keeps running: node1 ${urls[0]}, node2 ${urls[1]}, node3 ${urls[2]}."
    echo "pids: ${pids[*]}"
    echo "stop it with: kill ${pids[*]}"
    exit 0
fi
echo "The cluster is running: node1 ${urls[0]}, node2 ${urls[1]}, node3 ${urls[2]}"
echo "(pids ${pids[*]}). Try: curl ${urls[1]}/v1/status. Press Ctrl-C to stop it."
set +e
wait -n "${pids[@]}"
rc=$?
set -e
for i in 0 1 2; do
    alive "$i" || die "node$((i + 1)) (pid ${pids[$i]}) exited by itself with status $rc; see ${logs[$i]}"
done
die "a node exited by itself with status $rc"
