#!/usr/bin/env bash
# build_ref.sh REF OUTDIR: builds hacached as it was at git ref REF of this repository, into
# OUTDIR/bin/hacached, and prints that path as the last line of its output.
#
# For the mixed-version tests (tests/integration/test_mixed_versions_build.py), which run an
# older build next to the current one. The source comes from `git archive REF` (no worktree is
# registered, the checkout is not touched) into a temp dir that is removed afterwards; only the
# hacached target is built (RelWithDebInfo, never with sanitizers: the old binary is a
# reference, not the code under test), at most HC_BUILD_JOBS (default 2) jobs, niced.
#
# The result is reused: when OUTDIR/built-from already names REF's commit, nothing is built.
# Two runs for the same OUTDIR at once (ctest -j) wait for each other (flock).
#
# Exit status: 0 built or reused; 2 usage; 3 REF is not in this clone (a shallow clone, a
# source tarball: the message says what to do); 4 the build failed (its log's tail is printed).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 REF OUTDIR" >&2
    exit 2
fi
ref="$1"
out="$2"
repo="$(cd "$(dirname "$0")/../.." && pwd)"

if ! git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    echo "build_ref.sh: $repo is not a git clone, so hacached at $ref cannot be built from" \
        "its history; run the mixed-version tests from a clone with history, or give a" \
        "prebuilt binary in HACACHED_PREV" >&2
    exit 3
fi
if ! sha="$(git -C "$repo" rev-parse --verify --quiet "$ref^{commit}")"; then
    shallow="$(git -C "$repo" rev-parse --is-shallow-repository 2>/dev/null || echo unknown)"
    echo "build_ref.sh: commit $ref is not in this clone of hacache (shallow clone:" \
        "$shallow). The mixed-version tests build the pinned older version from history:" \
        "clone with full history (git clone without --depth, or git fetch --unshallow), or" \
        "give a prebuilt binary of $ref in HACACHED_PREV" >&2
    exit 3
fi

mkdir -p "$out/bin"
out="$(cd "$out" && pwd)"
exec 9>"$out/.lock"
flock 9

if [ -x "$out/bin/hacached" ] && [ "$(cat "$out/built-from" 2>/dev/null)" = "$sha" ]; then
    echo "build_ref.sh: reusing hacached of $sha" >&2
    echo "$out/bin/hacached"
    exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hacache-ref-${sha:0:12}-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
git -C "$repo" archive --format=tar "$sha" | tar -x -C "$tmp/src"

jobs="${HC_BUILD_JOBS:-2}"
start=$(date +%s)
echo "build_ref.sh: building hacached of $sha in $tmp (-j$jobs)" >&2
if ! {
    nice cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DHACACHE_SANITIZE=OFF &&
        nice cmake --build "$tmp/build" --target hacached -j "$jobs"
} >"$tmp/build.log" 2>&1; then
    echo "build_ref.sh: building hacached of $sha failed; last lines of the log:" >&2
    tail -n 40 "$tmp/build.log" >&2
    exit 4
fi

rm -f "$out/built-from"
install -m 0755 "$tmp/build/bin/hacached" "$out/bin/hacached.tmp"
mv -f "$out/bin/hacached.tmp" "$out/bin/hacached"
echo "$sha" >"$out/built-from"
echo "build_ref.sh: built hacached of $sha in $(($(date +%s) - start)) s" >&2
echo "$out/bin/hacached"
