#!/usr/bin/env bash
# cluster_bench.sh — a 3-node hacache cluster next to a 3-node etcd cluster, in one run,
# reported as ratios.
#
# Both clusters run on 127.0.0.1 (free ports), with mutual TLS between peers (the same
# throw-away certificates from scripts/dev-certs.sh for both) and plain HTTP/1.1 from the
# client: hacache's own API, etcd's v3 JSON gateway (POST /v3/kv/put, POST /v3/kv/range).
# Both data directories sit in one temporary directory, so on one filesystem. The point of the
# comparison, stated plainly: etcd fsyncs its WAL on every write (on every member), hacache keeps
# the data in memory only (its CACHE_DATA_DIR holds the raft term and vote, nothing else).
#
# Scenarios (h2load --h1 -m 1 -t 1; -c 16, and -c 1 for the latency-bound write variants):
#   write-leader     quorum write sent to the leader
#   write-follower   quorum write sent to a follower (both systems forward it to the leader)
#   read-lin         linearizable read from a follower
#   read-local       local (hacache) / serializable (etcd) read from a follower
# Every run must answer all requests with 2xx; reads must carry the value's bytes; after every
# write run the key must hold the value h2load wrote (a sentinel is stored before) and the
# system's log must have advanced by at least N (etcd: exactly N revisions). Otherwise: exit 1.
#
# Reference column (--no-grpc drops it): the same etcd requests through etcd's native gRPC API
# (protobuf over h2c, one stream per connection, same -c), measured in the same rounds. Real
# etcd clients use gRPC; the JSON gateway translates every request into an in-process gRPC
# call, so this column shows how much of the main ratio is the gateway's cost.
#
# RESP part (--no-resp drops it, --resp-only runs nothing else and starts no etcd): every
# hacache node also has a RESP listener (CACHE_RESP_ADDR, loopback, no API token, so no AUTH);
# redis-benchmark -t set -c 50 -d <value-bytes> against the leader's and a follower's RESP port,
# without pipelining and with -P 16, at the connection's default ack level (quorum). Reported:
# req/s of each and the ratio pipelined/unpipelined per node (per round, then the median). Each
# run must exit 0 (redis-benchmark stops at the first error reply) with one SET figure, and the
# key it writes must hold a value of the requested size afterwards on that node, with the
# entry's version (its raft index) advanced by at least N (a sentinel is stored before).
#
# usage: bench/cluster_bench.sh [--quick] [-n N] [--rounds N] [--value-bytes N] [--no-pin]
#                               [--no-grpc] [--no-resp | --resp-only] [--resp-n N]
#                               [--resp-clients N] [--resp-pipeline N]
# env:   HC_BUILD_DIR  build directory holding bin/hacached (default: build-bench; built there,
#                      Release, when missing)
#        ETCD          etcd binary (default: etcd on PATH, Debian's /usr/bin/etcd)
#        TMPDIR        where the temporary directory (certificates, both data dirs) goes
# output: a table on stdout, also bench/out/cluster_results.txt; raw h2load and redis-benchmark
#         output in bench/out/raw/cluster-*. Every process started is stopped on exit.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/cluster_bench.sh [options]
  --quick            smoke run: 2000 requests per h2load scenario instead of 20000, 5000 per
                     redis-benchmark run instead of 50000
  -n N               h2load requests per measured run (default 20000)
  --rounds N         measured rounds per scenario, medians reported (default 3)
  --value-bytes N    size of the written value (default 64)
  --no-pin           do not pin servers and load generators to separate CPUs
  --no-grpc          skip the reference column: etcd through its native gRPC API (h2c)
  --no-resp          skip the RESP part (no RESP listeners)
  --resp-only        only the RESP part: 3 hacache nodes, no etcd, no h2load
  --resp-n N         redis-benchmark -n per RESP run (default 50000)
  --resp-clients N   redis-benchmark -c (default 50)
  --resp-pipeline N  -P of the pipelined RESP runs (default 16)
  -h, --help         this text
env: HC_BUILD_DIR (default build-bench), ETCD (default etcd), TMPDIR
EOF
}

die() { echo "cluster_bench.sh: $*" >&2; exit 1; }
note() { echo "cluster_bench.sh: $*" >&2; }

requests=20000 rounds=3 value_bytes=64 pin=1 grpc=1
resp_n=50000 resp_clients=50 resp_pipeline=16 with_etcd=1 with_resp=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) requests=2000 resp_n=5000 ;;
        -n) requests=${2:?-n needs a number}; shift ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift ;;
        --value-bytes) value_bytes=${2:?--value-bytes needs a number}; shift ;;
        --no-pin) pin=0 ;;
        --no-grpc) grpc=0 ;;
        --no-resp) with_resp=0 ;;
        --resp-only) with_etcd=0 ;;
        --resp-n) resp_n=${2:?--resp-n needs a number}; shift ;;
        --resp-clients) resp_clients=${2:?--resp-clients needs a number}; shift ;;
        --resp-pipeline) resp_pipeline=${2:?--resp-pipeline needs a number}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
for v in "$requests" "$rounds" "$value_bytes" "$resp_n" "$resp_clients" "$resp_pipeline"; do
    case "$v" in ''|*[!0-9]*) die "not a non-negative integer: '$v'" ;; esac
done
if [ "$requests" -eq 0 ] || [ "$rounds" -eq 0 ] || [ "$value_bytes" -eq 0 ] || [ "$resp_n" -eq 0 ] ||
    [ "$resp_clients" -eq 0 ]; then
    die "-n, --rounds, --value-bytes, --resp-n and --resp-clients must be positive"
fi
[ "$resp_pipeline" -ge 2 ] || die "--resp-pipeline must be at least 2 (the other runs go without -P)"
[ "$with_etcd" = 1 ] || [ "$with_resp" = 1 ] || die "--resp-only and --no-resp together leave nothing to measure"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
build_dir=${HC_BUILD_DIR:-build-bench}
etcd_bin=${ETCD:-etcd}
out="$repo/bench/out"
mkdir -p "$out/raw"

need=(curl jq openssl base64 cmp awk timeout)
[ "$with_etcd" = 0 ] || need+=(h2load etcdctl)
[ "$with_resp" = 0 ] || need+=(redis-benchmark redis-cli)
for t in "${need[@]}"; do
    command -v "$t" >/dev/null ||
        die "$t not found (apt-get install nghttp2-client etcd-client curl jq openssl redis-tools)"
done
[ "$with_etcd" = 0 ] || command -v "$etcd_bin" >/dev/null ||
    die "no etcd binary '$etcd_bin' (apt-get install etcd-server, or set ETCD; --resp-only needs none)"

hacached="$repo/$build_dir/bin/hacached"
case "$build_dir" in /*) hacached="$build_dir/bin/hacached" ;; esac
if [ ! -x "$hacached" ]; then
    note "building hacached in $build_dir (Release)"
    if [ ! -f "$build_dir/CMakeCache.txt" ]; then
        cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >&2
    fi
    cmake --build "$build_dir" -j2 --target hacached >&2
fi
[ -x "$hacached" ] || die "no hacached at $hacached after building"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$(dirname "$hacached")/../CMakeCache.txt" 2>/dev/null || true)

# ---------------------------------------------------------------- processes
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hc-cluster-bench.XXXXXX")
pids=() names_by_pid=() load_pid=""
# shellcheck disable=SC2317  # runs from the traps
cleanup() {
    local rc=$? pid i
    trap - EXIT
    if [ -n "$load_pid" ]; then kill -TERM "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; fi
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in "${!pids[@]}"; do
        pid=${pids[$i]}
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            note "${names_by_pid[$i]} (pid $pid) still up 10 s after SIGTERM; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        for f in "$tmp"/*.log; do
            [ -s "$f" ] || continue
            echo "--- last lines of $(basename "$f")" >&2
            tail -n 10 "$f" >&2
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The server processes (six, or three with --resp-only) share one CPU and the load generator
# (h2load, redis-benchmark) gets the other, the same for both systems, so the load generator
# does not steal cycles from the servers (and the servers' throughput is what one core of CPU
# buys in each system). --no-pin leaves it to the scheduler.
n_servers=6
[ "$with_etcd" = 1 ] || n_servers=3
pin_server=() pin_client=() pinning="not pinned"
if [ "$pin" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 0) pin_client=(taskset -c 1)
    pinning="all $n_servers server processes pinned to CPU 0, h2load and redis-benchmark to CPU 1 (taskset)"
elif [ "$pin" = 1 ]; then
    pinning="not pinned (taskset missing or fewer than 2 CPUs)"
fi

# free_port: sets $port to a loopback port nobody accepts on and this run has not handed out,
# below the kernel's ephemeral range (so no outgoing connection of a node started earlier can
# be sitting on it when the next one binds). All ports are chosen before any process starts.
taken_ports=" "
read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph_lo=32768
case "$eph_lo" in ''|*[!0-9]*) eph_lo=32768 ;; esac
[ "$eph_lo" -gt 2048 ] || die "ephemeral port range starts at $eph_lo: no room below it for listeners"
port_hi=$((eph_lo - 1)) port_lo=$((eph_lo > 11024 ? 10000 : 1025))
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    for _ in $(seq 200); do
        port=$((port_lo + RANDOM % (port_hi - port_lo + 1)))
        case "$taken_ports" in *" $port "*) continue ;; esac
        if ! port_open "$port"; then
            taken_ports="$taken_ports$port "
            return 0
        fi
    done
    die "no free loopback port found"
}

# start NAME CMD...: runs CMD on the server CPU, logs to $tmp/NAME.log, sets $last_pid.
start() {
    local name=$1; shift
    "${pin_server[@]}" "$@" </dev/null >"$tmp/$name.log" 2>&1 &
    last_pid=$!
    pids+=("$last_pid") names_by_pid+=("$name")
}

# poll SECONDS WHAT CMD...: runs CMD every 50 ms until it succeeds; fails after SECONDS or as
# soon as one of the started processes has exited.
poll() {
    local secs=$1 what=$2 deadline i; shift 2
    deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        for i in "${!pids[@]}"; do
            kill -0 "${pids[$i]}" 2>/dev/null || die "${names_by_pid[$i]} exited while waiting for $what"
        done
        [ "$SECONDS" -lt "$deadline" ] || die "timed out after $secs s waiting for $what"
        sleep 0.05
    done
}

# ---------------------------------------------------------------- certificates and data
certs="$tmp/certs"
scripts/dev-certs.sh "$certs" 3 >/dev/null
data="$tmp/data"
mkdir -p "$data"
fs_desc="$(df -P "$data" | awk 'NR == 2 { print $1 }') ($(stat -f -c %T "$data")), mounted on $(df -P "$data" | awk 'NR == 2 { print $6 }')"
value="$tmp/value.bin"
sentinel="$tmp/sentinel.bin"
head -c "$value_bytes" /dev/zero | tr '\0' 'v' >"$value"
head -c "$value_bytes" /dev/zero | tr '\0' 's' >"$sentinel"
key=k
key_b64=$(printf '%s' "$key" | base64 -w0)
value_b64=$(base64 -w0 <"$value")
sentinel_b64=$(base64 -w0 <"$sentinel")
printf '{"key":"%s","value":"%s"}' "$key_b64" "$value_b64" >"$tmp/etcd-put.json"
printf '{"key":"%s"}' "$key_b64" >"$tmp/etcd-range-lin.json"
printf '{"key":"%s","serializable":true}' "$key_b64" >"$tmp/etcd-range-ser.json"
# The same three requests as gRPC messages: a 5-byte frame header (no compression, big-endian
# length) and the protobuf encoding of etcdserverpb.PutRequest {key = 1, value = 2} and
# RangeRequest {key = 1, serializable = 7}.
pb_varint() { # N -> bytes of the protobuf varint, as printf escapes
    local n=$1 b esc=""
    while :; do
        b=$((n & 127)) n=$((n >> 7))
        if [ "$n" -gt 0 ]; then esc+=$(printf '\\x%02x' $((b | 128))); else esc+=$(printf '\\x%02x' "$b"); break; fi
    done
    printf '%s' "$esc"
}
grpc_frame() { # MESSAGE-FILE OUT
    local len
    len=$(wc -c <"$1")
    # shellcheck disable=SC2059  # the format is the escaped length
    { printf '\x00'; printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((len >> 24 & 255)) $((len >> 16 & 255)) $((len >> 8 & 255)) $((len & 255)))"; cat "$1"; } >"$2"
}
# shellcheck disable=SC2059
{ printf '\x0a'; printf "$(pb_varint ${#key})"; printf '%s' "$key"; printf '\x12'; printf "$(pb_varint "$value_bytes")"; cat "$value"; } >"$tmp/put.pb"
# shellcheck disable=SC2059
{ printf '\x0a'; printf "$(pb_varint ${#key})"; printf '%s' "$key"; } >"$tmp/range.pb"
{ cat "$tmp/range.pb"; printf '\x38\x01'; } >"$tmp/range-ser.pb"
grpc_frame "$tmp/put.pb" "$tmp/etcd-put.grpc"
grpc_frame "$tmp/range.pb" "$tmp/etcd-range-lin.grpc"
grpc_frame "$tmp/range-ser.pb" "$tmp/etcd-range-ser.grpc"
grpc_headers=(-H 'content-type: application/grpc' -H 'te: trailers')

# ---------------------------------------------------------------- ports (all chosen up front)
hc_peer=() hc_http=() hc_resp=() hc_names=() hc_urls=()
ha_hosts=""
for i in 0 1 2; do
    free_port; hc_peer[i]=$port
    free_port; hc_http[i]=$port
    if [ "$with_resp" = 1 ]; then free_port; hc_resp[i]=$port; fi
    hc_names[i]="127.0.0.1:${hc_peer[$i]}"
    hc_urls[i]="http://127.0.0.1:${hc_http[$i]}"
    ha_hosts="${ha_hosts:+$ha_hosts,}https://${hc_names[$i]}"
done
et_peer=() et_client=() et_urls=()
initial_cluster=""
for i in 0 1 2; do
    free_port; et_peer[i]=$port
    free_port; et_client[i]=$port
    et_urls[i]="http://127.0.0.1:${et_client[$i]}"
    initial_cluster="${initial_cluster:+$initial_cluster,}etcd-$i=https://127.0.0.1:${et_peer[$i]}"
done
for i in 0 1 2; do
    resp_env=()
    [ "$with_resp" = 0 ] || resp_env=(CACHE_RESP_ADDR="127.0.0.1:${hc_resp[$i]}")
    start "hacache-$i" env HA_MODE=true HA_HOSTS="$ha_hosts" HOSTNAME_OVERWRITE="${hc_names[$i]}" \
        CACHE_LISTEN_ADDR=127.0.0.1 CACHE_HTTP_ADDR="127.0.0.1:${hc_http[$i]}" "${resp_env[@]}" \
        CACHE_AUTH_TOKEN_FILE="$certs/token" CACHE_TLS=true \
        CACHE_TLS_SERVER_CERT="$certs/node-$i.crt" CACHE_TLS_SERVER_KEY="$certs/node-$i.key" \
        CACHE_TLS_CA_SERVER="$certs/ca.crt" CACHE_DATA_DIR="$data/hacache-$i" \
        CACHE_MAX_MEMORY=256MiB CACHE_LOG_LEVEL=warn "$hacached"
done

# ---------------------------------------------------------------- etcd cluster (hacache started above)
for i in 0 1 2; do
    [ "$with_etcd" = 1 ] || break
    start "etcd-$i" "$etcd_bin" --name "etcd-$i" --data-dir "$data/etcd-$i" \
        --listen-peer-urls "https://127.0.0.1:${et_peer[$i]}" \
        --initial-advertise-peer-urls "https://127.0.0.1:${et_peer[$i]}" \
        --listen-client-urls "${et_urls[$i]}" --advertise-client-urls "${et_urls[$i]}" \
        --initial-cluster "$initial_cluster" --initial-cluster-state new \
        --initial-cluster-token "hc-bench-$$" \
        --peer-cert-file "$certs/node-$i.crt" --peer-key-file "$certs/node-$i.key" \
        --peer-trusted-ca-file "$certs/ca.crt" --peer-client-cert-auth \
        --logger zap --log-outputs stderr --log-level warn
done
et_endpoints=$(IFS=,; echo "${et_urls[*]}")

# ---------------------------------------------------------------- leaders
# hc_leader: exactly one hacache node says leader, all three agree on it and are ready; sets
# hc_lead (index).
hc_leader() {
    local i role leader lead="" agreed="" n=0
    for i in 0 1 2; do
        read -r role leader < <(curl -fsS --max-time 2 "${hc_urls[$i]}/v1/status" |
            jq -r '[.role, (.leader // "-"), (.ready|tostring)] | select(.[2] == "true") | .[0:2] | join(" ")') || return 1
        [ -n "${role:-}" ] || return 1
        [ -z "$agreed" ] || [ "$leader" = "$agreed" ] || return 1
        agreed=$leader
        if [ "$role" = leader ]; then lead=$i n=$((n + 1)); fi
    done
    [ "$n" = 1 ] && [ "$agreed" = "${hc_names[$lead]}" ] || return 1
    hc_lead=$lead
}
# et_leader: all three etcd members answer `etcdctl endpoint status` with the same leader,
# which is one of them; sets et_lead (index). Fields are read as strings (member ids are
# 64-bit, more than a JSON double holds).
et_leader() {
    local st i id leader lead="" agreed=""
    st=$(ETCDCTL_API=3 etcdctl --endpoints="$et_endpoints" --command-timeout=2s endpoint status -w fields) || return 1
    # -w fields prints one block per endpoint, its "Endpoint" line last
    st=$(awk '$1 == "\"MemberID\"" { id = $3 } $1 == "\"Leader\"" { ld = $3 }
        $1 == "\"Endpoint\"" { gsub(/"/, "", $3); print $3, id, ld; id = ld = "" }' <<<"$st")
    for i in 0 1 2; do
        read -r _ id leader < <(awk -v ep="${et_urls[$i]}" '$1 == ep' <<<"$st") || return 1
        [ -n "$id" ] && [ -n "$leader" ] && [ "$leader" != 0 ] || return 1
        [ -z "$agreed" ] || [ "$leader" = "$agreed" ] || return 1
        agreed=$leader
        [ "$id" != "$leader" ] || lead=$i
    done
    [ -n "$lead" ] || return 1
    et_lead=$lead
}
if [ "$with_etcd" = 1 ]; then
    note "starting 3 hacache nodes and 3 etcd members on 127.0.0.1 (data in $data)"
else
    note "starting 3 hacache nodes on 127.0.0.1 (data in $data)"
fi
poll 60 "a hacache leader agreed on by all three nodes" hc_leader
hc_leader || die "hacache: no agreed leader"
hc_fol=$(((hc_lead + 1) % 3))
if [ "$with_etcd" = 1 ]; then
    poll 60 "an etcd leader agreed on by all three members" et_leader
    et_leader || die "etcd: no agreed leader"
    et_fol=$(((et_lead + 1) % 3))
    note "hacache leader ${hc_names[$hc_lead]}, follower used ${hc_names[$hc_fol]};" \
        "etcd leader etcd-$et_lead, follower used etcd-$et_fol"
else
    note "hacache leader ${hc_names[$hc_lead]}, follower used ${hc_names[$hc_fol]}"
fi

# Nothing leaves loopback: every listening socket of every started process is on 127.0.0.1.
loopback_check="not checked (ss missing)"
if command -v ss >/dev/null; then
    listening=$(ss -Hltnp 2>/dev/null || true)
    for i in "${!pids[@]}"; do
        socks=$(grep -E "pid=${pids[$i]}," <<<"$listening" | awk '{ print $4 }' || true)
        [ -n "$socks" ] || die "${names_by_pid[$i]} (pid ${pids[$i]}) listens nowhere according to ss"
        if grep -Ev '^127\.0\.0\.1:[0-9]+$' <<<"$socks" >/dev/null; then
            die "${names_by_pid[$i]} listens off loopback: $(tr '\n' ' ' <<<"$socks")"
        fi
    done
    loopback_check="checked with ss: every listening socket of the $n_servers servers is on 127.0.0.1"
fi

# ---------------------------------------------------------------- single requests (curl)
# call SYSTEM ... : a helper per system; each fails loudly on anything but HTTP 200.
curl_json() { # URL FILE-OR-EMPTY [curl args...] -> $body, dies unless 200
    local url=$1 data=$2 code; shift 2
    if [ -n "$data" ]; then
        code=$(curl -sS --max-time 10 -o "$tmp/curl.out" -w '%{http_code}' --data-binary "@$data" "$@" "$url") || code=000
    else
        code=$(curl -sS --max-time 10 -o "$tmp/curl.out" -w '%{http_code}' "$@" "$url") || code=000
    fi
    [ "$code" = 200 ] || die "$url answered HTTP $code: $(head -c 300 "$tmp/curl.out" 2>/dev/null)"
    body=$(tr -d '\0' <"$tmp/curl.out")
}
hc_key_url() { echo "${hc_urls[$1]}/v1/caches/bench/$key"; }
# hc_store NODE FILE: quorum PUT of FILE's bytes
hc_store() { curl_json "$(hc_key_url "$1")?ack=quorum" "$2" -X PUT; }
# hc_check NODE FILE WHAT: linearizable GET must return FILE's bytes; sets $hc_version
hc_check() {
    local code
    code=$(curl -sS --max-time 10 -D "$tmp/hdr.out" -o "$tmp/get.out" -w '%{http_code}' \
        "$(hc_key_url "$1")?consistency=linearizable") || code=000
    [ "$code" = 200 ] || die "hacache GET on ${hc_names[$1]} answered $code"
    cmp -s "$tmp/get.out" "$2" || die "hacache: the key does not hold $3"
    hc_version=$(tr -d '\r' <"$tmp/hdr.out" | awk -F': *' 'tolower($1) == "x-hacache-version" { print $2 }')
    case "$hc_version" in ''|*[!0-9]*) die "hacache: no X-Hacache-Version on GET" ;; esac
}
# et_store NODE B64: put through the JSON gateway
et_store() {
    printf '{"key":"%s","value":"%s"}' "$key_b64" "$2" >"$tmp/put1.json"
    curl_json "${et_urls[$1]}/v3/kv/put" "$tmp/put1.json"
}
# et_check NODE B64 WHAT: linearizable range must return B64; sets $et_rev (store revision)
et_check() {
    local got
    curl_json "${et_urls[$1]}/v3/kv/range" "$tmp/etcd-range-lin.json"
    got=$(jq -r '.kvs[0].value // ""' <<<"$body")
    [ "$got" = "$2" ] || die "etcd: the key does not hold $3 (range answered $(head -c 300 <<<"$body"))"
    et_rev=$(jq -r '.header.revision' <<<"$body")
    case "$et_rev" in ''|*[!0-9]*) die "etcd: no header.revision in $body" ;; esac
}
hc_store "$hc_lead" "$value"
hc_check "$hc_fol" "$value" "the value written through the leader"
if [ "$with_etcd" = 1 ]; then
    et_store "$et_lead" "$value_b64"
    et_check "$et_fol" "$value_b64" "the value written through the leader"
fi

# read_probe SYSTEM URL BODY-FILE: the read h2load is about to repeat, once through curl; it
# must return the value (gRPC: with grpc-status 0; h2load cannot see trailers, but a failed
# gRPC call has no response message, so the byte count below catches it), and sets $t_bytes to its body size (h2load's data byte count must be
# N times that; etcd's JSON carries revisions, so the size is taken right before each run).
read_probe() {
    if [ "$1" = hacache ]; then
        curl_json "$2" ""
        cmp -s "$tmp/curl.out" "$value" || die "hacache $2 does not return the value"
    elif [ "$1" = etcd-grpc ]; then
        local status
        curl_json "$2" "$3" --http2-prior-knowledge -D "$tmp/grpc-hdr.out" "${grpc_headers[@]}"
        status=$(tr -d '\r' <"$tmp/grpc-hdr.out" | awk -F': *' 'tolower($1) == "grpc-status" { print $2 }')
        [ "$status" = 0 ] || die "etcd gRPC $2 answered grpc-status '${status:-none}'"
        grep -qaF "$(cat "$value")" "$tmp/curl.out" ||
            die "etcd gRPC $2 does not return the value: $(tr -c '[:print:]' . <"$tmp/curl.out" | head -c 300)"
    else
        curl_json "$2" "$3"
        [ "$(jq -r '.kvs[0].value // ""' <<<"$body")" = "$value_b64" ] || die "etcd range on $2 lacks the value: $body"
    fi
    t_bytes=$(wc -c <"$tmp/curl.out")
}

# ---------------------------------------------------------------- h2load
# measure SYSTEM SCENARIO N RAW URL BODY-BYTES PROTO H2LOAD-ARGS...: one h2load run of N
# requests, output kept in RAW; sets $rps and $lat_us (mean time per request). Fails unless
# every request succeeded with 2xx over PROTO and, when BODY-BYTES is not '-', the responses
# carried exactly N * BODY-BYTES bytes of body.
measure() {
    local system=$1 scenario=$2 n=$3 raw=$4 url=$5 bytes=$6 want=$7; shift 7
    # h2load runs in the background and is waited for, so SIGINT/SIGTERM to this script stop the
    # run at once (bash defers traps until a foreground child exits) and cleanup stops h2load.
    echo "# ${pin_client[*]} h2load -n $n $* $url" >"$raw"
    "${pin_client[@]}" h2load -n "$n" "$@" "$url" >>"$raw" 2>&1 &
    load_pid=$!
    wait "$load_pid" || { load_pid=""; cat "$raw" >&2; die "h2load failed against $system ($scenario)"; }
    load_pid=""
    local proto ok twoxx data
    proto=$(sed -n 's/^Application protocol: //p' "$raw")
    rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$raw")
    ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$raw")
    twoxx=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$raw")
    data=$(sed -n 's/^traffic: .*(\([0-9]*\)) data$/\1/p' "$raw")
    lat_us=$(awk '$1 == "time" && $3 == "request:" {
            v = $6; f = 1
            if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1000; else if (v ~ /ns$/) f = 0.001; else if (v ~ /s$/) f = 1000000
            sub(/[a-z]+$/, "", v); printf "%.0f", v * f }' "$raw")
    if [ "$proto" != "$want" ] || [ -z "$rps" ] || [ "$ok" != "$n" ] || [ "$twoxx" != "$n" ] || [ -z "$lat_us" ]; then
        cat "$raw" >&2
        die "$system $scenario: want $n requests answered 2xx over $want, got ${ok:-?} succeeded," \
            "${twoxx:-?} 2xx, protocol '${proto:-?}' (raw: $raw)"
    fi
    if [ "$bytes" != - ] && [ "$data" != $((n * bytes)) ]; then
        cat "$raw" >&2
        die "$system $scenario: ${data:-?} body bytes, want $((n * bytes)) (raw: $raw)"
    fi
}

# target SYSTEM SCENARIO: sets t_url, t_args (the h2load arguments besides -n/-c), t_node
# (the node the requests go to) and, for writes, t_bytes=- (response bodies not checked).
target() {
    local system=$1 scenario=$2 node
    case "$scenario" in
        write-leader*) if [ "$system" = hacache ]; then node=$hc_lead; else node=$et_lead; fi ;;
        *) if [ "$system" = hacache ]; then node=$hc_fol; else node=$et_fol; fi ;;
    esac
    t_node=$node t_proto=(--h1) t_want=http/1.1
    [ "$system" != etcd-grpc ] || t_proto=("${grpc_headers[@]}") t_want=h2c
    case "$system/$scenario" in
        hacache/write-*) t_url="$(hc_key_url "$node")?ack=quorum" t_bytes=- t_args=(-d "$value" -H ':method: PUT') ;;
        hacache/read-lin*) t_url="$(hc_key_url "$node")?consistency=linearizable" t_args=() ;;
        hacache/read-local*) t_url="$(hc_key_url "$node")?consistency=local" t_args=() ;;
        etcd/write-*) t_url="${et_urls[$node]}/v3/kv/put" t_bytes=- t_args=(-d "$tmp/etcd-put.json") ;;
        etcd/read-lin*) t_url="${et_urls[$node]}/v3/kv/range" t_args=(-d "$tmp/etcd-range-lin.json") ;;
        etcd/read-local*) t_url="${et_urls[$node]}/v3/kv/range" t_args=(-d "$tmp/etcd-range-ser.json") ;;
        etcd-grpc/write-*) t_url="${et_urls[$node]}/etcdserverpb.KV/Put" t_bytes=- t_args=(-d "$tmp/etcd-put.grpc") ;;
        etcd-grpc/read-lin*) t_url="${et_urls[$node]}/etcdserverpb.KV/Range" t_args=(-d "$tmp/etcd-range-lin.grpc") ;;
        etcd-grpc/read-local*) t_url="${et_urls[$node]}/etcdserverpb.KV/Range" t_args=(-d "$tmp/etcd-range-ser.grpc") ;;
        *) die "unknown scenario $scenario" ;;
    esac
}

# run SYSTEM SCENARIO CONNS N RAW: one h2load run; for writes, a sentinel goes in before and
# the value h2load wrote must be there after, with the log advanced by at least N entries
# (hacache: the entry's version is its raft index) or by exactly N revisions (etcd).
run() {
    local system=$1 scenario=$2 conns=$3 n=$4 raw=$5 before
    target "$system" "$scenario"
    case "$scenario" in
        write-*)
            if [ "$system" = hacache ]; then
                hc_store "$hc_lead" "$sentinel"; hc_check "$t_node" "$sentinel" "the sentinel"; before=$hc_version
            else
                et_store "$et_lead" "$sentinel_b64"; et_check "$t_node" "$sentinel_b64" "the sentinel"; before=$et_rev
            fi ;;
        read-*) read_probe "$system" "$t_url" "${t_args[1]:-}" ;;
    esac
    measure "$system" "$scenario" "$n" "$raw" "$t_url" "$t_bytes" "$t_want" "${t_proto[@]}" -c "$conns" -m 1 -t 1 "${t_args[@]}"
    case "$scenario" in
        write-*)
            if [ "$system" = hacache ]; then
                hc_check "$t_node" "$value" "the value h2load PUT (is h2load sending PUT?)"
                [ $((hc_version - before)) -ge "$n" ] ||
                    die "hacache: the version moved by $((hc_version - before)) over $n PUTs (raw: $raw)"
            else
                et_check "$t_node" "$value_b64" "the value h2load put"
                [ $((et_rev - before)) = "$n" ] ||
                    die "etcd: the revision moved by $((et_rev - before)) over $n puts (raw: $raw)"
            fi ;;
    esac
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

warmup=$((requests / 10 < 1000 ? (requests < 1000 ? requests : 1000) : requests / 10))
rows=()
systems=(hacache etcd)
[ "$grpc" = 0 ] || systems+=(etcd-grpc)
range_of() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
# scenario NAME CONNS: one warm-up run per system, then $rounds rounds, the order of the systems
# rotating by one each round (so each goes first in turn: with two, alternately). Appends to
# $rows the medians, the median of the per-round ratios hacache/etcd and hacache/etcd-gRPC and
# their ranges. The leaders must not have moved by the end.
scenario() {
    local name=$1 conns=$2 tag round system i order lead_hc lead_et row
    local -A rps_of=() lat_of=() cur=()
    local r_json=() r_grpc=()
    tag="$name-c$conns"
    note "$tag"
    for system in "${systems[@]}"; do
        run "$system" "$name" "$conns" "$warmup" "$out/raw/cluster-$tag-$system-warmup.txt"
    done
    for round in $(seq "$rounds"); do
        order=()
        for i in "${!systems[@]}"; do order+=("${systems[$(((i + round - 1) % ${#systems[@]}))]}"); done
        for system in "${order[@]}"; do
            run "$system" "$name" "$conns" "$requests" "$out/raw/cluster-$tag-$system-$round.txt"
            rps_of[$system]+=" $rps" lat_of[$system]+=" $lat_us" cur[$system]=$rps
        done
        r_json+=("$(ratio "${cur[hacache]}" "${cur[etcd]}")")
        [ "$grpc" = 0 ] || r_grpc+=("$(ratio "${cur[hacache]}" "${cur[etcd-grpc]}")")
    done
    lead_hc=$hc_lead lead_et=$et_lead
    if ! hc_leader || [ "$hc_lead" != "$lead_hc" ]; then die "hacache leadership moved during $tag"; fi
    if ! et_leader || [ "$et_lead" != "$lead_et" ]; then die "etcd leadership moved during $tag"; fi
    # shellcheck disable=SC2086  # the per-system lists are space-separated numbers
    row="$tag $(median ${rps_of[hacache]}) $(median ${rps_of[etcd]}) $(median "${r_json[@]}") $(range_of "${r_json[@]}")"
    # shellcheck disable=SC2086
    row+=" $(median ${lat_of[hacache]}) $(median ${lat_of[etcd]})"
    if [ "$grpc" = 1 ]; then
        # shellcheck disable=SC2086
        row+=" $(median ${rps_of[etcd-grpc]}) $(median "${r_grpc[@]}") $(range_of "${r_grpc[@]}") $(median ${lat_of[etcd-grpc]})"
    fi
    rows+=("$row")
}

# ---------------------------------------------------------------- RESP (redis-benchmark)
# redis-benchmark's key for SET without -r (the placeholder stays in the name). RESP
# connections start in the cache 'default', which HTTP serves under /v1/caches/default/.
resp_key='key:__rand_int__'
resp_key_url() { echo "${hc_urls[$1]}/v1/caches/default/key%3A__rand_int__"; }
# resp_get NODE: linearizable GET of the key through NODE's HTTP API into $tmp/resp-get.out;
# sets $hc_version (the entry's raft index).
resp_get() {
    local code
    code=$(curl -sS --max-time 10 -D "$tmp/hdr.out" -o "$tmp/resp-get.out" -w '%{http_code}' \
        "$(resp_key_url "$1")?consistency=linearizable") || code=000
    [ "$code" = 200 ] || die "hacache GET $resp_key on ${hc_names[$1]} answered $code"
    hc_version=$(tr -d '\r' <"$tmp/hdr.out" | awk -F': *' 'tolower($1) == "x-hacache-version" { print $2 }')
    case "$hc_version" in ''|*[!0-9]*) die "hacache: no X-Hacache-Version on GET" ;; esac
}
# resp_run NODE PIPELINE N RAW: one `redis-benchmark -t set` of N requests against NODE's RESP
# port (-P PIPELINE when above 1), output in RAW; sets $rps and $p50 (ms). Before it the
# sentinel is written through the leader (RESP SET, ack quorum) and must be what NODE returns.
# After it: exit status 0 and one SET figure; a local RESP GET on NODE (read-your-writes) returns
# a value of -d bytes that is not the sentinel, the same bytes as a linearizable read, and the
# entry's version moved by at least N.
resp_run() {
    local node=$1 pipe=$2 n=$3 raw=$4 got before rc secs csv
    local cmd=(redis-benchmark -h 127.0.0.1 -p "${hc_resp[$node]}" -t set -n "$n" -c "$resp_clients"
        -d "$value_bytes" --csv)
    [ "$pipe" = 1 ] || cmd+=(-P "$pipe")
    got=$(timeout 10 redis-cli -h 127.0.0.1 -p "${hc_resp[$hc_lead]}" SET "$resp_key" "$(cat "$sentinel")") ||
        got="redis-cli failed"
    [ "$got" = OK ] || die "hacache: RESP SET of the sentinel on the leader answered '$got'"
    resp_get "$node"
    cmp -s "$tmp/resp-get.out" "$sentinel" || die "hacache: $resp_key does not hold the sentinel on ${hc_names[$node]}"
    before=$hc_version
    secs=$((120 + n / 100)) # a bound for a run that hangs, far above any plausible duration
    echo "# ${pin_client[*]} ${cmd[*]}" >"$raw"
    # in the background and waited for, like h2load, so INT/TERM stop it at once
    timeout -k 5 "$secs" "${pin_client[@]}" "${cmd[@]}" >>"$raw" 2>&1 </dev/null &
    load_pid=$!
    rc=0
    wait "$load_pid" || rc=$?
    load_pid=""
    if [ "$rc" = 124 ]; then
        cat "$raw" >&2; die "redis-benchmark against ${hc_names[$node]} did not finish within $secs s (raw: $raw)"
    fi
    [ "$rc" = 0 ] || { cat "$raw" >&2; die "redis-benchmark against ${hc_names[$node]} exited $rc (raw: $raw)"; }
    # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
    csv=$(tr -d '"\r' <"$raw" | awk -F, '$1 == "SET" && NF >= 5')
    if [ -z "$csv" ] || [ "$(wc -l <<<"$csv")" != 1 ]; then
        cat "$raw" >&2; die "redis-benchmark against ${hc_names[$node]}: want one SET line of CSV (raw: $raw)"
    fi
    rps=$(cut -d, -f2 <<<"$csv") p50=$(cut -d, -f5 <<<"$csv")
    for got in "$rps" "$p50"; do
        [[ "$got" =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
            { cat "$raw" >&2; die "redis-benchmark against ${hc_names[$node]}: '$got' is not a number (raw: $raw)"; }
    done
    awk -v a="$rps" 'BEGIN { exit !(a > 0) }' || die "redis-benchmark against ${hc_names[$node]}: 0 req/s (raw: $raw)"
    timeout 10 redis-cli -h 127.0.0.1 -p "${hc_resp[$node]}" GET "$resp_key" >"$tmp/resp-local.out" ||
        die "hacache: RESP GET $resp_key on ${hc_names[$node]} failed"
    got=$(($(wc -c <"$tmp/resp-local.out") - 1))
    [ "$got" = "$value_bytes" ] ||
        die "hacache: $resp_key holds $got bytes on ${hc_names[$node]} after the run, want $value_bytes (-d)"
    resp_get "$node"
    cmp -s <(head -c "$value_bytes" "$tmp/resp-local.out") "$tmp/resp-get.out" ||
        die "hacache: the local and the linearizable read of $resp_key on ${hc_names[$node]} differ"
    ! cmp -s "$tmp/resp-get.out" "$sentinel" || die "hacache: $resp_key still holds the sentinel after $n SETs (raw: $raw)"
    [ $((hc_version - before)) -ge "$n" ] ||
        die "hacache: the version moved by $((hc_version - before)) over $n RESP SETs (raw: $raw)"
}

resp_rows=()
resp_warmup=$((resp_n / 10 < 1000 ? (resp_n < 1000 ? resp_n : 1000) : resp_n / 10))
# resp_part: a warm-up run per node and pipelining depth, then $rounds rounds of the four runs
# (leader and follower, without and with -P), their order rotating by one each round. Appends
# to $resp_rows, per node: the median req/s without and with -P, the median and range of the
# per-round ratios pipelined/unpipelined, the median p50s. The leader must not move.
resp_part() {
    local -A rps_of=() p50_of=() cur=() rat=()
    local configs=(leader-1 "leader-$resp_pipeline" follower-1 "follower-$resp_pipeline")
    local c i round role pipe node lead row
    for round in $(seq 0 "$rounds"); do
        for i in 0 1 2 3; do
            c=${configs[$(((i + round + 3) % 4))]}
            role=${c%-*} pipe=${c##*-} node=$hc_lead
            [ "$role" = leader ] || node=$hc_fol
            if [ "$round" = 0 ]; then
                note "RESP SET -c $resp_clients -P $pipe on the $role (warm-up)"
                resp_run "$node" "$pipe" "$resp_warmup" "$out/raw/cluster-resp-$c-warmup.txt"
                continue
            fi
            resp_run "$node" "$pipe" "$resp_n" "$out/raw/cluster-resp-$c-$round.txt"
            rps_of[$c]+=" $rps" p50_of[$c]+=" $p50" cur[$c]=$rps
        done
        [ "$round" = 0 ] && continue
        for role in leader follower; do
            rat[$role]+=" $(ratio "${cur[$role-$resp_pipeline]}" "${cur[$role-1]}")"
        done
    done
    lead=$hc_lead
    if ! hc_leader || [ "$hc_lead" != "$lead" ]; then die "hacache leadership moved during the RESP runs"; fi
    for role in leader follower; do
        # shellcheck disable=SC2086  # the lists are space-separated numbers
        row="$role $(median ${rps_of[$role-1]}) $(median ${rps_of[$role-$resp_pipeline]}) $(median ${rat[$role]})"
        # shellcheck disable=SC2086
        row+=" $(range_of ${rat[$role]}) $(median ${p50_of[$role-1]}) $(median ${p50_of[$role-$resp_pipeline]})"
        resp_rows+=("$row")
    done
}

rm -f "$out"/raw/cluster-*.txt
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
t_start=$SECONDS
if [ "$with_etcd" = 1 ]; then
    scenario write-leader 16
    scenario write-leader 1
    scenario write-follower 16
    scenario write-follower 1
    scenario read-lin 16
    scenario read-local 16
fi
elapsed=$((SECONDS - t_start))
t_start=$SECONDS
[ "$with_resp" = 0 ] || resp_part
elapsed_resp=$((SECONDS - t_start))
for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || die "${names_by_pid[$i]} died during the run"
done

# ---------------------------------------------------------------- report
report="$out/cluster_results.txt.tmp"
{
    if [ "$with_etcd" = 1 ]; then
        echo "hacache cluster vs etcd cluster, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    else
        echo "hacache cluster, RESP only, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    fi
    echo "host: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)," \
        "$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null)"
    echo "hacached: $("$hacached" --version 2>&1 | head -n 1) ($hacached, CMAKE_BUILD_TYPE=${build_type:-unknown});" \
        "3 nodes, mTLS between peers, ack=quorum writes"
    if [ "$with_etcd" = 1 ]; then
        echo "etcd: $("$etcd_bin" --version 2>/dev/null | head -n 1 | sed 's/^etcd Version: //'), 3 members," \
            "mTLS between peers (--peer-client-cert-auth), v3 JSON gateway over HTTP/1.1"
        echo "data dirs (both): $fs_desc; etcd fsyncs its WAL on every write, hacache keeps data in memory only"
    fi
    echo "cpu: $pinning; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
    echo "network: $loopback_check"
    if [ "$with_etcd" = 1 ]; then
        echo
        echo "== HTTP/1.1: hacache vs etcd"
        echo "load: $(h2load --version | head -n 1) --h1 -m 1 -t 1, -n $requests per run, value $value_bytes bytes, one key"
        echo "each figure: median of $rounds round(s), the order of the systems rotating by one each round," \
            "after a $warmup-request warm-up of each; ratio: median of the per-round ratios; measured in ${elapsed} s"
        echo
        printf '%-19s %13s %11s %6s  %-11s %9s %9s\n' scenario "hacache req/s" "etcd req/s" ratio "ratio range" "hc mean" "etcd mean"
        for row in "${rows[@]}"; do
            read -r s h e r rg hl el _ <<<"$row"
            printf '%-19s %13.0f %11.0f %6.2f  %-11s %7.0fus %7.0fus\n' "$s" "$h" "$e" "$r" "$rg" "$hl" "$el"
        done
        echo "ratio = hacache / etcd, both over HTTP/1.1 (above 1: hacache serves more requests per second)"
        echo "mean = h2load's mean time per request (median over the rounds)"
        if [ "$grpc" = 1 ]; then
            echo
            echo "reference, same rounds: etcd through its native gRPC API (protobuf over h2c, -m 1, same -c),"
            echo "no JSON gateway in the path; ratio = hacache (HTTP/1.1, above) / etcd gRPC"
            printf '%-19s %15s %6s  %-11s %9s\n' scenario "etcd gRPC req/s" ratio "ratio range" "gRPC mean"
            for row in "${rows[@]}"; do
                read -r s _ _ _ _ _ _ g gr grg gl <<<"$row"
                printf '%-19s %15.0f %6.2f  %-11s %7.0fus\n' "$s" "$g" "$gr" "$grg" "$gl"
            done
        fi
        echo "write-leader/write-follower: quorum write sent to the leader / to a follower (forwarded);"
        echo "read-lin: linearizable read on a follower; read-local: hacache consistency=local, etcd serializable, on a follower"
    fi
    if [ ${#resp_rows[@]} -gt 0 ]; then
        echo
        echo "== RESP writes: hacache, unpipelined vs pipelined"
        echo "load: $(redis-benchmark --version | head -n 1) -t set -n $resp_n -c $resp_clients -d $value_bytes --csv," \
            "without -P and with -P $resp_pipeline; one key ($resp_key), cache 'default', no token;" \
            "ack quorum (a RESP connection's default)"
        echo "each figure: median of $rounds round(s), the order of the four runs rotating by one each round," \
            "after a $resp_warmup-request warm-up of each; ratio: median of the per-round ratios; measured in ${elapsed_resp} s"
        echo
        printf '%-9s %13s %13s %12s  %-11s %11s %11s\n' node "no -P req/s" "-P $resp_pipeline req/s" "ratio P/noP" \
            "ratio range" "p50 no -P" "p50 -P $resp_pipeline"
        for row in "${resp_rows[@]}"; do
            read -r role r1 rp r rg l1 lp <<<"$row"
            printf '%-9s %13.0f %13.0f %12.2f  %-11s %9.3fms %9.3fms\n' "$role" "$r1" "$rp" "$r" "$rg" "$l1" "$lp"
        done
        echo "ratio = req/s with -P $resp_pipeline / req/s without (above 1: pipelining buys throughput);" \
            "p50 = redis-benchmark's median latency"
        echo "leader: SETs sent to the leader's RESP port; follower: to a follower's (forwarded to the leader)"
    fi
    echo
    echo "raw h2load and redis-benchmark output: bench/out/raw/cluster-*.txt"
} >"$report"
mv "$report" "$out/cluster_results.txt"
cat "$out/cluster_results.txt"
