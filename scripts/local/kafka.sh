#!/usr/bin/env bash
# Local single-node Apache Kafka 3.9.1 (KRaft, combined broker+controller)
# bound to 127.0.0.1, with jars from Maven Central (deploy/kafka/pom.xml).
#
#   scripts/local/kafka.sh start     fetch jars (once), configure, format (once), start, wait ready
#   scripts/local/kafka.sh stop      SIGTERM, wait, SIGKILL after a deadline
#   scripts/local/kafka.sh status    "up"/"down"; exit 0 if up, 3 if down
#   scripts/local/kafka.sh logs [-f] [N]   last N (200) lines of the broker log, -f to follow
#   scripts/local/kafka.sh reset     stop and delete the data directory (next start re-formats)
#   scripts/local/kafka.sh tool CLASS ARGS...   run one of Kafka's Java tools (kafka.admin.AclCommand,
#                                    org.apache.kafka.tools.TopicCommand, ...) with this broker's jars
#   scripts/local/kafka.sh sync-users    secure profile: give Kafka the SCRAM password of every
#                                    principal whose password file changed (done on start too)
#
# PIX_PROFILE=secure (docs/security-brokers.md): one client listener SASL_SSL://127.0.0.1:KAFKA_PORT
# (SCRAM-SHA-512, TLS with $PIX_STATE/tls/server.crt), the controller listener on
# 127.0.0.1:KAFKA_CONTROLLER_PORT with TLS and required client certificates (User:CN=kafka-controller),
# StandardAuthorizer with allow.everyone.if.no.acl.found=false, super users pix-admin, kafka-broker
# and the controller. No plaintext listener. Certificates and passwords come from tls.sh and
# credentials.sh (run by `start`); SCRAM users are created when the storage is formatted.
#
# Env: PIX_PROFILE (plain | secure), PIX_STATE (<repo>/.local, or <repo>/.local/secure),
#      KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
#      KAFKA_HEAP_OPTS (-Xms256m -Xmx512m), KAFKA_JVM_OPTS (extra JVM flags),
#      KAFKA_START_TIMEOUT (90), KAFKA_STOP_TIMEOUT (60), JAVA_HOME / JAVA.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/secure.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/secure.sh"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
SECURE=0
[[ "$PIX_PROFILE" == secure ]] && SECURE=1

KAFKA_VERSION=3.9.1
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"

ROOT="$(pix_root)"
POM="$ROOT/deploy/kafka/pom.xml"
KDIR="$PIX_STATE/kafka"
LIBS="$KDIR/libs"
STAMP="$LIBS/.pom.sha256"
DATA="$KDIR/data"
PROPS="$KDIR/server.properties"
LOG4J="$KDIR/log4j.properties"
TOOLS_LOG4J="$KDIR/tools-log4j.properties"
PIDFILE="$KDIR/kafka.pid"
LOG="$PIX_LOGS/kafka.log"     # log4j output of the broker
OUT="$PIX_LOGS/kafka.out"     # stdout/stderr of the JVM (crashes, JVM warnings)
MVN_LOG="$PIX_LOGS/kafka-mvn.log"
PID_MARK="kafka.Kafka"        # must appear in the process command line
TOOLS_LIBS="$KDIR/tools-libs" # kafka-tools (TopicCommand, ...), fetched by the first `tool` call
SCRAM_DIR="$KDIR/scram"       # sha256 of each password Kafka has (secure profile)
# The secure health check logs in as a super user whose password Kafka has (write_health_conf).
ADMIN_KCAT_CONF="$PIX_KAFKA_CLIENTS_DIR/pix-admin.kcat.conf"
HEALTH_CONF="$KDIR/health.kcat.conf"

if [[ -n "${JAVA:-}" ]]; then
    :
elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
else
    JAVA=java
fi

usage() { pix_usage "${BASH_SOURCE[0]}"; }

kafka_pid() {
    local pid
    pid="$(pid_from_file "$PIDFILE")"
    if [[ -n "$pid" ]] && pid_alive "$pid" "$PID_MARK"; then
        printf '%s\n' "$pid"
    fi
}

# Metadata request answered and broker 1 listed (secure: over TLS, logged in as pix-admin).
kafka_healthy() {
    port_open "$KAFKA_HOST" "$KAFKA_PORT" || return 1
    local md
    local -a auth=()
    if ((SECURE)); then
        [[ -r "$HEALTH_CONF" ]] || return 1
        auth=(-F "$HEALTH_CONF")
    fi
    md="$(kcat "${auth[@]}" -b "$KAFKA_HOST:$KAFKA_PORT" -L -m 3 2>/dev/null)" || return 1
    grep -qE '^[[:space:]]*broker 1 at ' <<<"$md"
}

# ---- jars -------------------------------------------------------------------

ensure_libs() {
    local sum
    sum="$(sha256sum "$POM" | cut -d' ' -f1)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$sum" ]] && compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
        ok "Kafka $KAFKA_VERSION jars present ($(find "$LIBS" -name '*.jar' | wc -l) jars, pom sha256 ${sum:0:12})"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found: run scripts/local/deps.sh"
    step "resolving Kafka $KAFKA_VERSION jars from Maven Central (mvn dependency:copy-dependencies, log: $MVN_LOG)"
    local tmp="$KDIR/libs.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # Background + wait_until so that a cold download shows progress.
    mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$MVN_LOG" 2>&1 &
    local mpid=$!
    if ! wait_until "maven to fetch the jars" 900 --log "$MVN_LOG" proc_gone "$mpid"; then
        kill "$mpid" 2>/dev/null || true
        die "maven did not finish in time"
    fi
    local rc=0
    wait "$mpid" || rc=$?
    if [[ $rc -ne 0 ]]; then
        sed 's/^/    | /' "$MVN_LOG" >&2
        die "mvn dependency:copy-dependencies failed (exit $rc)"
    fi
    compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null || die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"
    # Swap in whole: never leave a class path that mixes two versions.
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    printf '%s\n' "$sum" >"$STAMP"
    ok "$(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

# ---- configuration ----------------------------------------------------------

# write_if_changed FILE: stdin -> FILE, only touching FILE when content differs.
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

# The listeners of the plain profile: no TLS, no authentication.
plain_listeners() {
    cat <<EOF
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
EOF
}

# The listeners of the secure profile. No secret is written here: DirectoryConfigProvider reads
# the broker's own SCRAM password from its file in $PIX_CRED_DIR.
secure_listeners() {
    cat <<EOF
# Clients, and this broker to itself: TLS + SCRAM-SHA-512. There is no plaintext listener.
listeners=SASL_SSL://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://$KAFKA_HOST:$KAFKA_PORT
# KRaft controllers cannot use SCRAM (its credentials live in the metadata they serve): the
# controller listener is TLS with required client certificates, principal User:CN=kafka-controller.
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
config.providers=dir
config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="kafka-broker" password="\${dir:$PIX_CRED_DIR:kafka-broker.password}";
ssl.enabled.protocols=TLSv1.3,TLSv1.2
ssl.protocol=TLSv1.3
ssl.endpoint.identification.algorithm=https
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$PIX_KAFKA_SERVER_KEYSTORE
listener.name.sasl_ssl.ssl.truststore.type=PEM
listener.name.sasl_ssl.ssl.truststore.location=$PIX_CA_CRT
# A client certificate is verified when one is sent; the identity is the SCRAM user.
listener.name.sasl_ssl.ssl.client.auth=requested
listener.name.controller.ssl.keystore.type=PEM
listener.name.controller.ssl.keystore.location=$PIX_KAFKA_CONTROLLER_KEYSTORE
listener.name.controller.ssl.truststore.type=PEM
listener.name.controller.ssl.truststore.location=$PIX_CA_CRT
listener.name.controller.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:pix-admin;User:kafka-broker;$PIX_KAFKA_CONTROLLER_PRINCIPAL
EOF
}

write_config() {
    mkdir -p "$KDIR" "$DATA" "$PIX_LOGS"
    local listeners
    if ((SECURE)); then
        chmod 700 "$KDIR"
        listeners="$(secure_listeners)"
    else
        listeners="$(plain_listeners)"
    fi
    write_if_changed "$PROPS" <<EOF
# Generated by scripts/local/kafka.sh -- edits are overwritten on the next start.
# Single-node KRaft: this process is both broker and (the only) controller.
node.id=1
process.roles=broker,controller
$listeners
# Dynamic quorum (KIP-853); storage is formatted with --standalone.
controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
log.dirs=$DATA
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=3
num.io.threads=4
log.retention.hours=24
log.segment.bytes=67108864
EOF
    write_if_changed "$LOG4J" <<EOF
# Generated by scripts/local/kafka.sh: everything at INFO into one file.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$LOG
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
    write_if_changed "$TOOLS_LOG4J" <<'EOF'
# Generated by scripts/local/kafka.sh: command-line tools log warnings to stderr.
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

storage_tool() {
    "$JAVA" -Dlog4j.configuration="file:$TOOLS_LOG4J" -cp "$LIBS/*" kafka.tools.StorageTool "$@"
}

format_storage() {
    if [[ -f "$DATA/meta.properties" ]]; then
        ok "storage already formatted (cluster $(sed -n 's/^cluster.id=//p' "$DATA/meta.properties"))"
        return 0
    fi
    local id
    step "generating cluster id (StorageTool random-uuid)"
    id="$(storage_tool random-uuid)"
    [[ -n "$id" ]] || die "StorageTool random-uuid printed nothing"
    local -a scram=()
    if ((SECURE)); then
        # One SCRAM-SHA-512 credential per principal, in the very first metadata records, so the
        # broker (kafka-broker) and the admin (pix-admin) can log in on the first start.
        local n
        for n in "${PIX_KAFKA_PRINCIPALS[@]}"; do
            scram+=(--add-scram "SCRAM-SHA-512=[name=$n,password=$(pix_read_password "$n")]")
        done
        step "formatting KRaft storage in $DATA (cluster $id, --standalone, SCRAM-SHA-512 users: ${PIX_KAFKA_PRINCIPALS[*]})"
    else
        step "formatting KRaft storage in $DATA (cluster $id, --standalone)"
    fi
    storage_tool format --standalone -t "$id" -c "$PROPS" "${scram[@]}" 2>&1 | sed 's/^/    /'
    [[ -f "$DATA/meta.properties" ]] || die "format did not create $DATA/meta.properties"
    printf '%s\n' "$id" >"$KDIR/cluster.id"
    if ((SECURE)); then
        for n in "${PIX_KAFKA_PRINCIPALS[@]}"; do record_scram "$n"; done
    fi
    ok "storage formatted"
}

# ---- SCRAM users (secure profile) -----------------------------------------------

# sha256 of a password file's content (the password, no newline).
file_sum() { sha256sum <"$1" | cut -d' ' -f1; }

# record_scram NAME: Kafka now has the password in NAME's file.
record_scram() {
    mkdir -p "$SCRAM_DIR"
    file_sum "$(pix_password_file "$1")" >"$SCRAM_DIR/$1.sha256"
}

# scram_stale NAME: NAME's password file is not what Kafka was given.
scram_stale() {
    [[ ! -s "$SCRAM_DIR/$1.sha256" || "$(cat "$SCRAM_DIR/$1.sha256")" != "$(file_sum "$(pix_password_file "$1")")" ]]
}

# known_login: prints "NAME FILE" for a super user and the file holding a password Kafka has:
# pix-admin's or kafka-broker's current file, else the previous password `credentials.sh rotate`
# keeps in NAME.password.previous until Kafka has the new one. Fails if there is none.
known_login() {
    local n prev
    for n in pix-admin kafka-broker; do
        if ! scram_stale "$n"; then
            printf '%s %s\n' "$n" "$n.password"
            return 0
        fi
    done
    for n in pix-admin kafka-broker; do
        prev="$(pix_password_file "$n").previous"
        if [[ -s "$prev" && -s "$SCRAM_DIR/$n.sha256" && "$(file_sum "$prev")" == "$(cat "$SCRAM_DIR/$n.sha256")" ]]; then
            printf '%s %s\n' "$n" "$n.password.previous"
            return 0
        fi
    done
    return 1
}

NO_LOGIN="Kafka knows neither pix-admin's nor kafka-broker's current password; restore $PIX_CRED_DIR/<name>.password, or wipe the data ($0 reset) to format again"

# write_health_conf: the kcat login of the health check, 0600 (it holds a password).
write_health_conf() {
    local who file
    read -r who file < <(known_login) || return 1
    [[ -r "$ADMIN_KCAT_CONF" ]] || return 1
    (
        umask 077
        {
            grep -vE '^sasl\.(username|password)=' "$ADMIN_KCAT_CONF"
            echo "sasl.username=$who"
            printf 'sasl.password=%s\n' "$(<"$PIX_CRED_DIR/$file")"
        } >"$HEALTH_CONF.tmp"
        mv -f "$HEALTH_CONF.tmp" "$HEALTH_CONF"
    )
}

# login_props DIR: writes DIR/login.properties (Java) for known_login's user; prints the user.
login_props() {
    local dir="$1" who file
    read -r who file < <(known_login) || die "$NO_LOGIN"
    sed -e "s|username=\"[^\"]*\"|username=\"$who\"|" -e "s|\${dir:[^}]*}|\${dir:$PIX_CRED_DIR:$file}|" \
        "$PIX_KAFKA_CLIENTS_DIR/pix-admin.properties" >"$dir/login.properties"
    printf '%s\n' "$who"
}

# Gives Kafka the SCRAM-SHA-512 password of each principal whose file changed (ConfigCommand
# through the broker, as a super user: AlterUserScramCredentials is not served by the KRaft
# controller listener in 3.9). The passwords go through 0600 files, never a command line.
sync_users() {
    local -a stale=()
    local n
    for n in "${PIX_KAFKA_PRINCIPALS[@]}"; do
        if scram_stale "$n"; then stale+=("$n"); fi
    done
    if [[ ${#stale[@]} -eq 0 ]]; then
        ok "SCRAM users match $PIX_CRED_DIR (${#PIX_KAFKA_PRINCIPALS[@]} principals)"
        return 0
    fi
    local tmp login
    tmp="$(mktemp -d "$KDIR/.scram.XXXXXX")"
    login="$(login_props "$tmp")" || { rm -rf "$tmp"; exit 1; }
    step "updating the SCRAM-SHA-512 credentials of ${stale[*]} (kafka.admin.ConfigCommand as $login)"
    # The user we log in as goes last: its old password must work until then.
    local -a order=()
    for n in "${stale[@]}"; do [[ "$n" == "$login" ]] || order+=("$n"); done
    pix_in_list "$login" "${stale[@]}" && order+=("$login")
    for n in "${order[@]}"; do
        (umask 077 && printf 'SCRAM-SHA-512=password=%s\n' "$(pix_read_password "$n")" >"$tmp/$n.properties")
        if ! run_tool kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
            --command-config "$tmp/login.properties" --alter --entity-type users --entity-name "$n" \
            --add-config-file "$tmp/$n.properties" 2>&1 | sed 's/^/    /'; then
            rm -rf "$tmp"
            die "could not update the SCRAM credential of $n"
        fi
        record_scram "$n"
    done
    for n in "${stale[@]}"; do rm -f "$(pix_password_file "$n").previous"; done
    rm -rf "$tmp"
    write_health_conf
    ok "SCRAM credentials updated: ${stale[*]}"
}

# ---- Kafka's tools ------------------------------------------------------------

# kafka-tools (TopicCommand, ConsumerGroupCommand, ...) is not a dependency of the broker: one
# jar, fetched on first use next to the broker's class path (its own dependencies are there).
ensure_tools_jar() {
    local jar="$TOOLS_LIBS/kafka-tools-$KAFKA_VERSION.jar"
    [[ -s "$jar" ]] && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn not found: run scripts/local/deps.sh"
    step "fetching org.apache.kafka:kafka-tools:$KAFKA_VERSION (mvn dependency:copy, log: $MVN_LOG)" >&2
    mkdir -p "$TOOLS_LIBS"
    mvn -q -B dependency:copy -Dartifact="org.apache.kafka:kafka-tools:$KAFKA_VERSION" \
        -DoutputDirectory="$TOOLS_LIBS" >"$MVN_LOG" 2>&1 &
    local mpid=$! rc=0
    wait_until "maven to fetch kafka-tools" 600 --log "$MVN_LOG" proc_gone "$mpid" >&2 || die "maven did not finish in time"
    wait "$mpid" || rc=$?
    [[ $rc -eq 0 && -s "$jar" ]] || die "could not fetch kafka-tools (exit $rc); see $MVN_LOG"
}

# run_tool CLASS ARGS...: a Kafka tool on the broker's jars (+ kafka-tools), logging warnings to stderr.
run_tool() {
    [[ -d "$LIBS" ]] || die "no Kafka jars in $LIBS yet: run $0 start once"
    "$JAVA" -Xmx256m -Dlog4j.configuration="file:$TOOLS_LOG4J" -cp "$LIBS/*:$TOOLS_LIBS/*" "$@"
}

# ---- commands ---------------------------------------------------------------

cmd_start() {
    local t0 pid
    t0="$(now_us)"
    pid="$(kafka_pid)"
    if ((SECURE)) && [[ -d "$DATA" ]]; then
        write_health_conf || die "$NO_LOGIN"
    fi
    if [[ -n "$pid" ]]; then
        if kafka_healthy; then
            ok "kafka already running (pid $pid, $KAFKA_HOST:$KAFKA_PORT)"
            if ((SECURE)); then sync_users; fi
            return 0
        fi
        step "kafka process $pid exists but does not answer yet; waiting for it"
        wait_until "kafka on $KAFKA_HOST:$KAFKA_PORT" "$KAFKA_START_TIMEOUT" --log "$LOG" --pid "$pid" kafka_healthy \
            || die "kafka (pid $pid) is not healthy; try: $0 stop && $0 start"
        ok "kafka up (pid $pid, $KAFKA_HOST:$KAFKA_PORT) in $(elapsed_since "$t0")s"
        return 0
    fi
    rm -f "$PIDFILE"
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        die "port $KAFKA_HOST:$KAFKA_PORT is in use by a process this script did not start; stop it or set KAFKA_PORT"
    fi
    if port_open "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"; then
        die "controller port $KAFKA_HOST:$KAFKA_CONTROLLER_PORT is in use; stop that process or set KAFKA_CONTROLLER_PORT"
    fi
    command -v "$JAVA" >/dev/null 2>&1 || die "java not found: run scripts/local/deps.sh"
    command -v kcat >/dev/null 2>&1 || die "kcat not found: run scripts/local/deps.sh"

    ensure_libs
    if ((SECURE)); then
        "$HERE/tls.sh" ensure
        "$HERE/credentials.sh" ensure
    fi
    step "writing config in $KDIR"
    write_config
    format_storage
    if ((SECURE)); then write_health_conf || die "$NO_LOGIN"; fi

    step "starting kafka $KAFKA_VERSION (log: $LOG, jvm output: $OUT)"
    {
        echo "===== $(date '+%F %T') kafka.sh start ====="
    } >>"$OUT"
    local -a heap jvm
    read -r -a heap <<<"$KAFKA_HEAP_OPTS"
    read -r -a jvm <<<"$KAFKA_JVM_OPTS"
    # setsid: own session, so the broker outlives this shell and its Ctrl-C.
    # The inner bash writes its own pid and then execs java, so the pid file
    # holds the JVM's pid whether or not setsid had to fork.
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
        nohup "$JAVA" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        "${jvm[@]}" \
        -Dlog4j.configuration="file:$LOG4J" -Dkafka.logs.dir="$PIX_LOGS" \
        -cp "$LIBS/*" kafka.Kafka "$PROPS" \
        </dev/null >>"$OUT" 2>&1 &
    for _ in $(seq 1 50); do
        pid="$(pid_from_file "$PIDFILE")"
        [[ -n "$pid" ]] && break
        sleep 0.1
    done
    [[ -n "$pid" ]] || die "kafka did not write its pid file $PIDFILE"
    echo "    pid $pid"
    if ! wait_until "kafka on $KAFKA_HOST:$KAFKA_PORT (kcat -L lists broker 1)" "$KAFKA_START_TIMEOUT" \
        --log "$LOG" --pid "$pid" kafka_healthy; then
        if proc_gone "$pid"; then
            warn "JVM output ($OUT):"
            tail -n 20 "$OUT" | sed 's/^/    | /' >&2
        fi
        die "kafka did not become ready; see $LOG"
    fi
    if ((SECURE)); then
        sync_users
        ok "kafka up, secure profile (pid $pid, SASL_SSL $KAFKA_HOST:$KAFKA_PORT, SCRAM-SHA-512, CA $PIX_CA_CRT) in $(elapsed_since "$t0")s"
        return 0
    fi
    ok "kafka up (pid $pid, $KAFKA_HOST:$KAFKA_PORT) in $(elapsed_since "$t0")s"
}

cmd_stop() {
    local pid
    pid="$(kafka_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PIDFILE"
        ok "kafka not running"
        if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
            warn "but $KAFKA_HOST:$KAFKA_PORT is open: that process was not started by this script, leaving it alone"
        fi
        return 0
    fi
    local t0
    t0="$(now_us)"
    stop_pid kafka "$pid" "$KAFKA_STOP_TIMEOUT" || die "could not stop kafka (pid $pid)"
    rm -f "$PIDFILE"
    ok "kafka stopped in $(elapsed_since "$t0")s"
}

cmd_status() {
    local pid
    pid="$(kafka_pid)"
    if ((SECURE)) && [[ -n "$pid" ]]; then write_health_conf || true; fi
    if [[ -n "$pid" ]] && kafka_healthy; then
        if ((SECURE)); then
            echo "kafka: up, secure profile (pid $pid, SASL_SSL $KAFKA_HOST:$KAFKA_PORT, controller SSL $KAFKA_HOST:$KAFKA_CONTROLLER_PORT, state $KDIR)"
        else
            echo "kafka: up (pid $pid, $KAFKA_HOST:$KAFKA_PORT, controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT, state $KDIR)"
        fi
        return 0
    fi
    if [[ -n "$pid" ]]; then
        echo "kafka: down (pid $pid exists but $KAFKA_HOST:$KAFKA_PORT does not answer: starting or broken; see $LOG)"
    elif port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        echo "kafka: down (not started by this script, but something listens on $KAFKA_HOST:$KAFKA_PORT)"
    else
        echo "kafka: down"
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
    step "deleting $DATA (topics, offsets and the KRaft metadata log)"
    rm -rf "$DATA" "$KDIR/cluster.id" "$SCRAM_DIR"
    ok "kafka data wiped; next start formats fresh storage"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) rc=0; cmd_status || rc=$?; exit "$rc" ;;
    logs) shift; cmd_logs "$@" ;;
    reset) cmd_reset ;;
    tool)
        shift
        [[ $# -gt 0 ]] || die "usage: $0 tool CLASS ARGS..."
        [[ "$1" == org.apache.kafka.tools.* ]] && ensure_tools_jar
        run_tool "$@"
        ;;
    sync-users)
        ((SECURE)) || die "sync-users is for PIX_PROFILE=secure"
        [[ -n "$(kafka_pid)" ]] || die "kafka is not running"
        sync_users
        ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
