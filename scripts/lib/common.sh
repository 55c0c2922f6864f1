# shellcheck shell=bash
# Shared helpers for scripts/local/*.sh. Source it, do not execute it:
#
#   # shellcheck source=../lib/common.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
#
# Provides:
#   pix_root                      absolute path of the repository root
#   PIX_PROFILE                   broker profile: plain (default) or secure (exported)
#   PIX_STATE                     state directory (env-overridable; default <repo>/.local,
#                                 or <repo>/.local/secure when PIX_PROFILE=secure)
#   PIX_LOGS                      $PIX_STATE/logs
#   step / ok / warn / die        progress messages (colored when stdout/stderr is a tty)
#   wait_until DESC TIMEOUT_S [--log FILE] [--pid PID] CMD...
#                                 poll CMD until it succeeds, with a deadline and progress
#   port_open HOST PORT           true if a TCP connect succeeds within 1 s
#   pid_from_file FILE            prints the pid stored in FILE (empty if none)
#   pid_alive PID [PATTERN]       true if PID runs (and its command line contains PATTERN)
#   stop_pid DESC PID TIMEOUT_S   SIGTERM, wait with deadline, then SIGKILL
#   proc_gone PID                 true once PID has exited (an unreaped zombie counts)
#   pix_usage FILE                print the comment block at the top of FILE
#   pix_repo_files PATHSPEC...    the repository's existing files (tracked or not ignored)
#   as_root CMD...                run CMD as root (sudo only when not already root)
#   elapsed_since START_US        prints seconds (one decimal) since a $EPOCHREALTIME-ish stamp
#   now_us                        microseconds since the epoch

if [[ -n "${_PIX_COMMON_SH:-}" ]]; then
    return 0
fi
_PIX_COMMON_SH=1

pix_root() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
    printf '%s\n' "$here"
}

# PIX_PROFILE picks the local brokers' profile: `plain` (default: no TLS, no authentication)
# or `secure` (TLS, SCRAM / AMQP users, ACLs; docs/security-brokers.md). Each profile keeps
# its own state: PIX_STATE defaults to <repo>/.local (plain) or <repo>/.local/secure.
PIX_PROFILE="${PIX_PROFILE:-plain}"
case "$PIX_PROFILE" in
    plain | secure) ;;
    *)
        printf 'ERR PIX_PROFILE=%s: expected plain or secure\n' "$PIX_PROFILE" >&2
        exit 2
        ;;
esac
if [[ -z "${PIX_STATE:-}" ]]; then
    if [[ "$PIX_PROFILE" == secure ]]; then
        PIX_STATE="$(pix_root)/.local/secure"
    else
        PIX_STATE="$(pix_root)/.local"
    fi
fi
export PIX_PROFILE
mkdir -p "$PIX_STATE"
PIX_STATE="$(cd "$PIX_STATE" && pwd -P)"
PIX_LOGS="$PIX_STATE/logs"
mkdir -p "$PIX_LOGS"
export PIX_STATE PIX_LOGS

# ---- messages ---------------------------------------------------------------

_pix_color_ok() {
    # $1 = file descriptor to test. PIX_COLOR=1 forces colors (used by brokers.sh
    # when it prefixes the output of child scripts), NO_COLOR disables them.
    [[ -z "${NO_COLOR:-}" ]] || return 1
    [[ "${PIX_COLOR:-}" == 1 ]] && return 0
    [[ "${PIX_COLOR:-}" == 0 ]] && return 1
    [[ -t "$1" ]]
}

_pix_msg() {
    # $1 fd, $2 color code, $3 tag, rest message
    local fd="$1" color="$2" tag="$3"
    shift 3
    if _pix_color_ok "$fd"; then
        printf '\033[%sm%s\033[0m %s\n' "$color" "$tag" "$*" >&"$fd"
    else
        printf '%s %s\n' "$tag" "$*" >&"$fd"
    fi
}

step() { _pix_msg 1 '1;34' '==>' "$@"; }
ok()   { _pix_msg 1 '1;32' ' ok' "$@"; }
warn() { _pix_msg 2 '1;33' '!!!' "$@"; }
die()  { _pix_msg 2 '1;31' 'ERR' "$@"; exit 1; }

# Never die silently under `set -e`: name the command that failed.
_pix_on_err() {
    local rc="$1" line="$2" cmd="$3"
    # Subshells report through the command that ran them in the main shell.
    ((BASH_SUBSHELL == 0)) || return 0
    _pix_msg 2 '1;31' 'ERR' "$(basename "${BASH_SOURCE[1]:-$0}"):$line: '$cmd' failed (exit $rc)"
}
set -o errtrace
trap '_pix_on_err $? $LINENO "$BASH_COMMAND"' ERR

# pix_usage FILE: print FILE's leading comment block (after the shebang).
pix_usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# pix_help_if_asked "$@": on -h or --help, print the calling script's leading comment and exit 0.
pix_help_if_asked() {
    case "${1:-}" in
        -h | --help)
            pix_usage "${BASH_SOURCE[1]}"
            exit 0
            ;;
    esac
}

# pix_repo_files PATHSPEC...: the repository's files (tracked, plus untracked ones .gitignore does
# not exclude) that exist (a deletion not yet committed is left out), outside build/ and .local/,
# sorted, one a line. Run it from the repository root.
pix_repo_files() {
    git ls-files -z --cached --others --exclude-standard -- "$@" |
        while IFS= read -r -d '' f; do
            case "$f" in build/* | .local/*) continue ;; esac
            [[ -f "$f" ]] && printf '%s\n' "$f"
        done | sort -u
}

# ---- time -------------------------------------------------------------------

now_us() {
    # EPOCHREALTIME is "seconds.micros" (bash >= 5); fall back to date.
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        local t="${EPOCHREALTIME/[.,]/}"
        printf '%s\n' "$((10#$t))"
    else
        printf '%s\n' "$(($(date +%s%N) / 1000))"
    fi
}

elapsed_since() {
    local start="$1" now d
    now="$(now_us)"
    d=$(((now - start) / 100000))
    printf '%d.%d\n' "$((d / 10))" "$((d % 10))"
}

# ---- network / processes ----------------------------------------------------

port_open() {
    local host="$1" port="$2"
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" >/dev/null 2>&1
}

pid_from_file() {
    local f="$1" pid=""
    if [[ -s "$f" ]]; then
        read -r pid <"$f" || true
    fi
    if [[ "$pid" =~ ^[0-9]+$ ]]; then
        printf '%s\n' "$pid"
    fi
}

pid_alive() {
    local pid="${1:-}" pattern="${2:-}"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    _pix_zombie "$pid" && return 1
    if [[ -n "$pattern" ]]; then
        # Guard against a recycled pid: the command line must mention PATTERN.
        local cmdline=""
        if [[ -r "/proc/$pid/cmdline" ]]; then
            cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
        fi
        [[ "$cmdline" == *"$pattern"* ]] || return 1
    fi
    return 0
}

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (and sudo is not installed)"
    fi
}

# ---- waiting ----------------------------------------------------------------

# wait_until DESC TIMEOUT_S [--log FILE] [--pid PID] CMD...
#
# Runs CMD (output discarded) every ~0.3 s until it exits 0 or TIMEOUT_S
# seconds have passed. Shows progress: on a tty a dot per second and the
# elapsed time every 10 s on one line; otherwise one line every 5 s (so that
# prefixed/parallel output and CI logs never go silent).
# --log FILE: on failure print the last 40 lines of FILE (PIX_WAIT_LOG also works).
# --pid PID:  fail at once if PID has exited (the thing we wait for crashed).
wait_until() {
    local desc="$1" timeout_s="$2"
    shift 2
    local log="${PIX_WAIT_LOG:-}" pid=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --log) log="$2"; shift 2 ;;
            --pid) pid="$2"; shift 2 ;;
            --) shift; break ;;
            *) break ;;
        esac
    done
    [[ $# -gt 0 ]] || die "wait_until: no command given"

    local start deadline now tty=0 last_tick=0 tick reason=""
    start="$(now_us)"
    deadline=$((start + timeout_s * 1000000))
    [[ -t 1 ]] && tty=1
    if ((tty)); then
        printf '    waiting for %s (up to %ss) ' "$desc" "$timeout_s"
    else
        printf '    waiting for %s (up to %ss)\n' "$desc" "$timeout_s"
    fi
    while :; do
        if "$@" >/dev/null 2>&1; then
            if ((tty)); then
                printf ' done after %ss\n' "$(elapsed_since "$start")"
            else
                printf '    %s: done after %ss\n' "$desc" "$(elapsed_since "$start")"
            fi
            return 0
        fi
        now="$(now_us)"
        if [[ -n "$pid" ]] && _pix_not_running "$pid"; then
            reason="process $pid exited"
            break
        fi
        if ((now >= deadline)); then
            reason="timed out after ${timeout_s}s"
            break
        fi
        tick=$(((now - start) / 1000000))
        if ((tick > last_tick)); then
            last_tick=$tick
            if ((tty)); then
                if ((tick % 10 == 0)); then printf '%ss' "$tick"; else printf '.'; fi
            elif ((tick % 5 == 0)); then
                printf '    ... still waiting for %s (%ss/%ss)\n' "$desc" "$tick" "$timeout_s"
            fi
        fi
        sleep 0.3
    done
    ((tty)) && printf '\n'
    warn "gave up waiting for $desc: $reason"
    if [[ -n "$log" && -f "$log" ]]; then
        warn "last lines of $log:"
        tail -n 40 "$log" | sed 's/^/    | /' >&2
    fi
    return 1
}

# stop_pid DESC PID TIMEOUT_S
# SIGTERM, wait up to TIMEOUT_S for the process to exit, then SIGKILL.
stop_pid() {
    local desc="$1" pid="$2" timeout_s="$3"
    if _pix_not_running "$pid"; then
        return 0
    fi
    step "sending SIGTERM to $desc (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if wait_until "$desc (pid $pid) to exit" "$timeout_s" _pix_not_running "$pid"; then
        return 0
    fi
    warn "$desc (pid $pid) ignored SIGTERM for ${timeout_s}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until "$desc (pid $pid) to die" 10 _pix_not_running "$pid"
}

# An exited process whose parent has not reaped it yet (orphans are reaped by
# pid 1, which may be slow or absent in containers) counts as not running.
_pix_zombie() {
    local stat=""
    [[ -r "/proc/$1/stat" ]] && stat="$(cat "/proc/$1/stat" 2>/dev/null || true)"
    stat="${stat##*) }"
    [[ "${stat:0:1}" == Z ]]
}

_pix_not_running() { ! kill -0 "$1" 2>/dev/null || _pix_zombie "$1"; }

# proc_gone PID: true once PID has exited (zombies count as exited).
proc_gone() { _pix_not_running "$1"; }
