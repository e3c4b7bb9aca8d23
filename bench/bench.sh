#!/usr/bin/env bash
# bench.sh — hacached next to the HTTP stack it is built on, in one run, reported as ratios.
#
# Starts a standalone hacached and bench/hello_h2o (h2o 2.2.5 answering every request with a
# fixed body of the same size as the cached value) on free loopback ports and drives both with
# the same h2load command, one right after the other: GET and PUT, over h2c and HTTP/1.1.
# ratio = hacached req/s / hello_h2o req/s, i.e. how much of the bare HTTP stack's throughput
# is left once hacached does its work. When redis-server is installed it is measured as well,
# as a reference row (different protocol, so no ratio).
#
# usage: bench/bench.sh [--quick] [--install] [--no-redis] [-n N] [-c N] [-m N] [--rounds N]
#                       [--value-bytes N]
# env:   HC_BUILD_DIR  build directory holding bin/hacached (default: build)
# output: a table on stdout, also written to bench/out/results.txt; raw tool output in
#         bench/out/raw/. Everything listens on 127.0.0.1; every process started is stopped
#         on exit.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/bench.sh [options]
  --quick            smoke run: 20000 requests per scenario instead of 200000, one round
  -n N               requests per scenario (default 200000)
  -c N               concurrent connections (default 16)
  -m N               concurrent streams per connection for h2c (default 16; HTTP/1.1 uses 1)
  --rounds N         measured runs per scenario and server, medians reported (default 5)
  --value-bytes N    size of the cached value and of hello_h2o's body (default 64)
  --no-redis         skip the redis-server reference rows
  --install          (root) apt-get install missing tools: nghttp2-client, curl, a C toolchain,
                     the libraries hello_h2o and hacached need, and redis-server
  -h, --help         this text
env: HC_BUILD_DIR (default build): where bin/hacached is, built there (Release) when missing
EOF
}

die() { echo "bench.sh: $*" >&2; exit 1; }
note() { echo "bench.sh: $*" >&2; }

requests=200000 conns=16 streams=16 value_bytes=64 rounds=5 with_redis=1 install=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) requests=20000 rounds=1 ;;
        -n) requests=${2:?-n needs a number}; shift ;;
        -c) conns=${2:?-c needs a number}; shift ;;
        -m) streams=${2:?-m needs a number}; shift ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift ;;
        --value-bytes) value_bytes=${2:?--value-bytes needs a number}; shift ;;
        --no-redis) with_redis=0 ;;
        --install) install=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
for v in "$requests" "$conns" "$streams" "$value_bytes" "$rounds"; do
    case "$v" in ''|*[!0-9]*) die "not a non-negative integer: '$v'" ;; esac
done
if [ "$requests" -eq 0 ] || [ "$conns" -eq 0 ] || [ "$streams" -eq 0 ] || [ "$rounds" -eq 0 ]; then
    die "-n, -c, -m and --rounds must be positive"
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
build_dir=${HC_BUILD_DIR:-build}
out="$repo/bench/out"
mkdir -p "$out/raw"

# ---------------------------------------------------------------- tools
if [ "$install" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "--install needs root"
    pkgs=()
    command -v h2load >/dev/null || pkgs+=(nghttp2-client)
    command -v curl >/dev/null || pkgs+=(curl)
    command -v cc >/dev/null || pkgs+=(gcc)
    command -v pkg-config >/dev/null || pkgs+=(pkg-config)
    pkg-config --exists libh2o 2>/dev/null || pkgs+=(libh2o-dev)
    pkg-config --exists libuv 2>/dev/null || pkgs+=(libuv1-dev)
    pkg-config --exists openssl 2>/dev/null || pkgs+=(libssl-dev)
    if [ ! -x "$build_dir/bin/hacached" ]; then
        command -v cmake >/dev/null || pkgs+=(cmake)
        command -v protoc-c >/dev/null || pkgs+=(protobuf-c-compiler)
        pkg-config --exists libprotobuf-c 2>/dev/null || pkgs+=(libprotobuf-c-dev)
        pkg-config --exists libsodium 2>/dev/null || pkgs+=(libsodium-dev)
    fi
    if [ "$with_redis" = 1 ] && ! { command -v redis-server && command -v redis-benchmark; } >/dev/null; then
        pkgs+=(redis-server)
    fi
    if [ ${#pkgs[@]} -gt 0 ]; then
        note "installing ${pkgs[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
    fi
fi
for t in h2load curl cc pkg-config; do
    command -v "$t" >/dev/null || die "$t not found (run as root with --install, or apt-get install it)"
done
if [ "$with_redis" = 1 ] && ! { command -v redis-server && command -v redis-benchmark; } >/dev/null; then
    note "redis-server/redis-benchmark not installed: no redis reference rows (--install adds them)"
    with_redis=0
fi

# ---------------------------------------------------------------- builds
hello="$out/hello_h2o"
if [ ! -x "$hello" ] || [ bench/hello_h2o.c -nt "$hello" ]; then
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
pids=()
cleanup() {
    local pid
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
# and that this run has not handed out before.
taken_ports=" "
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
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
    "${pin_server[@]}" "$@" >"$tmp/$name.log" 2>&1 &
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
start hacached env CACHE_HTTP_ADDR="127.0.0.1:$hc_port" CACHE_MAX_MEMORY=512MiB CACHE_LOG_LEVEL=warn \
    CACHE_DATA_DIR="$tmp/data" "$hacached"
hc_pid=$last_pid
wait_until "$hc_pid" hacached curl -fsS --max-time 1 -o /dev/null "$hc_url/healthz"

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

# ---------------------------------------------------------------- h2load
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

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
base_url() { if [ "$1" = hacached ]; then echo "$hc_url"; else echo "$hello_url"; fi; }

warmup=$((requests / 10 < 1000 ? (requests < 1000 ? requests : 1000) : requests / 10))
rows=()

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
    local range
    range=$(printf '%s\n' "${ratios[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }')
    rows+=("$scenario $proto $(median "${hc_all[@]}") $(median "${hello_all[@]}") $(median "${ratios[@]}") $range")
}

rm -f "$out"/raw/*.txt
h2c=(-c "$conns" -m "$streams" -t 1)
h1=(--h1 -c "$conns" -m 1 -t 1)
put=(-d "$value" -H ':method: PUT')
scenario GET h2c get-key "${h2c[@]}"
scenario PUT h2c put-key "${h2c[@]}" "${put[@]}"
scenario GET http/1.1 get-key "${h1[@]}"
scenario PUT http/1.1 put-key "${h1[@]}" "${put[@]}"
kill -0 "$hc_pid" 2>/dev/null || { cat "$tmp/hacached.log" >&2; die "hacached died during the run"; }

# ---------------------------------------------------------------- redis reference
redis_rows=()
if [ "$with_redis" = 1 ]; then
    free_port
    redis_port=$port
    start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --protected-mode yes
    redis_pid=$last_pid
    wait_until "$redis_pid" redis port_open "$redis_port"
    note "redis-server GET/SET"
    redis_args=(-t "get,set" -n "$requests" -c "$conns" -P "$streams" -d "$value_bytes" -q)
    redis_cmd=(redis-benchmark -h 127.0.0.1 -p "$redis_port" "${redis_args[@]}")
    get_all=() set_all=()
    for round in $(seq "$rounds"); do
        raw="$out/raw/redis-$round.txt"
        {
            echo "# ${pin_client[*]} ${redis_cmd[*]}"
            "${pin_client[@]}" "${redis_cmd[@]}" 2>&1 | tr '\r' '\n'
        } >"$raw" || { cat "$raw" >&2; die "redis-benchmark failed"; }
        for op in GET SET; do
            r=$(sed -n "s/^$op: \([0-9.]*\) requests per second.*/\1/p" "$raw" | tail -n 1)
            [ -n "$r" ] || { cat "$raw" >&2; die "no $op result from redis-benchmark (raw: $raw)"; }
            if [ "$op" = GET ]; then get_all+=("$r"); else set_all+=("$r"); fi
        done
    done
    redis_rows+=("GET $(median "${get_all[@]}")" "SET $(median "${set_all[@]}")")
fi

# ---------------------------------------------------------------- report
report="$out/results.txt.tmp"
{
    echo "hacache benchmark, $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    echo "host: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)"
    echo "hacached: $hacached (CMAKE_BUILD_TYPE=${build_type:-unknown}), standalone, CACHE_MAX_MEMORY=512MiB"
    echo "hello_h2o: bench/hello_h2o.c on h2o $(pkg-config --modversion libh2o) (the library version of h2o 2.2.5), same body size"
    echo "load: $(h2load --version | head -n 1), -n $requests -c $conns -t 1; h2c: -m $streams; http/1.1: --h1 -m 1;" \
        "value $value_bytes bytes; PUT: -d FILE -H ':method: PUT', one key"
    echo "cpu: $pinning; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
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
    if [ ${#redis_rows[@]} -gt 0 ]; then
        echo
        echo "reference: $(redis-server --version | cut -d' ' -f1-3), redis-benchmark ${redis_args[*]}"
        echo "  (RESP pipelining -P $streams is a different protocol from HTTP/2 multiplexing -m $streams:"
        echo "   a reference point, not an apples-to-apples ratio)"
        for row in "${redis_rows[@]}"; do
            # shellcheck disable=SC2086
            printf '  redis %-4s %16.0f req/s\n' $row
        done
    fi
    echo
    echo "raw tool output: bench/out/raw/"
} >"$report"
mv "$report" "$out/results.txt"
cat "$out/results.txt"
