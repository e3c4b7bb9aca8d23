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
# usage: bench/cluster_bench.sh [--quick] [-n N] [--rounds N] [--value-bytes N] [--no-pin]
#                               [--no-grpc]
# env:   HC_BUILD_DIR  build directory holding bin/hacached (default: build-bench; built there,
#                      Release, when missing)
#        ETCD          etcd binary (default: etcd on PATH, Debian's /usr/bin/etcd)
#        TMPDIR        where the temporary directory (certificates, both data dirs) goes
# output: a table on stdout, also bench/out/cluster_results.txt; raw h2load output in
#         bench/out/raw/cluster-*. Every process started is stopped on exit.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/cluster_bench.sh [options]
  --quick            smoke run: 2000 requests per scenario instead of 20000
  -n N               requests per measured run (default 20000)
  --rounds N         measured rounds per scenario, medians reported (default 3)
  --value-bytes N    size of the written value (default 64)
  --no-pin           do not pin servers and h2load to separate CPUs
  --no-grpc          skip the reference column: etcd through its native gRPC API (h2c)
  -h, --help         this text
env: HC_BUILD_DIR (default build-bench), ETCD (default etcd), TMPDIR
EOF
}

die() { echo "cluster_bench.sh: $*" >&2; exit 1; }
note() { echo "cluster_bench.sh: $*" >&2; }

requests=20000 rounds=3 value_bytes=64 pin=1 grpc=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) requests=2000 ;;
        -n) requests=${2:?-n needs a number}; shift ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift ;;
        --value-bytes) value_bytes=${2:?--value-bytes needs a number}; shift ;;
        --no-pin) pin=0 ;;
        --no-grpc) grpc=0 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
for v in "$requests" "$rounds" "$value_bytes"; do
    case "$v" in ''|*[!0-9]*) die "not a non-negative integer: '$v'" ;; esac
done
if [ "$requests" -eq 0 ] || [ "$rounds" -eq 0 ] || [ "$value_bytes" -eq 0 ]; then
    die "-n, --rounds and --value-bytes must be positive"
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
build_dir=${HC_BUILD_DIR:-build-bench}
etcd_bin=${ETCD:-etcd}
out="$repo/bench/out"
mkdir -p "$out/raw"

for t in h2load etcdctl curl jq openssl base64 cmp awk; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install nghttp2-client etcd-client curl jq openssl)"
done
command -v "$etcd_bin" >/dev/null || die "no etcd binary '$etcd_bin' (apt-get install etcd-server, or set ETCD)"

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

# Six server processes share one CPU and h2load gets the other, the same for both systems, so
# the load generator does not steal cycles from the servers (and the servers' throughput is
# what one core of CPU buys in each system). --no-pin leaves it to the scheduler.
pin_server=() pin_client=() pinning="not pinned"
if [ "$pin" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 0) pin_client=(taskset -c 1)
    pinning="all six server processes pinned to CPU 0, h2load to CPU 1 (taskset)"
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
hc_peer=() hc_http=() hc_names=() hc_urls=()
ha_hosts=""
for i in 0 1 2; do
    free_port; hc_peer[i]=$port
    free_port; hc_http[i]=$port
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
    start "hacache-$i" env HA_MODE=true HA_HOSTS="$ha_hosts" HOSTNAME_OVERWRITE="${hc_names[$i]}" \
        CACHE_LISTEN_ADDR=127.0.0.1 CACHE_HTTP_ADDR="127.0.0.1:${hc_http[$i]}" \
        CACHE_AUTH_TOKEN_FILE="$certs/token" CACHE_TLS=true \
        CACHE_TLS_SERVER_CERT="$certs/node-$i.crt" CACHE_TLS_SERVER_KEY="$certs/node-$i.key" \
        CACHE_TLS_CA_SERVER="$certs/ca.crt" CACHE_DATA_DIR="$data/hacache-$i" \
        CACHE_MAX_MEMORY=256MiB CACHE_LOG_LEVEL=warn "$hacached"
done

# ---------------------------------------------------------------- etcd cluster (hacache started above)
for i in 0 1 2; do
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
note "starting 3 hacache nodes and 3 etcd members on 127.0.0.1 (data in $data)"
poll 60 "a hacache leader agreed on by all three nodes" hc_leader
poll 60 "an etcd leader agreed on by all three members" et_leader
hc_leader || die "hacache: no agreed leader"
et_leader || die "etcd: no agreed leader"
hc_fol=$(((hc_lead + 1) % 3)) et_fol=$(((et_lead + 1) % 3))
note "hacache leader ${hc_names[$hc_lead]}, follower used ${hc_names[$hc_fol]};" \
    "etcd leader etcd-$et_lead, follower used etcd-$et_fol"

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
    loopback_check="checked with ss: every listening socket of the six servers is on 127.0.0.1"
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
et_store "$et_lead" "$value_b64"
et_check "$et_fol" "$value_b64" "the value written through the leader"

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

rm -f "$out"/raw/cluster-*.txt
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
t_start=$SECONDS
scenario write-leader 16
scenario write-leader 1
scenario write-follower 16
scenario write-follower 1
scenario read-lin 16
scenario read-local 16
elapsed=$((SECONDS - t_start))
for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || die "${names_by_pid[$i]} died during the run"
done

# ---------------------------------------------------------------- report
report="$out/cluster_results.txt.tmp"
{
    echo "hacache cluster vs etcd cluster, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    echo "host: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)," \
        "$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null)"
    echo "hacached: $("$hacached" --version 2>&1 | head -n 1) ($hacached, CMAKE_BUILD_TYPE=${build_type:-unknown});" \
        "3 nodes, mTLS between peers, ack=quorum writes"
    echo "etcd: $("$etcd_bin" --version 2>/dev/null | head -n 1 | sed 's/^etcd Version: //'), 3 members," \
        "mTLS between peers (--peer-client-cert-auth), v3 JSON gateway over HTTP/1.1"
    echo "data dirs (both): $fs_desc; etcd fsyncs its WAL on every write, hacache keeps data in memory only"
    echo "load: $(h2load --version | head -n 1) --h1 -m 1 -t 1, -n $requests per run, value $value_bytes bytes, one key"
    echo "cpu: $pinning; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
    echo "network: $loopback_check"
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
    echo
    echo "raw h2load output: bench/out/raw/cluster-*.txt"
} >"$report"
mv "$report" "$out/cluster_results.txt"
cat "$out/cluster_results.txt"
