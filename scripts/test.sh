#!/usr/bin/env bash
# Builds hacache twice (normal, and ASan+UBSan) and runs the whole ctest suite on both.
# On a fresh Debian 12 machine as root it first installs what it needs with apt-get.
#
#   scripts/test.sh                 # both builds, default suite
#   scripts/test.sh --no-sanitize   # normal build only
#   scripts/test.sh --label unit    # only tests with this ctest label (unit, integration)
#   scripts/test.sh --soak          # also the opt-in long-running tests (label soak)
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=1
label=""
soak=0
while [ $# -gt 0 ]; do
    case "$1" in
    --no-sanitize) sanitize=0 ;;
    --label) label="$2"; shift ;;
    --soak) soak=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

. scripts/deps.sh
hc_install_deps build test

jobs=$(nproc 2>/dev/null || echo 2)
ctest_args=(--output-on-failure --timeout 600 -j "$jobs")
if [ -n "$label" ]; then
    ctest_args+=(-L "$label")
fi
if [ "$soak" = 0 ]; then
    ctest_args+=(-LE soak)
fi

run_suite() {
    local dir="$1"; shift
    echo "=== configure $dir ($*)"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    echo "=== build $dir"
    cmake --build "$dir" -j "$jobs"
    echo "=== ctest $dir"
    (cd "$dir" && ctest "${ctest_args[@]}")
}

run_suite build
if [ "$sanitize" = 1 ]; then
    run_suite build-asan -DHACACHE_SANITIZE=ON
fi
echo "=== all suites passed"
