#!/usr/bin/env bash
# Local RabbitMQ node (Debian's rabbitmq-server 3.10) run from a project-local
# base directory, as the invoking user, bound to 127.0.0.1 only.
#
#   scripts/local/rabbitmq.sh start          configure, start, wait until ping + AMQP port answer
#   scripts/local/rabbitmq.sh stop           rabbitmqctl stop, wait, SIGTERM/SIGKILL after a deadline
#   scripts/local/rabbitmq.sh status         "up"/"down"; exit 0 if up, 3 if down
#   scripts/local/rabbitmq.sh logs [-f] [N]  last N (200) lines of the node log, -f to follow
#   scripts/local/rabbitmq.sh ctl ARGS...    rabbitmqctl against this node (right cookie/nodename)
#   scripts/local/rabbitmq.sh diag ARGS...   rabbitmq-diagnostics against this node
#   scripts/local/rabbitmq.sh reset          stop and delete the node's data (queues, users, ...)
#   scripts/local/rabbitmq.sh provision      secure profile: users, vhosts and permissions (done on start)
#
# PIX_PROFILE=secure (docs/security-brokers.md): node pix-secure@localhost, AMQPS only on
# 127.0.0.1:RABBITMQ_TLS_PORT (listeners.tcp = none; TLS 1.2/1.3, server.crt from tls.sh,
# client certificates verified when sent), management over HTTPS on 127.0.0.1:RABBITMQ_MGMT_PORT,
# Prometheus on 127.0.0.1:RABBITMQ_PROM_PORT. After start, idempotently: `guest` deleted, the
# users api-rabbitmq notifier auditor pix-admin pix-tail monitoring bench created with their
# passwords from credentials.sh (changed when they differ), least-privilege permissions on `/`,
# topic permissions on exchange `pix`, vhost pix-bench for bench.
#
# Env: PIX_PROFILE (plain | secure), PIX_STATE (<repo>/.local, or <repo>/.local/secure),
#      RABBITMQ_PORT (5672, plain), RABBITMQ_TLS_PORT (5671, secure),
#      RABBITMQ_MGMT_PORT (15672 plain HTTP, 15671 secure HTTPS), RABBITMQ_PROM_PORT (15692),
#      PIX_RABBITMQ_NODENAME (pix@localhost, secure: pix-secure@localhost),
#      RABBITMQ_START_TIMEOUT (60), RABBITMQ_STOP_TIMEOUT (60).
# The Erlang distribution port is the AMQP(S) port + 20000.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/secure.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/secure.sh"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
SECURE=0
[[ "$PIX_PROFILE" == secure ]] && SECURE=1

RMQ_HOST=127.0.0.1
RMQ_PROM_PORT="${RABBITMQ_PROM_PORT:-15692}"
if ((SECURE)); then
    # RMQ_PORT is the port clients use: AMQPS here (there is no plain AMQP listener).
    RMQ_PORT="${RABBITMQ_TLS_PORT:-5671}"
    RMQ_MGMT_PORT="${RABBITMQ_MGMT_PORT:-15671}"
    RMQ_NODE="${PIX_RABBITMQ_NODENAME:-pix-secure@localhost}"
    RMQ_PROTO=amqps
    RMQ_MGMT_URL="https://$RMQ_HOST:$RMQ_MGMT_PORT"
else
    RMQ_PORT="${RABBITMQ_PORT:-5672}"
    RMQ_MGMT_PORT="${RABBITMQ_MGMT_PORT:-15672}"
    RMQ_NODE="${PIX_RABBITMQ_NODENAME:-pix@localhost}"
    RMQ_PROTO=amqp
    RMQ_MGMT_URL="http://$RMQ_HOST:$RMQ_MGMT_PORT"
fi
RMQ_START_TIMEOUT="${RABBITMQ_START_TIMEOUT:-60}"
RMQ_STOP_TIMEOUT="${RABBITMQ_STOP_TIMEOUT:-60}"
# The Debian /usr/sbin/rabbitmq* wrappers switch to the `rabbitmq` user (with
# its own HOME and cookie) when called as root; call the real scripts instead.
RMQ_BIN="${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}"

BASE="$PIX_STATE/rabbitmq"
RMQ_HOME="$BASE/home"            # HOME of the node and of our CLI calls: holds .erlang.cookie
COOKIE="$RMQ_HOME/.erlang.cookie"
CONF="$BASE/rabbitmq.conf"
LOGDIR="$PIX_LOGS/rabbitmq"
LOG="$LOGDIR/rabbitmq.log"       # the node's own log
OUT="$LOGDIR/startup.log"        # stdout/stderr of rabbitmq-server
LAUNCHER_PID="$BASE/launcher.pid" # the rabbitmq-server shell wrapper
NODE_PID="$BASE/rabbitmq.pid"    # the Erlang VM (beam.smp), written by RabbitMQ

usage() { pix_usage "${BASH_SOURCE[0]}"; }

# Everything RabbitMQ reads; exported so that the server and the CLI tools
# started from this script agree on node name, cookie and files. Nothing under
# /etc/rabbitmq or /var/lib/rabbitmq is used.
rmq_env() {
    export HOME="$RMQ_HOME"
    export RABBITMQ_NODENAME="$RMQ_NODE"
    export RABBITMQ_USE_LONGNAME=false
    export RABBITMQ_BASE="$BASE"
    export RABBITMQ_CONF_ENV_FILE="$BASE/rabbitmq-env.conf"
    export RABBITMQ_CONFIG_FILE="$CONF"
    export RABBITMQ_CONFIG_FILES="$BASE/conf.d"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$BASE/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$BASE/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$BASE/mnesia"
    export RABBITMQ_MNESIA_DIR="$BASE/mnesia/$RMQ_NODE"
    export RABBITMQ_PLUGINS_EXPAND_DIR="$BASE/mnesia/$RMQ_NODE-plugins-expand"
    export RABBITMQ_FEATURE_FLAGS_FILE="$BASE/mnesia/$RMQ_NODE-feature_flags"
    export RABBITMQ_PID_FILE="$NODE_PID"
    export RABBITMQ_LOG_BASE="$LOGDIR"
    export RABBITMQ_LOGS="$LOG"
    export ERL_CRASH_DUMP="$LOGDIR/erl_crash.dump"
    export RABBITMQ_DIST_PORT=$((RMQ_PORT + 20000))
    # Erlang distribution and epmd on loopback only (they default to 0.0.0.0).
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    # The CLI reads the cookie from $HOME; make sure nothing overrides it.
    unset RABBITMQ_ERLANG_COOKIE
}

ctl() { (rmq_env && cd "$BASE" && "$RMQ_BIN/rabbitmqctl" "$@"); }
diag() { (rmq_env && cd "$BASE" && "$RMQ_BIN/rabbitmq-diagnostics" "$@"); }

node_pings() { diag -q ping -t 5 >/dev/null 2>&1; }
node_healthy() { port_open "$RMQ_HOST" "$RMQ_PORT" && node_pings; }

launcher_pid() {
    local pid
    pid="$(pid_from_file "$LAUNCHER_PID")"
    if [[ -n "$pid" ]] && pid_alive "$pid" rabbitmq-server; then
        printf '%s\n' "$pid"
    fi
}

node_pid() {
    local pid
    pid="$(pid_from_file "$NODE_PID")"
    if [[ -n "$pid" ]] && pid_alive "$pid" beam; then
        printf '%s\n' "$pid"
    fi
}

# ---- configuration ----------------------------------------------------------

write_if_changed() {
    local f="$1" tmp
    tmp="$(mktemp "$f.XXXXXX")"
    cat >"$tmp"
    if [[ -f "$f" ]] && cmp -s "$tmp" "$f"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$f"
        echo "    wrote $f"
    fi
}

write_config() {
    mkdir -p "$BASE" "$BASE/conf.d" "$BASE/mnesia" "$RMQ_HOME" "$LOGDIR"
    chmod 700 "$RMQ_HOME"
    if [[ ! -s "$COOKIE" ]]; then
        # Erlang wants a private cookie file (mode 400); 40 random hex digits.
        (umask 077 && od -An -N20 -tx1 /dev/urandom | tr -d ' \n' >"$COOKIE")
        echo "    wrote $COOKIE (new Erlang cookie)"
    fi
    chmod 400 "$COOKIE"
    if ((SECURE)); then
        chmod 700 "$BASE"
        secure_config | write_if_changed "$CONF"
    else
        write_if_changed "$CONF" <<EOF
# Generated by scripts/local/rabbitmq.sh -- edits are overwritten on the next start.
listeners.tcp.default = $RMQ_HOST:$RMQ_PORT
management.tcp.ip = $RMQ_HOST
management.tcp.port = $RMQ_MGMT_PORT
prometheus.tcp.ip = $RMQ_HOST
prometheus.tcp.port = $RMQ_PROM_PORT
# guest/guest stays, and may only log in from loopback (the default).
loopback_users.guest = true
log.file = $LOG
log.file.level = info
log.console = false
EOF
    fi
    write_if_changed "$BASE/enabled_plugins" <<'EOF'
[rabbitmq_management,rabbitmq_prometheus].
EOF
    write_if_changed "$BASE/rabbitmq-env.conf" <<'EOF'
# Intentionally empty: scripts/local/rabbitmq.sh sets RABBITMQ_* in the environment
# (this file replaces /etc/rabbitmq/rabbitmq-env.conf for the project-local node).
EOF
}

# The secure profile's rabbitmq.conf: AMQPS and HTTPS only, on loopback.
secure_config() {
    cat <<EOF
# Generated by scripts/local/rabbitmq.sh (PIX_PROFILE=secure) -- edits are overwritten on the next start.
# No plain AMQP listener at all; AMQPS on loopback.
listeners.tcp = none
listeners.ssl.default = $RMQ_HOST:$RMQ_PORT
ssl_options.cacertfile = $PIX_CA_CRT
ssl_options.certfile = $PIX_SERVER_CRT
ssl_options.keyfile = $PIX_SERVER_KEY
# A client certificate is verified when one is sent (it must chain to the CA); the identity is
# the AMQP PLAIN user.
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
ssl_options.depth = 2
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
# Management UI and HTTP API over HTTPS only.
management.ssl.ip = $RMQ_HOST
management.ssl.port = $RMQ_MGMT_PORT
management.ssl.cacertfile = $PIX_CA_CRT
management.ssl.certfile = $PIX_SERVER_CRT
management.ssl.keyfile = $PIX_SERVER_KEY
management.ssl.versions.1 = tlsv1.3
management.ssl.versions.2 = tlsv1.2
# Prometheus scrapes over plain HTTP, on loopback only; /metrics needs no login.
prometheus.tcp.ip = $RMQ_HOST
prometheus.tcp.port = $RMQ_PROM_PORT
log.file = $LOG
log.file.level = info
log.console = false
EOF
}

# ---- users and permissions (secure profile) ---------------------------------------

# The five PIX routing keys, as one anchored regex (topic permissions on exchange `pix`).
PIX_KEYS_RE='^pix\.(payment\.(requested|validated|settled)|notification\.sent|audit\.log)$'

# Tags of each user (space-separated); users not listed have none.
user_tags() {
    case "$1" in
        pix-admin) echo administrator ;;
        monitoring) echo monitoring ;;
        *) echo "" ;;
    esac
}

# Wanted vhost permissions, one per line: USER VHOST CONFIGURE WRITE READ. A user/vhost pair not
# listed gets no permissions there (monitoring: none at all; bench: none on /).
wanted_permissions() {
    cat <<EOF
api-rabbitmq / ^$ ^pix$ ^$
notifier / ^$ ^pix$ ^$
auditor / ^$ ^$ ^pix\\.notification\\.sent$
pix-admin / .* .* .*
pix-tail / ^amq\\.gen-.* ^amq\\.gen-.* ^(pix|amq\\.gen-.*)$
pix-admin pix-bench .* .* .*
bench pix-bench .* .* .*
EOF
}

# Wanted topic permissions: USER VHOST EXCHANGE WRITE READ (write: routing keys a user may
# publish with; read: binding keys it may bind with). Users that may neither publish to nor bind
# from `pix` need none; pix-admin, with none, may use any key.
wanted_topic_permissions() {
    cat <<EOF
api-rabbitmq / pix $PIX_KEYS_RE ^$
notifier / pix ^pix\\.notification\\.sent$ ^$
pix-tail / pix ^$ $PIX_KEYS_RE
EOF
}

# password_matches HASH_B64 PASSWORD: rabbit_password_hashing_sha256 is base64(salt4 || sha256(salt4 || password)).
password_matches() {
    local hex salt="" digest i
    hex="$(printf '%s' "$1" | base64 -d 2>/dev/null | od -An -v -tx1 | tr -d ' \n')"
    [[ ${#hex} -eq 72 ]] || return 1
    for ((i = 0; i < 8; i += 2)); do salt+="\\x${hex:i:2}"; done
    digest="${hex:8}"
    [[ "$({ printf '%b' "$salt"; printf '%s' "$2"; } | openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n')" == "$digest" ]]
}

# ctl_quiet ARGS...: rabbitmqctl without output, and with no stdin (it would eat a loop's input).
ctl_quiet() { ctl -q "$@" </dev/null >/dev/null; }

# provision: makes the node's users, vhosts and permissions what the lists above say, reading
# the current state once (export_definitions) and changing only what differs. Passwords go to
# rabbitmqctl on stdin, never on a command line.
provision() {
    command -v jq >/dev/null 2>&1 || die "jq not found: run scripts/local/deps.sh"
    local defs t0 changes=()
    t0="$(now_us)"
    defs="$(ctl -q export_definitions - 2>/dev/null)" || die "rabbitmqctl export_definitions failed on $RMQ_NODE"

    local u
    if jq -e '.users[] | select(.name == "guest")' >/dev/null <<<"$defs"; then
        ctl_quiet delete_user guest
        changes+=("deleted guest")
    fi

    local -a vhosts
    mapfile -t vhosts < <(jq -r '.vhosts[].name' <<<"$defs")
    if ! pix_in_list pix-bench "${vhosts[@]}"; then
        ctl_quiet add_vhost pix-bench
        changes+=("vhost pix-bench")
    fi

    for u in "${PIX_RABBIT_USERS[@]}"; do
        local row pw hash algo tags
        pw="$(pix_read_password "$u")"
        row="$(jq -r --arg u "$u" '.users[] | select(.name == $u) | [.password_hash, .hashing_algorithm, (.tags | if type == "array" then join(" ") else gsub(","; " ") end)] | @tsv' <<<"$defs")"
        if [[ -z "$row" ]]; then
            printf '%s' "$pw" | ctl -q add_user "$u" >/dev/null
            changes+=("user $u")
            tags=""
        else
            IFS=$'\t' read -r hash algo tags <<<"$row"
            if [[ "$algo" != rabbit_password_hashing_sha256 ]] || ! password_matches "$hash" "$pw"; then
                printf '%s' "$pw" | ctl -q change_password "$u" >/dev/null
                changes+=("password of $u")
            fi
        fi
        local want_tags
        want_tags="$(user_tags "$u")"
        if [[ "$(tr ' ' '\n' <<<"$tags" | sed '/^$/d' | sort | paste -sd' ' -)" != "$want_tags" ]]; then
            # shellcheck disable=SC2086 # one argument per tag
            ctl_quiet set_user_tags "$u" $want_tags
            changes+=("tags of $u: ${want_tags:-none}")
        fi
    done

    # Vhost permissions: set what differs, clear what should not be there (managed users only).
    local have want user vhost conf write read
    have="$(jq -r '.permissions[] | [.user, .vhost, .configure, .write, .read] | join(" ")' <<<"$defs" | sort)"
    want="$(wanted_permissions | sort)"
    while read -r user vhost conf write read; do
        [[ -n "$user" ]] || continue
        if ! grep -qxF "$user $vhost $conf $write $read" <<<"$have"; then
            ctl_quiet set_permissions -p "$vhost" "$user" "$conf" "$write" "$read"
            changes+=("permissions of $user on $vhost")
        fi
    done <<<"$want"
    while read -r user vhost conf write read; do
        [[ -n "$user" ]] || continue
        pix_in_list "$user" "${PIX_RABBIT_USERS[@]}" || continue
        if ! awk -v u="$user" -v v="$vhost" '$1 == u && $2 == v { f = 1 } END { exit !f }' <<<"$want"; then
            ctl_quiet clear_permissions -p "$vhost" "$user"
            changes+=("cleared permissions of $user on $vhost")
        fi
    done <<<"$have"

    # Topic permissions, the same way.
    local exchange
    have="$(jq -r '.topic_permissions[] | [.user, .vhost, .exchange, .write, .read] | join(" ")' <<<"$defs" | sort)"
    want="$(wanted_topic_permissions | sort)"
    while read -r user vhost exchange write read; do
        [[ -n "$user" ]] || continue
        if ! grep -qxF "$user $vhost $exchange $write $read" <<<"$have"; then
            ctl_quiet set_topic_permissions -p "$vhost" "$user" "$exchange" "$write" "$read"
            changes+=("topic permissions of $user on exchange $exchange (vhost $vhost)")
        fi
    done <<<"$want"
    while read -r user vhost exchange write read; do
        [[ -n "$user" ]] || continue
        pix_in_list "$user" "${PIX_RABBIT_USERS[@]}" || continue
        if ! awk -v u="$user" -v v="$vhost" -v x="$exchange" '$1 == u && $2 == v && $3 == x { f = 1 } END { exit !f }' <<<"$want"; then
            ctl_quiet clear_topic_permissions -p "$vhost" "$user" "$exchange"
            changes+=("cleared topic permissions of $user on exchange $exchange (vhost $vhost)")
        fi
    done <<<"$have"

    if [[ ${#changes[@]} -eq 0 ]]; then
        ok "users and permissions already as wanted (${#PIX_RABBIT_USERS[@]} users, no guest) in $(elapsed_since "$t0")s"
    else
        step "provisioned users and permissions on $RMQ_NODE:"
        printf '    %s\n' "${changes[@]}"
        ok "${#changes[@]} change(s) in $(elapsed_since "$t0")s"
    fi
}

# ---- commands ---------------------------------------------------------------

foreign_listener() {
    # Best effort description of who listens on the AMQP port.
    local who="" pid="" user=""
    if command -v ss >/dev/null 2>&1; then
        who="$(ss -Hltnp "sport = :$RMQ_PORT" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 pid \2/p' | head -n 1)"
        pid="${who##* }"
    fi
    [[ "$pid" =~ ^[0-9]+$ ]] && user="$(ps -o user= -p "$pid" 2>/dev/null || true)"
    if [[ "$user" == rabbitmq ]]; then
        printf '%s\n' "$who, user rabbitmq: the packaged rabbitmq-server (node rabbit@$(hostname -s))"
    elif [[ -n "$who" ]]; then
        printf '%s\n' "$who${user:+, user $user}: not node $RMQ_NODE"
    else
        printf '%s\n' "unknown process"
    fi
}

# The quorum queues' delivery limit, explicit: a message redelivered this many times (a consumer
# crashing on it again and again) is dead-lettered. RabbitMQ 4.x defaults it to 20 and 3.10 has
# none; the policy makes both the same (docs/guarantees.md). The project's consumers never requeue
# in a loop, so only crash loops count. The dead-letter and unrouted queues are left out.
readonly PIX_DELIVERY_LIMIT=50
readonly PIX_DELIVERY_LIMIT_PATTERN='^(.+\.)?pix\.(payment|notification|audit)\.'
ensure_policies() {
    ctl_quiet set_policy -p / --apply-to queues --priority 0 pix-delivery-limit "$PIX_DELIVERY_LIMIT_PATTERN" \
        "{\"delivery-limit\": $PIX_DELIVERY_LIMIT}" ||
        die "rabbitmqctl set_policy pix-delivery-limit failed on $RMQ_NODE"
}

cmd_start() {
    local t0 pid
    t0="$(now_us)"
    [[ -x "$RMQ_BIN/rabbitmq-server" ]] || die "$RMQ_BIN/rabbitmq-server not found: run scripts/local/deps.sh"
    mkdir -p "$BASE"

    if node_healthy; then
        ok "rabbitmq already running (node $RMQ_NODE, pid $(node_pid), $RMQ_PROTO $RMQ_HOST:$RMQ_PORT)"
        if ((SECURE)); then provision; fi
        ensure_policies
        return 0
    fi
    if port_open "$RMQ_HOST" "$RMQ_PORT" && [[ -z "$(launcher_pid)" && -z "$(node_pid)" ]]; then
        # Something else (e.g. the packaged rabbitmq-server service) owns the
        # port. Don't fight it: tell the user and leave it alone.
        warn "$RMQ_HOST:$RMQ_PORT is already served by a process this script did not start: $(foreign_listener)"
        warn "not starting $RMQ_NODE next to it; clients of $RMQ_HOST:$RMQ_PORT will use that broker."
        warn "to use the project-local node instead, stop the other one, or set RABBITMQ_PORT (and RABBITMQ_MGMT_PORT/RABBITMQ_PROM_PORT)."
        return 0
    fi

    if ((SECURE)); then
        "$HERE/tls.sh" ensure
        "$HERE/credentials.sh" ensure
    fi
    step "writing config in $BASE"
    write_config

    pid="$(launcher_pid)"
    if [[ -n "$pid" ]]; then
        step "rabbitmq-server (pid $pid) already launched; waiting for it"
    else
        rm -f "$LAUNCHER_PID"
        if ((SECURE)); then
            # Say which port is taken rather than let the node crash on it.
            local p
            for p in "$RMQ_MGMT_PORT:management (RABBITMQ_MGMT_PORT)" "$RMQ_PROM_PORT:prometheus (RABBITMQ_PROM_PORT)" \
                "$((RMQ_PORT + 20000)):Erlang distribution (RABBITMQ_TLS_PORT + 20000)"; do
                if port_open "$RMQ_HOST" "${p%%:*}"; then
                    die "port $RMQ_HOST:${p%%:*} for ${p#*:} is in use (the plain profile's node?): set that variable to a free port"
                fi
            done
        fi
        step "starting rabbitmq-server as node $RMQ_NODE (log: $LOG)"
        echo "===== $(date '+%F %T') rabbitmq.sh start =====" >>"$OUT"
        # Background rather than -detached: the wrapper script stays in the
        # foreground of its own session, turns SIGTERM into a clean shutdown,
        # and we know its pid. setsid: survive this shell and its Ctrl-C.
        # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
        (rmq_env && cd "$BASE" && exec setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$LAUNCHER_PID" \
            nohup "$RMQ_BIN/rabbitmq-server" </dev/null >>"$OUT" 2>&1) &
        for _ in $(seq 1 50); do
            pid="$(pid_from_file "$LAUNCHER_PID")"
            [[ -n "$pid" ]] && break
            sleep 0.1
        done
        [[ -n "$pid" ]] || die "rabbitmq-server did not write $LAUNCHER_PID"
        echo "    launcher pid $pid"
    fi
    if ! wait_until "rabbitmq node $RMQ_NODE (ping + $RMQ_PROTO $RMQ_HOST:$RMQ_PORT)" "$RMQ_START_TIMEOUT" \
        --log "$LOG" --pid "$pid" node_healthy; then
        warn "rabbitmq-server output ($OUT):"
        tail -n 20 "$OUT" | sed 's/^/    | /' >&2
        die "rabbitmq did not become ready"
    fi
    ensure_policies
    if ((SECURE)); then
        provision
        ok "rabbitmq up, secure profile (node $RMQ_NODE, pid $(node_pid), amqps $RMQ_HOST:$RMQ_PORT, $RMQ_MGMT_URL, metrics http://$RMQ_HOST:$RMQ_PROM_PORT/metrics) in $(elapsed_since "$t0")s"
        return 0
    fi
    ok "rabbitmq up (node $RMQ_NODE, pid $(node_pid), amqp $RMQ_HOST:$RMQ_PORT, http://$RMQ_HOST:$RMQ_MGMT_PORT guest/guest, metrics :$RMQ_PROM_PORT) in $(elapsed_since "$t0")s"
}

cmd_stop() {
    local t0 lpid npid
    t0="$(now_us)"
    lpid="$(launcher_pid)"
    npid="$(node_pid)"
    if [[ -z "$lpid" && -z "$npid" ]] && ! node_pings; then
        ok "rabbitmq not running"
        if port_open "$RMQ_HOST" "$RMQ_PORT"; then
            warn "but $RMQ_HOST:$RMQ_PORT is open ($(foreign_listener)): not started by this script, leaving it alone"
        fi
        return 0
    fi
    step "rabbitmqctl stop (node $RMQ_NODE)"
    if ctl stop -t "$RMQ_STOP_TIMEOUT" 2>&1 | sed 's/^/    /'; then
        :
    else
        warn "rabbitmqctl stop failed; falling back to signals"
    fi
    if [[ -n "$npid" ]]; then
        wait_until "rabbitmq VM (pid $npid) to exit" "$RMQ_STOP_TIMEOUT" proc_gone "$npid" \
            || stop_pid "rabbitmq VM" "$npid" 10 || die "could not stop the rabbitmq VM (pid $npid)"
    fi
    if [[ -n "$lpid" ]]; then
        wait_until "rabbitmq-server wrapper (pid $lpid) to exit" 10 proc_gone "$lpid" \
            || stop_pid "rabbitmq-server wrapper" "$lpid" 10 || true
    fi
    rm -f "$LAUNCHER_PID" "$NODE_PID"
    ok "rabbitmq stopped in $(elapsed_since "$t0")s"
}

cmd_status() {
    if node_healthy; then
        if ((SECURE)); then
            echo "rabbitmq: up, secure profile (node $RMQ_NODE, pid $(node_pid), amqps $RMQ_HOST:$RMQ_PORT, management $RMQ_MGMT_URL, prometheus $RMQ_HOST:$RMQ_PROM_PORT, state $BASE)"
        else
            echo "rabbitmq: up (node $RMQ_NODE, pid $(node_pid), amqp $RMQ_HOST:$RMQ_PORT, management $RMQ_HOST:$RMQ_MGMT_PORT, prometheus $RMQ_HOST:$RMQ_PROM_PORT, state $BASE)"
        fi
        return 0
    fi
    local lpid
    lpid="$(launcher_pid)"
    if [[ -n "$lpid" ]]; then
        echo "rabbitmq: down (rabbitmq-server pid $lpid exists but node $RMQ_NODE does not answer: starting or broken; see $LOG)"
    elif port_open "$RMQ_HOST" "$RMQ_PORT"; then
        # Same rule as `start`: a broker we did not start serves the port.
        echo "rabbitmq: up, but not ours (node $RMQ_NODE not running; $RMQ_HOST:$RMQ_PORT is served by $(foreign_listener))"
        return 0
    else
        echo "rabbitmq: down"
    fi
    return 3
}

cmd_logs() {
    local follow=0 n=200
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -f | --follow) follow=1 ;;
            *[!0-9]* | "") die "usage: $0 logs [-f] [N]" ;;
            *) n="$1" ;;
        esac
        shift
    done
    [[ -f "$LOG" ]] || die "no log yet: $LOG"
    if ((follow)); then
        exec tail -n "$n" -F "$LOG"
    fi
    tail -n "$n" "$LOG"
}

cmd_reset() {
    cmd_stop
    step "deleting $BASE/mnesia (queues, exchanges, users, vhosts)"
    rm -rf "$BASE/mnesia"
    if ((SECURE)); then
        ok "rabbitmq data wiped; next start creates a fresh node and provisions its users again (passwords are kept in $PIX_CRED_DIR)"
    else
        ok "rabbitmq data wiped; next start creates a fresh node (guest/guest)"
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) rc=0; cmd_status || rc=$?; exit "$rc" ;;
    logs) shift; cmd_logs "$@" ;;
    ctl) shift; ctl "$@" ;;
    diag) shift; diag "$@" ;;
    reset) cmd_reset ;;
    provision)
        ((SECURE)) || die "provision is for PIX_PROFILE=secure"
        node_pings || die "node $RMQ_NODE is not running"
        provision
        ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
