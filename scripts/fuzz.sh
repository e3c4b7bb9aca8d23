#!/usr/bin/env bash
# Opt-in coverage-guided fuzzing of every decoder with libFuzzer (clang + ASan/UBSan).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# New crashes are written to tests/fuzz/crash-*; add the minimised input to the target's corpus
# directory once fixed, so the default suite replays it forever.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
. scripts/deps.sh
hc_pkgs_build+=(clang libclang-rt-14-dev)
hc_install_deps build
CC=clang cmake -S . -B build-fuzz -DHACACHE_FUZZ=ON -DHACACHE_SANITIZE=ON >/dev/null
# every target in tests/fuzz (fuzz_NAME.c, corpus in tests/fuzz/corpus/NAME)
targets=()
for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
for t in "${targets[@]}"; do
    work=$(mktemp -d)
    cp tests/fuzz/corpus/$t/* "$work/"
    echo "=== fuzz_$t for ${secs}s"
    build-fuzz/bin/fuzz_$t -max_total_time="$secs" -max_len=4096 \
        -artifact_prefix=tests/fuzz/crash-$t- "$work"
    rm -rf "$work"
done
