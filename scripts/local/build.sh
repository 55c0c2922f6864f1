#!/usr/bin/env bash
# Configures and builds one CMake preset, printing what it does.
#
#   scripts/local/build.sh [release|debug|tsan]     default: release
#
# release: the services (build/release, optimized); debug: the tests with
# AddressSanitizer + UBSan (build/debug); tsan: the tests with ThreadSanitizer
# (build/tsan). Incremental: a second run only
# rebuilds what changed.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

preset="${1:-release}"
case "$preset" in
    release|debug|tsan) ;;
    *) die "unknown preset '$preset' (release, debug or tsan)" ;;
esac
root="$(pix_root)"
cd "$root"

t0="$(now_us)"
if [[ ! -f "build/$preset/build.ninja" ]]; then
    step "configuring the $preset build (build/$preset)"
    cmake --preset "$preset" >"$PIX_LOGS/cmake-$preset.log" 2>&1 || {
        tail -n 40 "$PIX_LOGS/cmake-$preset.log" >&2
        die "cmake configure failed (full log: $PIX_LOGS/cmake-$preset.log)"
    }
fi
step "building $preset (ninja, 2 jobs; progress below)"
# Ninja prints [n/m] per step: show it as it goes, so a cold build is never a silent wait.
set +e
cmake --build --preset "$preset" 2>&1 | tee "$PIX_LOGS/build-$preset.log" |
    grep --line-buffered -E '^\[[0-9]+/[0-9]+\]|error|FAILED' | sed -u 's/^/    /'
rc="${PIPESTATUS[0]}"
set -e
if [[ "$rc" -ne 0 ]]; then
    tail -n 30 "$PIX_LOGS/build-$preset.log" >&2
    die "build failed (full log: $PIX_LOGS/build-$preset.log)"
fi
ok "$preset build ready in $(elapsed_since "$t0")s"
