#!/usr/bin/env bash
# bench.sh — hacached next to the servers it is measured against, in one run, reported as ratios.
#
# HTTP section: a standalone hacached and bench/hello_h2o (h2o 2.2.5 answering every request
# with a fixed body of the same size as the cached value) on free loopback ports, driven by the
# same h2load command one right after the other: GET and PUT, over h2c and HTTP/1.1.
# ratio = hacached req/s / hello_h2o req/s, i.e. how much of the bare HTTP stack's throughput is
# left once hacached does its work.
#
# RESP section: the same hacached with a RESP listener (CACHE_RESP_ADDR on loopback, no token)
# next to redis-server (--save '' --appendonly no), both driven by the same redis-benchmark
# command (-t set,get -c 50, without and with -P 16). ratio = hacached req/s / redis-server req/s.
# Every run is checked: redis-benchmark must exit 0 (it stops at the first error reply) and print
# exactly one SET and one GET figure; each server must have counted at least N SETs and N GET
# hits during the run; the key redis-benchmark writes (key:__rand_int__) must hold a value of the
# requested size afterwards (a sentinel is stored before each run), the same bytes on both.
#
# Each scenario: a warm-up run against each server, then --rounds rounds, the server measured
# first alternating between rounds; medians, and the median and range of the per-round ratios.
# Servers are pinned to CPU 0 and the load generators to CPU 1 (taskset).
#
# usage: bench/bench.sh [--quick] [--install] [--no-resp | --resp-only] [-n N] [-c N] [-m N]
#                       [--rounds N] [--value-bytes N] [--resp-n N] [--resp-clients N]
#                       [--resp-pipeline N]
# env:   HC_BUILD_DIR  build directory holding bin/hacached (default: build)
# output: a table on stdout, also written to bench/out/results.txt; raw tool output in
#         bench/out/raw/. Everything listens on 127.0.0.1; every process started is stopped
#         on exit.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/bench.sh [options]
  --quick            smoke run: one round; 20000 requests per h2load run instead of 200000,
                     50000 per redis-benchmark run instead of 500000
  -n N               h2load requests per run (default 200000)
  -c N               h2load concurrent connections (default 16)
  -m N               concurrent streams per connection for h2c (default 16; HTTP/1.1 uses 1)
  --rounds N         measured runs per scenario and server, medians reported (default 5)
  --value-bytes N    size of the cached value, of hello_h2o's body and redis-benchmark's -d
                     (default 64)
  --resp-n N         redis-benchmark -n (requests per command and run; default 500000)
  --resp-clients N   redis-benchmark -c (default 50)
  --resp-pipeline N  -P of the pipelined RESP scenarios (default 16)
  --no-resp          skip the RESP section (hacached vs redis-server); --no-redis is the same
  --resp-only        only the RESP section (no h2load, no hello_h2o)
  --install          (root) apt-get install missing tools: nghttp2-client, curl, a C toolchain,
                     the libraries hello_h2o and hacached need, redis-server and redis-tools
  -h, --help         this text
env: HC_BUILD_DIR (default build): where bin/hacached is, built there (Release) when missing
EOF
}

die() { echo "bench.sh: $*" >&2; exit 1; }
note() { echo "bench.sh: $*" >&2; }

requests=200000 conns=16 streams=16 value_bytes=64 rounds=5 install=0
resp_n=500000 resp_clients=50 resp_pipeline=16 with_http=1 with_resp=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) requests=20000 resp_n=50000 rounds=1 ;;
        -n) requests=${2:?-n needs a number}; shift ;;
        -c) conns=${2:?-c needs a number}; shift ;;
        -m) streams=${2:?-m needs a number}; shift ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift ;;
        --value-bytes) value_bytes=${2:?--value-bytes needs a number}; shift ;;
        --resp-n) resp_n=${2:?--resp-n needs a number}; shift ;;
        --resp-clients) resp_clients=${2:?--resp-clients needs a number}; shift ;;
        --resp-pipeline) resp_pipeline=${2:?--resp-pipeline needs a number}; shift ;;
        --no-resp|--no-redis) with_resp=0 ;;
        --resp-only) with_http=0 ;;
        --install) install=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
for v in "$requests" "$conns" "$streams" "$value_bytes" "$rounds" "$resp_n" "$resp_clients" "$resp_pipeline"; do
    case "$v" in ''|*[!0-9]*) die "not a non-negative integer: '$v'" ;; esac
done
if [ "$requests" -eq 0 ] || [ "$conns" -eq 0 ] || [ "$streams" -eq 0 ] || [ "$rounds" -eq 0 ] ||
    [ "$value_bytes" -eq 0 ] || [ "$resp_n" -eq 0 ] || [ "$resp_clients" -eq 0 ]; then
    die "-n, -c, -m, --rounds, --value-bytes, --resp-n and --resp-clients must be positive"
fi
[ "$resp_pipeline" -ge 2 ] || die "--resp-pipeline must be at least 2 (the other scenarios run without -P)"
[ "$with_http" = 1 ] || [ "$with_resp" = 1 ] || die "--resp-only and --no-resp together leave nothing to measure"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
build_dir=${HC_BUILD_DIR:-build}
out="$repo/bench/out"
mkdir -p "$out/raw"

# ---------------------------------------------------------------- tools
if [ "$install" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "--install needs root"
    pkgs=()
    command -v curl >/dev/null || pkgs+=(curl)
    command -v pkg-config >/dev/null || pkgs+=(pkg-config)
    if [ "$with_http" = 1 ] || [ ! -x "$build_dir/bin/hacached" ]; then
        command -v cc >/dev/null || pkgs+=(gcc)
        pkg-config --exists libh2o 2>/dev/null || pkgs+=(libh2o-dev)
        pkg-config --exists libuv 2>/dev/null || pkgs+=(libuv1-dev)
        pkg-config --exists openssl 2>/dev/null || pkgs+=(libssl-dev)
    fi
    [ "$with_http" = 0 ] || command -v h2load >/dev/null || pkgs+=(nghttp2-client)
    if [ ! -x "$build_dir/bin/hacached" ]; then
        command -v cmake >/dev/null || pkgs+=(cmake)
        command -v protoc-c >/dev/null || pkgs+=(protobuf-c-compiler)
        pkg-config --exists libprotobuf-c 2>/dev/null || pkgs+=(libprotobuf-c-dev)
        pkg-config --exists libsodium 2>/dev/null || pkgs+=(libsodium-dev)
    fi
    if [ "$with_resp" = 1 ]; then
        command -v redis-server >/dev/null || pkgs+=(redis-server)
        { command -v redis-benchmark && command -v redis-cli; } >/dev/null || pkgs+=(redis-tools)
    fi
    if [ ${#pkgs[@]} -gt 0 ]; then
        note "installing ${pkgs[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
    fi
fi
need=(curl timeout)
[ "$with_http" = 0 ] || need+=(h2load cc pkg-config)
[ "$with_resp" = 0 ] || need+=(redis-server redis-benchmark redis-cli)
for t in "${need[@]}"; do
    command -v "$t" >/dev/null || die "$t not found (run as root with --install, or apt-get install it;" \
        "--no-resp skips the redis-server comparison)"
done

# ---------------------------------------------------------------- builds
hello="$out/hello_h2o"
if [ "$with_http" = 1 ] && { [ ! -x "$hello" ] || [ bench/hello_h2o.c -nt "$hello" ]; }; then
    note "building $hello"
    # shellcheck disable=SC2046  # pkg-config output is a list of flags
    cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$hello" bench/hello_h2o.c \
        $(pkg-config --cflags --libs libh2o libuv openssl)
fi
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
tmp=$(mktemp -d)
pids=() load_pid=""
# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup() {
    local pid
    if [ -n "$load_pid" ]; then kill -TERM "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; fi
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Pin servers to CPU 0 and load generators to CPU 1 so they do not fight for one core.
pin_server=() pin_client=() pinning="not pinned (taskset missing or fewer than 2 CPUs)"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 0) pin_client=(taskset -c 1)
    pinning="servers pinned to CPU 0, load generators to CPU 1 (taskset)"
fi

# free_port: sets $port to a loopback port nobody accepts on right now (a connect is refused)
# and that this run has not handed out before, below the kernel's ephemeral range (a port in
# that range can be the local end of some client's connection, and then a bind fails).
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

# start NAME CMD... : runs CMD pinned to the server CPU, logs to $tmp/NAME.log, sets $last_pid.
start() {
    local name=$1; shift
    "${pin_server[@]}" "$@" </dev/null >"$tmp/$name.log" 2>&1 &
    last_pid=$!
    pids+=("$last_pid")
}

# wait_until PID NAME CMD... : polls CMD until it succeeds; fails if PID dies or after 15 s.
wait_until() {
    local pid=$1 name=$2; shift 2
    local deadline=$((SECONDS + 15))
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { cat "$tmp/$name.log" >&2; die "$name exited during start-up"; }
        [ "$SECONDS" -lt "$deadline" ] || { cat "$tmp/$name.log" >&2; die "$name not up after 15 s"; }
        sleep 0.05
    done
}

value="$tmp/value.bin"
sentinel="$tmp/sentinel.bin"
head -c "$value_bytes" /dev/zero | tr '\0' 'v' >"$value"
head -c "$value_bytes" /dev/zero | tr '\0' 's' >"$sentinel"

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
free_port
hc_port=$port
hc_url="http://127.0.0.1:$hc_port"
hc_env=(CACHE_HTTP_ADDR="127.0.0.1:$hc_port" CACHE_MAX_MEMORY=512MiB CACHE_LOG_LEVEL=warn CACHE_DATA_DIR="$tmp/data")
if [ "$with_resp" = 1 ]; then
    free_port
    hc_resp_port=$port
    hc_env+=(CACHE_RESP_ADDR="127.0.0.1:$hc_resp_port")
fi
start hacached env "${hc_env[@]}" "$hacached"
hc_pid=$last_pid
wait_until "$hc_pid" hacached curl -fsS --max-time 1 -o /dev/null "$hc_url/healthz"

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
range_of() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
best() { printf '%s\n' "$@" | sort -g | tail -n 1; }
warmup_of() { echo $(($1 / 10 < 1000 ? ($1 < 1000 ? $1 : 1000) : $1 / 10)); }

rm -f "$out"/raw/*.txt
rows=()
if [ "$with_http" = 1 ]; then
# ================================================================ HTTP: hacached vs hello_h2o
free_port
hello_port=$port
hello_url="http://127.0.0.1:$hello_port"
start hello_h2o "$hello" "$hello_port" "$value_bytes"
hello_pid=$last_pid
wait_until "$hello_pid" hello_h2o curl -fsS --max-time 1 -o /dev/null "$hello_url/healthz"

# hc_put KEY FILE / hc_get KEY: the API through curl, failing loudly on anything but 200.
hc_put() {
    local status
    status=$(curl -sS --max-time 5 -o "$tmp/put.out" -w '%{http_code}' -X PUT --data-binary "@$2" \
        "$hc_url/v1/caches/bench/$1")
    [ "$status" = 200 ] || die "PUT $1 answered $status: $(cat "$tmp/put.out")"
}
hc_expect() {
    local status
    status=$(curl -sS --max-time 5 -o "$tmp/get.out" -w '%{http_code}' "$hc_url/v1/caches/bench/$1")
    [ "$status" = 200 ] || die "GET $1 answered $status: $(head -c 300 "$tmp/get.out")"
    cmp -s "$tmp/get.out" "$2" || die "GET $1 returned other bytes than $3"
}
hc_put get-key "$value"
hc_expect get-key "$value" "the preloaded value"

# measure TARGET SCENARIO PROTO N RAW URL H2LOAD-ARGS... : one h2load run of N requests, its
# output kept in RAW; sets $rps. Fails unless every request succeeded with 2xx over the
# expected protocol (and, for GET, every response carried the value's bytes).
measure() {
    local target=$1 scenario=$2 proto=$3 n=$4 raw=$5 url=$6; shift 6
    {
        echo "# ${pin_client[*]} h2load -n $n $* $url"
        "${pin_client[@]}" h2load -n "$n" "$@" "$url" 2>&1
    } >"$raw" || { cat "$raw" >&2; die "h2load failed against $target ($scenario $proto)"; }
    local got_proto ok twoxx data
    got_proto=$(sed -n 's/^Application protocol: //p' "$raw")
    rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$raw")
    ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$raw")
    twoxx=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$raw")
    data=$(sed -n 's/^traffic: .*(\([0-9]*\)) data$/\1/p' "$raw")
    if [ "$got_proto" != "$proto" ] || [ -z "$rps" ] || [ "$ok" != "$n" ] || [ "$twoxx" != "$n" ]; then
        cat "$raw" >&2
        die "$target $scenario over $proto: want $n requests answered 2xx over $proto," \
            "got ${ok:-?} succeeded, ${twoxx:-?} 2xx, protocol '${got_proto:-?}' (raw: $raw)"
    fi
    if [ "$scenario" = GET ] && [ "$data" != $((n * value_bytes)) ]; then
        cat "$raw" >&2
        die "$target GET over $proto: ${data:-?} body bytes, want $((n * value_bytes)) (raw: $raw)"
    fi
}

base_url() { if [ "$1" = hacached ]; then echo "$hc_url"; else echo "$hello_url"; fi; }

warmup=$(warmup_of "$requests")

# scenario SCENARIO PROTO KEY H2LOAD-ARGS... : a warm-up run against each server, then $rounds
# measured rounds, the server that goes first alternating. Appends to $rows the median req/s of
# each server and the median and range of the per-round ratios: the two runs of a round are
# back to back, so a ratio is less exposed to the machine's drift than the two medians are.
# For PUT the key holds the sentinel before each hacached run and must hold the value after
# it: proof that h2load really sent PUTs (a POST or GET would leave the sentinel in place).
scenario() {
    local scenario=$1 proto=$2 key=$3; shift 3
    local tag="$scenario-${proto//\//}" target round hc_all=() hello_all=() ratios=() hc_rps hello_rps
    note "$scenario over $proto"
    for target in hello_h2o hacached; do
        measure "$target" "$scenario" "$proto" "$warmup" "$out/raw/$tag-$target-warmup.txt" \
            "$(base_url "$target")/v1/caches/bench/$key" "$@"
    done
    for round in $(seq "$rounds"); do
        local order=(hello_h2o hacached)
        [ $((round % 2)) = 1 ] || order=(hacached hello_h2o)
        for target in "${order[@]}"; do
            [ "$scenario/$target" != PUT/hacached ] || hc_put "$key" "$sentinel"
            measure "$target" "$scenario" "$proto" "$requests" "$out/raw/$tag-$target-$round.txt" \
                "$(base_url "$target")/v1/caches/bench/$key" "$@"
            [ "$scenario/$target" != PUT/hacached ] ||
                hc_expect "$key" "$value" "the value h2load PUT (is h2load sending PUT?)"
            if [ "$target" = hacached ]; then hc_rps=$rps; else hello_rps=$rps; fi
        done
        hc_all+=("$hc_rps") hello_all+=("$hello_rps") ratios+=("$(ratio "$hc_rps" "$hello_rps")")
    done
    rows+=("$scenario $proto $(median "${hc_all[@]}") $(median "${hello_all[@]}") $(median "${ratios[@]}") $(range_of "${ratios[@]}")")
}

h2c=(-c "$conns" -m "$streams" -t 1)
h1=(--h1 -c "$conns" -m 1 -t 1)
put=(-d "$value" -H ':method: PUT')
scenario GET h2c get-key "${h2c[@]}"
scenario PUT h2c put-key "${h2c[@]}" "${put[@]}"
scenario GET http/1.1 get-key "${h1[@]}"
scenario PUT http/1.1 put-key "${h1[@]}" "${put[@]}"
kill -0 "$hc_pid" 2>/dev/null || { cat "$tmp/hacached.log" >&2; die "hacached died during the run"; }
fi

resp_rows=()
if [ "$with_resp" = 1 ]; then
# ================================================================ RESP: hacached vs redis-server
free_port
redis_port=$port
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --protected-mode yes
redis_pid=$last_pid
wait_until "$redis_pid" redis port_open "$redis_port"
wait_until "$hc_pid" hacached port_open "$hc_resp_port"

# redis-benchmark's key for SET and GET without -r: the placeholder stays in the name.
resp_key='key:__rand_int__'
resp_port() { if [ "$1" = hacached ]; then echo "$hc_resp_port"; else echo "$redis_port"; fi; }
# rcli TARGET ARGS...: one redis-cli command against TARGET's RESP port, bounded in time.
rcli() { local p; p=$(resp_port "$1"); shift; timeout 10 redis-cli -h 127.0.0.1 -p "$p" "$@"; }

# counters TARGET: sets $c_sets (SET commands executed) and $c_hits (reads that found a key)
# from hacached's /metrics or redis-server's INFO.
counters() {
    if [ "$1" = hacached ]; then
        curl -fsS --max-time 5 -o "$tmp/metrics.txt" "$hc_url/metrics" || die "hacached: GET /metrics failed"
        c_hits=$(awk '$1 == "hacache_cache_hits_total" { printf "%.0f", $2 }' "$tmp/metrics.txt")
        c_sets=$(awk 'index($1, "hacache_requests_total{op=\"put\",") == 1 && $1 ~ /result="ok"}$/ { s += $2 }
            END { printf "%.0f", s }' "$tmp/metrics.txt")
    else
        rcli redis INFO all | tr -d '\r' >"$tmp/info.txt" || die "redis-server: INFO failed"
        c_hits=$(sed -n 's/^keyspace_hits:\([0-9]*\)$/\1/p' "$tmp/info.txt")
        c_sets=$(sed -n 's/^cmdstat_set:calls=\([0-9]*\),.*/\1/p' "$tmp/info.txt")
        c_sets=${c_sets:-0}
    fi
    case "$c_hits$c_sets" in ''|*[!0-9]*) die "$1: no hit/SET counters (hits '${c_hits:-}', sets '${c_sets:-}')" ;; esac
}

# resp_run TARGET PIPELINE N RAW: one redis-benchmark run (-t set,get, -n N each, -P PIPELINE
# when above 1) against TARGET, output in RAW; sets b_set b_get (req/s) and l_set l_get (p50
# latency, ms). Dies unless it exited 0 with one figure per command, TARGET counted N SETs and
# N GET hits, and the key holds a fresh value of the right size (a sentinel before the run).
resp_run() {
    local target=$1 pipe=$2 n=$3 raw=$4 port secs rc sets0 hits0 got
    port=$(resp_port "$target")
    local cmd=(redis-benchmark -h 127.0.0.1 -p "$port" -t "set,get" -n "$n" -c "$resp_clients" -d "$value_bytes" --csv)
    [ "$pipe" = 1 ] || cmd+=(-P "$pipe")
    got=$(rcli "$target" SET "$resp_key" "$(cat "$sentinel")") || got="redis-cli failed"
    [ "$got" = OK ] || die "$target: SET of the sentinel answered '$got'"
    counters "$target"; sets0=$c_sets hits0=$c_hits
    # a bound for a run that hangs, far above any plausible duration
    secs=$((120 + 2 * n / 1000))
    echo "# ${pin_client[*]} ${cmd[*]}" >"$raw"
    # in the background and waited for, so INT/TERM stop it at once (through cleanup)
    timeout -k 5 "$secs" "${pin_client[@]}" "${cmd[@]}" >>"$raw" 2>&1 </dev/null &
    load_pid=$!
    rc=0
    wait "$load_pid" || rc=$?
    load_pid=""
    if [ "$rc" = 124 ]; then cat "$raw" >&2; die "redis-benchmark against $target did not finish within $secs s (raw: $raw)"; fi
    [ "$rc" = 0 ] || { cat "$raw" >&2; die "redis-benchmark against $target exited $rc (raw: $raw)"; }
    # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
    local csv
    csv=$(tr -d '"\r' <"$raw" | awk -F, '($1 == "SET" || $1 == "GET") && NF >= 5')
    if [ "$(awk '$0 ~ /^SET,/' <<<"$csv" | wc -l)" != 1 ] || [ "$(awk '$0 ~ /^GET,/' <<<"$csv" | wc -l)" != 1 ]; then
        cat "$raw" >&2; die "redis-benchmark against $target: want one SET and one GET line of CSV (raw: $raw)"
    fi
    b_set=$(awk -F, '$1 == "SET" { print $2 }' <<<"$csv") b_get=$(awk -F, '$1 == "GET" { print $2 }' <<<"$csv")
    l_set=$(awk -F, '$1 == "SET" { print $5 }' <<<"$csv") l_get=$(awk -F, '$1 == "GET" { print $5 }' <<<"$csv")
    for got in "$b_set" "$b_get" "$l_set" "$l_get"; do
        [[ "$got" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { cat "$raw" >&2; die "redis-benchmark against $target: '$got' is not a number (raw: $raw)"; }
    done
    awk -v a="$b_set" -v b="$b_get" 'BEGIN { exit !(a > 0 && b > 0) }' || die "redis-benchmark against $target: zero req/s (raw: $raw)"
    counters "$target"
    [ $((c_sets - sets0)) -ge "$n" ] || die "$target counted $((c_sets - sets0)) SETs over a run of $n (raw: $raw)"
    [ $((c_hits - hits0)) -ge "$n" ] || die "$target counted $((c_hits - hits0)) read hits over $n GETs (raw: $raw)"
    rcli "$target" GET "$resp_key" >"$tmp/resp-$target.out" || die "$target: GET $resp_key failed"
    got=$(($(wc -c <"$tmp/resp-$target.out") - 1))
    [ "$got" = "$value_bytes" ] || die "$target: $resp_key holds $got bytes after the run, want $value_bytes (-d)"
    ! cmp -s <(head -c "$value_bytes" "$tmp/resp-$target.out") "$sentinel" ||
        die "$target: $resp_key still holds the sentinel after $n SETs"
    # redis-benchmark's value bytes do not depend on the server: both must hold the same.
    if [ -f "$tmp/resp-redis.out" ] && [ -f "$tmp/resp-hacached.out" ] &&
        ! cmp -s "$tmp/resp-redis.out" "$tmp/resp-hacached.out"; then
        die "hacached holds other bytes under $resp_key than redis-server after the same SETs"
    fi
}

resp_warmup=$(warmup_of "$resp_n")
# resp_scenario PIPELINE: a warm-up run against each server, then $rounds rounds, the server that
# goes first alternating. Appends to $resp_rows, for SET and for GET: the median req/s of each
# server, the median and range of the per-round ratios hacached/redis, the median p50s, and the
# best req/s of each server with their ratio (on a machine shared with other work the best run
# is the least disturbed one; the medians stay the headline).
resp_scenario() {
    local pipe=$1 tag target round
    local -A all=() lat=() cur=() rat=()
    tag="resp-c$resp_clients-P$pipe"
    if [ "$pipe" = 1 ]; then note "RESP SET,GET -c $resp_clients"; else note "RESP SET,GET -c $resp_clients -P $pipe"; fi
    for target in redis hacached; do
        resp_run "$target" "$pipe" "$resp_warmup" "$out/raw/$tag-$target-warmup.txt"
    done
    for round in $(seq "$rounds"); do
        local order=(redis hacached)
        [ $((round % 2)) = 1 ] || order=(hacached redis)
        for target in "${order[@]}"; do
            resp_run "$target" "$pipe" "$resp_n" "$out/raw/$tag-$target-$round.txt"
            all[$target-SET]+=" $b_set" all[$target-GET]+=" $b_get"
            lat[$target-SET]+=" $l_set" lat[$target-GET]+=" $l_get"
            cur[$target-SET]=$b_set cur[$target-GET]=$b_get
        done
        rat[SET]+=" $(ratio "${cur[hacached-SET]}" "${cur[redis-SET]}")"
        rat[GET]+=" $(ratio "${cur[hacached-GET]}" "${cur[redis-GET]}")"
    done
    local op row
    for op in SET GET; do
        # shellcheck disable=SC2086  # the lists are space-separated numbers
        row="$op $pipe $(median ${all[hacached-$op]}) $(median ${all[redis-$op]}) $(median ${rat[$op]})"
        # shellcheck disable=SC2086
        row+=" $(range_of ${rat[$op]}) $(median ${lat[hacached-$op]}) $(median ${lat[redis-$op]})"
        # shellcheck disable=SC2086
        row+=" $(best ${all[hacached-$op]}) $(best ${all[redis-$op]})"
        resp_rows+=("$row")
    done
}

resp_scenario 1
resp_scenario "$resp_pipeline"
kill -0 "$hc_pid" 2>/dev/null || { cat "$tmp/hacached.log" >&2; die "hacached died during the run"; }
kill -0 "$redis_pid" 2>/dev/null || { cat "$tmp/redis.log" >&2; die "redis-server died during the run"; }
fi

# ---------------------------------------------------------------- report
report="$out/results.txt.tmp"
{
    echo "hacache benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    echo "host: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)"
    echo "hacached: $hacached (CMAKE_BUILD_TYPE=${build_type:-unknown}), standalone, CACHE_MAX_MEMORY=512MiB"
    echo "cpu: $pinning; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
    if [ ${#rows[@]} -gt 0 ]; then
        echo
        echo "== HTTP: hacached vs hello_h2o"
        echo "hello_h2o: bench/hello_h2o.c on h2o $(pkg-config --modversion libh2o) (the library version of h2o 2.2.5), same body size"
        echo "load: $(h2load --version | head -n 1), -n $requests -c $conns -t 1; h2c: -m $streams; http/1.1: --h1 -m 1;" \
            "value $value_bytes bytes; PUT: -d FILE -H ':method: PUT', one key"
        echo "each figure: median of $rounds round(s), the server measured first alternating between rounds," \
            "after a $warmup-request warm-up of each server; ratio: median of the per-round ratios"
        echo
        printf '%-8s %-9s %15s %15s %6s  %s\n' scenario protocol "hacached req/s" "hello req/s" ratio "ratio range"
        for row in "${rows[@]}"; do
            # shellcheck disable=SC2086  # row is six words
            printf '%-8s %-9s %15.0f %15.0f %6.2f  %s\n' $row
        done
        echo "ratio = hacached / hello_h2o (1.00 = no overhead over the bare h2o stack)"
        echo "the range spans the rounds; a wide one means the machine was noisy (rerun, or raise --rounds)"
    fi
    if [ ${#resp_rows[@]} -gt 0 ]; then
        echo
        echo "== RESP: hacached vs redis-server"
        echo "hacached: CACHE_RESP_ADDR=127.0.0.1:<port>, no token, cache 'default', ack quorum (standalone: applied)"
        echo "redis: $(redis-server --version | cut -d' ' -f1-3), --save '' --appendonly no"
        echo "load: $(redis-benchmark --version | head -n 1) -t set,get -n $resp_n -c $resp_clients -d $value_bytes --csv," \
            "without -P and with -P $resp_pipeline; one key ($resp_key)"
        echo "each figure: median of $rounds round(s), the server measured first alternating between rounds," \
            "after a $resp_warmup-request warm-up of each server; ratio: median of the per-round ratios"
        echo
        printf '%-24s %14s %12s %6s  %-11s %10s %12s  %9s %10s %5s\n' scenario "hacached req/s" "redis req/s" ratio \
            "ratio range" "hc p50 ms" "redis p50 ms" "hc best" "redis best" ratio
        for row in "${resp_rows[@]}"; do
            read -r op pipe hc rd r rg hl rl hb rb <<<"$row"
            label="RESP $op -c $resp_clients"
            [ "$pipe" = 1 ] || label+=" -P $pipe"
            printf '%-24s %14.0f %12.0f %6.2f  %-11s %10.3f %12.3f  %9.0f %10.0f %5.2f\n' "$label" "$hc" "$rd" "$r" "$rg" \
                "$hl" "$rl" "$hb" "$rb" "$(ratio "$hb" "$rb")"
        done
        echo "ratio = hacached / redis-server (1.00 = as many requests per second as redis-server): the median of"
        echo "the per-round ratios, and its range over the rounds; p50 = redis-benchmark's median latency (median"
        echo "over the rounds); best = the highest req/s of the rounds, with the ratio of the two bests"
    fi
    echo
    echo "raw tool output: bench/out/raw/"
} >"$report"
mv "$report" "$out/results.txt"
cat "$out/results.txt"
