#!/usr/bin/env bash
# Static checks that need no build: C++ formatting (clang-format, .clang-format), shell scripts
# (shellcheck) and the Python under scripts/ and bench/ (flake8, .flake8: pyflakes and pycodestyle).
#
#   scripts/local/lint.sh          check; exit 1 on the first kind of finding
#   scripts/local/lint.sh --fix    reformat the C++ sources in place
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

cd "$(pix_root)"
mapfile -t cxx < <(pix_repo_files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp' 'tests/*.hpp' 'bench/*.cpp')
mapfile -t shells < <(pix_repo_files '*.sh' pix .ci/run)
mapfile -t pythons < <(pix_repo_files 'scripts/*.py' 'bench/*.py')

if [[ "${1:-}" == --fix ]]; then
    step "clang-format -i on ${#cxx[@]} files"
    clang-format -i "${cxx[@]}"
    exit 0
fi
step "clang-format: ${#cxx[@]} C++ files"
clang-format --dry-run --Werror "${cxx[@]}" || die "formatting differs: run scripts/local/lint.sh --fix"
step "shellcheck: ${#shells[@]} scripts"
shellcheck -x "${shells[@]}" || die "shellcheck found problems"
step "flake8: ${#pythons[@]} Python files"
# Debian's flake8 (python3-flake8, scripts/local/deps.sh), whatever python3 comes first on PATH.
/usr/bin/python3 -m flake8 --version >/dev/null 2>&1 || die "flake8 missing: scripts/local/deps.sh installs python3-flake8"
/usr/bin/python3 -m flake8 "${pythons[@]}" || die "flake8 found problems (config: .flake8)"
ok "lint clean"
