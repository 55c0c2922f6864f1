#!/usr/bin/env bash
# Static checks: C++ formatting (clang-format, .clang-format), C++ analysis (clang-tidy, .clang-tidy),
# shell scripts (shellcheck) and the Python under scripts/ and bench/ (flake8, .flake8: pyflakes and
# pycodestyle).
#
#   scripts/local/lint.sh            check; exit 1 on the first kind of finding
#   scripts/local/lint.sh --fix      reformat the C++ sources in place
#   scripts/local/lint.sh --tidy-all clang-tidy on every source file, not only the core and changed ones
#
# clang-tidy reads the debug preset's compile_commands.json (configured here if missing, which
# builds nothing) and checks the core files (the components with threads and C callbacks:
# service, broker, kafka, amqp, gateway, saga) plus every C++ file changed since HEAD~1 or not yet
# committed. PIX_TIDY=off skips it (e.g. while iterating on formatting).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

cd "$(pix_root)"
mapfile -t cxx < <(pix_repo_files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp' 'tests/*.hpp' 'bench/*.cpp')
mapfile -t shells < <(pix_repo_files '*.sh' pix .ci/run)
mapfile -t pythons < <(pix_repo_files 'scripts/*.py' 'bench/*.py')

tidy_all=0
[[ "${1:-}" == --tidy-all ]] && tidy_all=1
if [[ "${1:-}" == --fix ]]; then
    step "clang-format -i on ${#cxx[@]} files"
    clang-format -i "${cxx[@]}"
    exit 0
fi
step "clang-format: ${#cxx[@]} C++ files"
clang-format --dry-run --Werror "${cxx[@]}" || die "formatting differs: run scripts/local/lint.sh --fix"
if [[ "${PIX_TIDY:-on}" != off ]]; then
    command -v clang-tidy >/dev/null || die "clang-tidy missing: scripts/local/deps.sh installs it"
    if [[ ! -f build/debug/compile_commands.json ]]; then
        step "configuring the debug preset for clang-tidy's compile_commands.json"
        cmake --preset debug >/dev/null
    fi
    if ((tidy_all)); then
        mapfile -t tidy < <(pix_repo_files 'src/*.cpp')
    else
        mapfile -t tidy < <({
            pix_repo_files 'src/pix/service/*.cpp' 'src/pix/broker/*.cpp' 'src/pix/kafka/*.cpp' \
                'src/pix/amqp/*.cpp' 'src/pix/gateway/*.cpp' 'src/pix/saga/*.cpp'
            { git diff --name-only HEAD~1 -- 'src/*.cpp' 2>/dev/null; git ls-files --others --exclude-standard -- 'src/*.cpp'; } |
                while read -r f; do [[ -f "$f" ]] && echo "$f"; done
        } | sort -u)
    fi
    step "clang-tidy: ${#tidy[@]} files (2 at a time; .clang-tidy)"
    # -Wpedantic (the build's) flags librdkafka's own macros as a GNU extension: not ours to fix.
    printf '%s\0' "${tidy[@]}" |
        xargs -0 -P2 -n4 clang-tidy -p build/debug --quiet --extra-arg=-Wno-gnu-statement-expression \
            >"$PIX_LOGS/clang-tidy.log" 2>&1 || {
        grep -E -A3 'error:' "$PIX_LOGS/clang-tidy.log" | head -n 80 >&2
        die "clang-tidy found problems (full log: $PIX_LOGS/clang-tidy.log)"
    }
fi
step "shellcheck: ${#shells[@]} scripts"
shellcheck -x "${shells[@]}" || die "shellcheck found problems"
step "flake8: ${#pythons[@]} Python files"
# Debian's flake8 (python3-flake8, scripts/local/deps.sh), whatever python3 comes first on PATH.
/usr/bin/python3 -m flake8 --version >/dev/null 2>&1 || die "flake8 missing: scripts/local/deps.sh installs python3-flake8"
/usr/bin/python3 -m flake8 "${pythons[@]}" || die "flake8 found problems (config: .flake8)"
ok "lint clean"
