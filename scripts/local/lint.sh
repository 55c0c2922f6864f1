#!/usr/bin/env bash
# Static checks that need no build: C++ formatting (clang-format, .clang-format) and shell
# scripts (shellcheck).
#
#   scripts/local/lint.sh          check; exit 1 on the first kind of finding
#   scripts/local/lint.sh --fix    reformat the C++ sources in place
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

cd "$(pix_root)"
mapfile -t cxx < <(git ls-files -co --exclude-standard 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp' 'tests/*.hpp' 'bench/*.cpp')
mapfile -t shells < <(git ls-files -co --exclude-standard '*.sh' pix .ci/run)

if [[ "${1:-}" == --fix ]]; then
    step "clang-format -i on ${#cxx[@]} files"
    clang-format -i "${cxx[@]}"
    exit 0
fi
step "clang-format: ${#cxx[@]} C++ files"
clang-format --dry-run --Werror "${cxx[@]}" || die "formatting differs: run scripts/local/lint.sh --fix"
step "shellcheck: ${#shells[@]} scripts"
shellcheck -x "${shells[@]}" || die "shellcheck found problems"
ok "lint clean"
