#!/usr/bin/env bash
# Throwaway checks of a running secure profile (PIX_PROFILE=secure brokers.sh up): TLS, logins
# and least privilege on Kafka and RabbitMQ, with Kafka's own tools, kcat, openssl and Debian's
# amqp-tools. One PASS/FAIL line per check; exit 1 if any check failed.
#
#   scripts/local/secure_smoke.sh [all|kafka|rabbitmq] [--use-live-topology]
#
# It cleans up after itself: Kafka topics `pix-smoke.<id>.*` and their ACLs are created and
# deleted; on RabbitMQ the exchange `pix` and the queue `pix.notification.sent` are declared (as
# pix-admin, over the HTTPS management API, with the arguments `pix-admin topology` uses) only if
# they do not exist, and deleted again. If `pix` already exists (the real topology), the checks
# that publish into it are skipped unless --use-live-topology is given (they would put test
# messages into live queues).
#
# Limitation: Debian's amqp-tools 0.11 speak TLS only with --url amqps://..., which excludes
# --authfile/--password, so the RabbitMQ checks pass passwords inside the URL: each amqp-* call
# (well under a second) shows it in the process list. Run this on a single-user machine.
#
# Env: PIX_PROFILE (must be secure; set if empty), PIX_STATE (<repo>/.local/secure),
#      KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), RABBITMQ_TLS_PORT (5671),
#      RABBITMQ_MGMT_PORT (15671), RABBITMQ_PROM_PORT (15692), PIX_RABBITMQ_NODENAME,
#      RABBITMQ_PORT (5672: the plain AMQP port that must not be served by the secure node).
set -euo pipefail

export PIX_PROFILE="${PIX_PROFILE:-secure}"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/secure.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/secure.sh"
[[ "$PIX_PROFILE" == secure ]] || die "secure_smoke.sh checks the secure profile (PIX_PROFILE=secure), not '$PIX_PROFILE'"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
RMQ_TLS_PORT="${RABBITMQ_TLS_PORT:-5671}"
RMQ_MGMT_PORT="${RABBITMQ_MGMT_PORT:-15671}"
RMQ_PROM_PORT="${RABBITMQ_PROM_PORT:-15692}"
RMQ_PLAIN_PORT="${RABBITMQ_PORT:-5672}"
KB="127.0.0.1:$KAFKA_PORT"
KC="127.0.0.1:$KAFKA_CONTROLLER_PORT"
MGMT="https://127.0.0.1:$RMQ_MGMT_PORT"
PIX_KEYS="pix.payment.requested,pix.payment.validated,pix.payment.settled,pix.notification.sent,pix.audit.log"

usage() { pix_usage "${BASH_SOURCE[0]}"; }

what=all live=0
for arg in "$@"; do
    case "$arg" in
        all | kafka | rabbitmq) what="$arg" ;;
        --use-live-topology) live=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

for tool in openssl kcat curl jq amqp-publish amqp-consume amqp-declare-queue; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/local/deps.sh"
done

umask 077
TMP="$(mktemp -d "${TMPDIR:-/tmp}/pix-secure-smoke.XXXXXX")"
ID="$(date +%s)-$$"
passes=0 failures=0 skips=0
CLEANUP=()

cleanup() {
    local i
    for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUP[i]}" >/dev/null 2>&1 || echo "    (cleanup step failed: ${CLEANUP[i]})"
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- reporting ----------------------------------------------------------------

pass() { passes=$((passes + 1)); printf 'PASS %s\n' "$1"; }
skip() { skips=$((skips + 1)); printf 'SKIP %s\n' "$1"; }
fail() {
    failures=$((failures + 1))
    printf 'FAIL %s\n' "$1"
    if [[ -n "${2:-}" ]]; then
        printf '%s\n' "$2" | tail -n 6 | sed 's/^/     | /'
    fi
}

# run CMD...: runs CMD (stdin from /dev/null unless redirected by the caller), output in $OUT, status in $RC.
OUT="" RC=0
run() {
    RC=0
    OUT="$("$@" 2>&1)" || RC=$?
}

# expect_ok DESC CMD...: PASS if CMD succeeds.
expect_ok() {
    local desc="$1"
    shift
    run "$@" </dev/null
    if ((RC == 0)); then pass "$desc"; else fail "$desc (exit $RC)" "$OUT"; fi
}

# expect_refused DESC PATTERN CMD...: PASS if CMD fails and its output matches PATTERN (ERE).
expect_refused() {
    local desc="$1" pattern="$2"
    shift 2
    run "$@" </dev/null
    if ((RC == 0)); then
        fail "$desc (it succeeded)" "$OUT"
    elif grep -qiE "$pattern" <<<"$OUT"; then
        pass "$desc: $(grep -oiE "$pattern" <<<"$OUT" | head -n 1)"
    else
        fail "$desc (failed, but not with /$pattern/)" "$OUT"
    fi
}

# expect_output DESC PATTERN CMD...: PASS if CMD's output matches PATTERN, whatever its status.
expect_output() {
    local desc="$1" pattern="$2"
    shift 2
    run "$@" </dev/null
    if grep -qiE "$pattern" <<<"$OUT"; then pass "$desc"; else fail "$desc (no /$pattern/ in the output)" "$OUT"; fi
}

# A CA nobody trusts, and a client certificate it signed: for the "wrong CA" checks.
make_rogue_ca() {
    [[ -s "$TMP/rogue-ca.crt" ]] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=rogue CA" -days 1 \
        -keyout "$TMP/rogue-ca.key" -out "$TMP/rogue-ca.crt" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=api-rabbitmq" \
        -keyout "$TMP/rogue-client.key" -out "$TMP/rogue-client.csr" 2>/dev/null
    printf 'extendedKeyUsage = clientAuth\n' >"$TMP/rogue-ext.cnf"
    openssl x509 -req -in "$TMP/rogue-client.csr" -CA "$TMP/rogue-ca.crt" -CAkey "$TMP/rogue-ca.key" \
        -set_serial 1 -days 1 -extfile "$TMP/rogue-ext.cnf" -out "$TMP/rogue-client.crt" 2>/dev/null
}

# s_client_probe HOST:PORT ARGS...: a TLS handshake, then a few bytes (TLS 1.3 servers reject a
# missing or bad client certificate only after the handshake).
s_client_probe() {
    local addr="$1"
    shift
    { printf 'x'; sleep 1; } | timeout 10 openssl s_client -connect "$addr" -CAfile "$PIX_CA_CRT" \
        -verify_ip 127.0.0.1 -verify_return_error "$@" 2>&1
}

# ---- Kafka ----------------------------------------------------------------------

kcat_as() {
    local who="$1"
    shift
    timeout 30 kcat -F "$PIX_KAFKA_CLIENTS_DIR/$who.kcat.conf" -b "$KB" "$@"
}

kafka_tool() { timeout 90 "$HERE/kafka.sh" tool "$@"; }
kafka_admin() {
    local cls="$1"
    shift
    kafka_tool "$cls" --bootstrap-server "$KB" --command-config "$PIX_KAFKA_CLIENTS_DIR/pix-admin.properties" "$@"
}

smoke_kafka() {
    step "Kafka ($KB, controller $KC)"
    if ! "$HERE/kafka.sh" status >/dev/null 2>&1; then
        fail "kafka: the secure broker answers on $KB (start it: PIX_PROFILE=secure scripts/local/brokers.sh up)"
        return 0
    fi
    local topic="pix-smoke.$ID.pix.payment.requested" other="pix-smoke.$ID.other"

    make_rogue_ca
    expect_output "kafka: TLS certificate of $KB verifies against ca.crt for IP 127.0.0.1" \
        'Verify return code: 0 \(ok\)' s_client_probe "$KB"
    expect_refused "kafka: plaintext to $KB is refused" \
        'Disconnected while requesting ApiVersion|transport failure' timeout 30 kcat -b "$KB" -L -m 5
    {
        grep -v '^sasl.password=' "$PIX_KAFKA_CLIENTS_DIR/api-kafka.kcat.conf"
        echo "sasl.password=not-the-password"
    } >"$TMP/wrong.kcat.conf"
    expect_refused "kafka: api-kafka with a wrong password is refused" \
        'Authentication failed[^)]*SCRAM-SHA-512' timeout 30 kcat -F "$TMP/wrong.kcat.conf" -b "$KB" -L -m 5
    make_rogue_ca
    expect_refused "kafka: TLS with a CA that did not sign the broker's certificate fails" \
        'certificate verify failed|SSL handshake failed' timeout 30 kcat -F "$PIX_KAFKA_CLIENTS_DIR/pix-admin.kcat.conf" \
        -X ssl.ca.location="$TMP/rogue-ca.crt" -b "$KB" -L -m 5
    expect_output "kafka: pix-admin (super user) logs in and sees broker 1" \
        'broker 1 at 127\.0\.0\.1' kcat_as pix-admin -L -m 10
    expect_output "kafka: mutual TLS on the client listener: pix-tail with its client certificate is accepted" \
        'broker 1 at 127\.0\.0\.1' kcat_as pix-tail -X ssl.certificate.location="$PIX_TLS_CLIENTS_DIR/pix-tail.crt" \
        -X ssl.key.location="$PIX_TLS_CLIENTS_DIR/pix-tail.key" -L -m 10
    expect_refused "kafka: a client certificate from another CA is refused on the client listener" \
        'alert (certificate unknown|bad certificate|unknown ca)' kcat_as pix-tail \
        -X ssl.certificate.location="$TMP/rogue-client.crt" -X ssl.key.location="$TMP/rogue-client.key" -L -m 5

    # The controller listener: TLS with required client certificates, principal from the certificate.
    expect_output "kafka controller: a client without a certificate is refused" \
        'alert (bad certificate|certificate required)' s_client_probe "$KC"
    expect_output "kafka controller: a client certificate from another CA is refused" \
        'alert (bad certificate|unknown ca|certificate unknown|certificate required)' s_client_probe "$KC" \
        -cert "$TMP/rogue-client.crt" -key "$TMP/rogue-client.key"
    expect_output "kafka controller: $PIX_KAFKA_CONTROLLER_PRINCIPAL (its certificate) describes the quorum" \
        'LeaderId: *1' kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller "$KC" \
        --command-config "$PIX_KAFKA_CLIENTS_DIR/kafka-controller.properties" describe --status
    cat "$PIX_TLS_CLIENTS_DIR/api-kafka.key" "$PIX_TLS_CLIENTS_DIR/api-kafka.crt" >"$TMP/api-kafka.keystore.pem"
    cat >"$TMP/api-kafka-controller.properties" <<EOF
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$TMP/api-kafka.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$PIX_CA_CRT
default.api.timeout.ms=4000
request.timeout.ms=2000
retry.backoff.ms=1500
EOF
    local log="$PIX_LOGS/kafka.log" before
    before="$(wc -l <"$log")"
    run kafka_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller "$KC" \
        --command-config "$TMP/api-kafka-controller.properties" describe --status </dev/null
    if ((RC != 0)) && tail -n "+$((before + 1))" "$log" | grep -q 'principal=User:CN=api-kafka.*listenerName=ListenerName(CONTROLLER)' \
        && tail -n "+$((before + 1))" "$log" | grep -q 'ClusterAuthorizationException'; then
        pass "kafka controller: User:CN=api-kafka (a valid certificate, not the controller's) is not authorized"
    else
        fail "kafka controller: User:CN=api-kafka should get ClusterAuthorizationException (exit $RC)" "$OUT"
    fi

    # A throwaway topic pair and one ACL: User:api-kafka may Write + Describe the first topic only.
    step "creating $topic and $other, and the ACL User:api-kafka Write+Describe on $topic"
    CLEANUP+=("kafka_admin org.apache.kafka.tools.TopicCommand --delete --topic '$topic'")
    CLEANUP+=("kafka_admin org.apache.kafka.tools.TopicCommand --delete --topic '$other'")
    CLEANUP+=("kafka_admin kafka.admin.AclCommand --remove --force --topic '$topic'")
    expect_ok "kafka: pix-admin creates topic $topic" kafka_admin org.apache.kafka.tools.TopicCommand \
        --create --topic "$topic" --partitions 1 --replication-factor 1
    expect_ok "kafka: pix-admin creates topic $other" kafka_admin org.apache.kafka.tools.TopicCommand \
        --create --topic "$other" --partitions 1 --replication-factor 1
    expect_ok "kafka: pix-admin adds the ACL (kafka.admin.AclCommand)" kafka_admin kafka.admin.AclCommand \
        --add --allow-principal User:api-kafka --operation Write --operation Describe --topic "$topic"
    run kafka_admin kafka.admin.AclCommand --list --topic "$topic" </dev/null
    local acls
    acls="$(grep -oE 'principal=[^,]*, host=[^,]*, operation=[A-Z_]+, permissionType=[A-Z]+' <<<"$OUT" | sort | paste -sd';' -)"
    if [[ "$acls" == "principal=User:api-kafka, host=*, operation=DESCRIBE, permissionType=ALLOW;principal=User:api-kafka, host=*, operation=WRITE, permissionType=ALLOW" ]]; then
        pass "kafka: AclCommand --list shows exactly ALLOW WRITE and DESCRIBE for User:api-kafka on $topic"
    else
        fail "kafka: AclCommand --list should show exactly WRITE and DESCRIBE for User:api-kafka" "$OUT"
    fi

    local body="smoke-$ID"
    run kcat_as api-kafka -P -t "$topic" -X enable.idempotence=true <<<"$body"
    if ((RC == 0)); then
        pass "kafka: api-kafka produces to $topic (idempotent producer: no IdempotentWrite on the cluster needed)"
    else
        fail "kafka: api-kafka produces to $topic (exit $RC)" "$OUT"
    fi
    run kcat_as api-kafka -P -t "$other" <<<"$body"
    if ((RC != 0)) && grep -qi 'Topic authorization failed' <<<"$OUT"; then
        pass "kafka: api-kafka is refused on $other: Topic authorization failed (TOPIC_AUTHORIZATION_FAILED)"
    else
        fail "kafka: api-kafka must be refused on $other with TOPIC_AUTHORIZATION_FAILED (exit $RC)" "$OUT"
    fi
    expect_refused "kafka: api-kafka may not consume $topic (no Read)" 'Topic authorization failed' \
        kcat_as api-kafka -C -t "$topic" -o beginning -c 1 -e
    run kcat_as antifraud -P -t "$topic" <<<"$body"
    if ((RC != 0)) && grep -qi 'Topic authorization failed' <<<"$OUT"; then
        pass "kafka: antifraud (no ACLs yet) may not produce to $topic: Topic authorization failed"
    else
        fail "kafka: antifraud (no ACLs) must be refused on $topic (exit $RC)" "$OUT"
    fi
    expect_output "kafka: pix-admin reads the record api-kafka wrote" "^$body\$" \
        kcat_as pix-admin -C -t "$topic" -o beginning -c 1 -e -q
}

# ---- RabbitMQ -------------------------------------------------------------------

rmq_password() { pix_read_password "$1"; }

# amqps_url USER [VHOST]: the password goes into the URL (see Limitation above); "/" is %2F.
amqps_url() {
    local vhost="${2:-%2F}"
    printf 'amqps://%s:%s@127.0.0.1:%s/%s' "$1" "$(rmq_password "$1")" "$RMQ_TLS_PORT" "$vhost"
}

# amqp_as TOOL USER VHOST ARGS...: an amqp-tools command as USER over AMQPS, checking the broker's
# certificate against our CA (rabbitmq-c also checks the host name: DNS:127.0.0.1 in server.crt).
amqp_as() {
    local tool="$1" user="$2" vhost="$3"
    shift 3
    timeout 20 "$tool" --url "$(amqps_url "$user" "$vhost")" --cacert "$PIX_CA_CRT" "$@"
}

# mgmt_as USER METHOD PATH [JSON]: the management HTTP API over HTTPS; credentials through a
# 0600 netrc file, not the command line. Prints the body, then the HTTP status on its own line.
mgmt_as() {
    local user="$1" method="$2" path="$3" data="${4:-}"
    printf 'machine 127.0.0.1 login %s password %s\n' "$user" "$(rmq_password "$user")" >"$TMP/$user.netrc"
    local -a data_args=()
    [[ -n "$data" ]] && data_args=(-H 'content-type: application/json' --data "$data")
    curl -sS -m 10 --cacert "$PIX_CA_CRT" --netrc-file "$TMP/$user.netrc" -X "$method" "${data_args[@]}" \
        -w '\n%{http_code}\n' "$MGMT$path"
}

mgmt_status() { mgmt_as "$@" | tail -n 1; }

# direct_as USER VHOST METHOD_TUPLE: one AMQP method on a direct (in-node) connection as USER,
# through `rabbitmq.sh ctl eval` and the node's amqp_client: for what amqp-tools cannot send
# (a passive exchange.declare). The password is read by the node from USER's file.
direct_as() {
    local user="$1" vhost="$2" method="$3"
    "$HERE/rabbitmq.sh" ctl eval "
        {ok, P} = file:read_file(\"$(pix_password_file "$user")\"),
        {ok, C} = amqp_connection:start({amqp_params_direct, <<\"$user\">>, P, <<\"$vhost\">>, node(), none, []}),
        {ok, Ch} = amqp_connection:open_channel(C),
        R = (catch amqp_channel:call(Ch, $method)),
        catch amqp_connection:close(C),
        R." 2>/dev/null | grep -v 'client call timeout'
}

smoke_rabbitmq() {
    step "RabbitMQ (AMQPS 127.0.0.1:$RMQ_TLS_PORT, management $MGMT, metrics http://127.0.0.1:$RMQ_PROM_PORT)"
    if ! "$HERE/rabbitmq.sh" status >/dev/null 2>&1; then
        fail "rabbitmq: the secure node answers (start it: PIX_PROFILE=secure scripts/local/brokers.sh up)"
        return 0
    fi
    make_rogue_ca

    # TLS and listeners.
    expect_output "rabbitmq: TLS certificate of 127.0.0.1:$RMQ_TLS_PORT verifies against ca.crt for IP 127.0.0.1" \
        'Verify return code: 0 \(ok\)' s_client_probe "127.0.0.1:$RMQ_TLS_PORT"
    expect_output "rabbitmq: TLS 1.2 is accepted" 'Protocol *: TLSv1\.2' s_client_probe "127.0.0.1:$RMQ_TLS_PORT" -tls1_2
    expect_output "rabbitmq: TLS 1.3 is accepted" 'Protocol *: TLSv1\.3|New, TLSv1\.3' s_client_probe "127.0.0.1:$RMQ_TLS_PORT" -tls1_3
    expect_refused "rabbitmq: AMQPS with a CA that did not sign the broker's certificate fails" 'opening socket' \
        timeout 20 amqp-declare-queue --url "$(amqps_url api-rabbitmq)" --cacert "$TMP/rogue-ca.crt" -q pix-smoke
    expect_refused "rabbitmq: a client certificate from another CA is refused (verify_peer)" 'opening socket|logging in' \
        amqp_as amqp-publish api-rabbitmq %2F --cert "$TMP/rogue-client.crt" --key "$TMP/rogue-client.key" \
        -e pix -r pix.payment.requested -b x
    expect_refused "rabbitmq: plain AMQP to the TLS port 127.0.0.1:$RMQ_TLS_PORT fails" 'logging in|opening socket|connection closed' \
        timeout 20 amqp-declare-queue --url "amqp://api-rabbitmq:x@127.0.0.1:$RMQ_TLS_PORT/%2F" -q pix-smoke
    local listeners
    listeners="$("$HERE/rabbitmq.sh" diag -q listeners 2>&1 || true)"
    if grep -qE 'protocol: amqp,' <<<"$listeners"; then
        fail "rabbitmq: the secure node has a plain AMQP listener" "$listeners"
    elif port_open 127.0.0.1 "$RMQ_PLAIN_PORT"; then
        pass "rabbitmq: no plain AMQP listener on the secure node (127.0.0.1:$RMQ_PLAIN_PORT is open, but served by another node, e.g. the plain profile's)"
    else
        pass "rabbitmq: no plain AMQP listener on the secure node, nothing on 127.0.0.1:$RMQ_PLAIN_PORT"
    fi
    expect_refused "rabbitmq: guest cannot log in" 'ACCESS_REFUSED - Login was refused' \
        timeout 20 amqp-declare-queue --url "amqps://guest:guest@127.0.0.1:$RMQ_TLS_PORT/%2F" --cacert "$PIX_CA_CRT" -q pix-smoke
    expect_refused "rabbitmq: api-rabbitmq with a wrong password is refused" 'ACCESS_REFUSED - Login was refused' \
        timeout 20 amqp-declare-queue --url "amqps://api-rabbitmq:wrong@127.0.0.1:$RMQ_TLS_PORT/%2F" --cacert "$PIX_CA_CRT" -q pix-smoke

    # Management and metrics.
    expect_output "rabbitmq: pix-admin (administrator) lists users over HTTPS" '^200$' mgmt_status pix-admin GET /api/users
    expect_output "rabbitmq: monitoring (tag monitoring) reads /api/overview over HTTPS" '^200$' mgmt_status monitoring GET /api/overview
    expect_output "rabbitmq: monitoring may not list users" '^40[13]$' mgmt_status monitoring GET /api/users
    expect_output "rabbitmq: api-rabbitmq (no tags) may not use the management API" '^40[13]$' mgmt_status api-rabbitmq GET /api/overview
    expect_output "rabbitmq: Prometheus metrics on http://127.0.0.1:$RMQ_PROM_PORT/metrics" '^rabbitmq_' \
        curl -sS -m 10 "http://127.0.0.1:$RMQ_PROM_PORT/metrics"
    expect_refused "rabbitmq: the management API is not served over plain HTTP" 'SSL|wrong version|Empty reply|reset|refused|000' \
        curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RMQ_MGMT_PORT/api/overview"

    # Logins to vhosts.
    expect_refused "rabbitmq: monitoring (no vhost permissions) cannot open vhost /" 'access to vhost|not_allowed|NOT_ALLOWED' \
        amqp_as amqp-declare-queue monitoring %2F -q pix-smoke
    expect_refused "rabbitmq: bench has nothing on vhost /" 'access to vhost|not_allowed|NOT_ALLOWED' \
        amqp_as amqp-declare-queue bench %2F -q pix-smoke
    local bq="pix-smoke.$ID"
    expect_ok "rabbitmq: bench declares a queue in its vhost pix-bench (mutual TLS: with its client certificate)" \
        amqp_as amqp-declare-queue bench pix-bench --cert "$PIX_TLS_CLIENTS_DIR/bench.crt" \
        --key "$PIX_TLS_CLIENTS_DIR/bench.key" -q "$bq"
    CLEANUP+=("amqp_as amqp-delete-queue bench pix-bench -q '$bq'")
    expect_ok "rabbitmq: bench publishes in pix-bench" amqp_as amqp-publish bench pix-bench -r "$bq" -b "bench-$ID"
    expect_output "rabbitmq: bench consumes it back in pix-bench" "^bench-$ID\$" \
        amqp_as amqp-consume bench pix-bench -q "$bq" -c 1 cat

    # Passive declares need no permission (api-rabbitmq's readiness probe); active ones need configure.
    expect_output "rabbitmq: api-rabbitmq passive-declares an exchange it has no permission on (needs none)" \
        "exchange.declare_ok" direct_as api-rabbitmq / "{'exchange.declare', 0, <<\"amq.topic\">>, <<\"topic\">>, true, false, false, false, false, []}"
    expect_output "rabbitmq: api-rabbitmq may not declare (configure) an exchange" "403|ACCESS_REFUSED" \
        direct_as api-rabbitmq / "{'exchange.declare', 0, <<\"pix-smoke.$ID\">>, <<\"topic\">>, false, false, true, false, false, []}"
    expect_refused "rabbitmq: api-rabbitmq may not declare a queue" 'ACCESS_REFUSED.*' \
        amqp_as amqp-declare-queue api-rabbitmq %2F -q "pix-smoke.$ID"

    # The rest needs the exchange `pix` and the queue `pix.notification.sent`.
    local have_pix
    have_pix="$(mgmt_status pix-admin GET /api/exchanges/%2F/pix)"
    if [[ "$have_pix" == 200 && "$live" != 1 ]]; then
        skip "rabbitmq: exchange pix exists (the real topology): publish/consume checks skipped; --use-live-topology runs them anyway"
        return 0
    fi
    if [[ "$have_pix" != 200 ]]; then
        step "declaring a stand-in topology as pix-admin (management API): exchange pix, queue pix.notification.sent"
        CLEANUP+=("mgmt_as pix-admin DELETE /api/exchanges/%2F/pix")
        expect_output "rabbitmq: pix-admin declares exchange pix (topic, durable, alternate-exchange pix.unrouted)" '^20[14]$' \
            mgmt_status pix-admin PUT /api/exchanges/%2F/pix \
            '{"type":"topic","durable":true,"auto_delete":false,"internal":false,"arguments":{"alternate-exchange":"pix.unrouted"}}'
        if [[ "$(mgmt_status pix-admin GET /api/queues/%2F/pix.notification.sent)" != 200 ]]; then
            CLEANUP+=("mgmt_as pix-admin DELETE /api/queues/%2F/pix.notification.sent")
            expect_output "rabbitmq: pix-admin declares quorum queue pix.notification.sent" '^20[14]$' \
                mgmt_status pix-admin PUT /api/queues/%2F/pix.notification.sent \
                '{"durable":true,"auto_delete":false,"arguments":{"x-queue-type":"quorum","x-dead-letter-exchange":"pix.dlx","x-dead-letter-strategy":"at-least-once","x-overflow":"reject-publish","x-max-length":1000000}}'
            expect_output "rabbitmq: pix-admin binds it to pix with key pix.notification.sent" '^201$' \
                mgmt_status pix-admin POST /api/bindings/%2F/e/pix/q/pix.notification.sent '{"routing_key":"pix.notification.sent"}'
        fi
    fi

    expect_output "rabbitmq: api-rabbitmq passive-declares exchange pix (its readiness probe)" \
        "exchange.declare_ok" direct_as api-rabbitmq / "{'exchange.declare', 0, <<\"pix\">>, <<\"topic\">>, true, false, false, false, false, []}"

    # pix-tail: an exclusive server-named queue bound to pix with the five keys, consumed.
    local tail_out="$TMP/pix-tail.out"
    amqp_as amqp-consume pix-tail %2F -x -e pix -r "$PIX_KEYS" -c 1 cat >"$tail_out" 2>"$TMP/pix-tail.err" &
    local tail_pid=$!
    CLEANUP+=("kill $tail_pid 2>/dev/null || true")
    if wait_until "pix-tail's consumer on an amq.gen- queue" 20 --pid "$tail_pid" tail_consuming >/dev/null; then
        pass "rabbitmq: pix-tail declares an exclusive amq.gen- queue, binds the five keys and consumes it"
    else
        fail "rabbitmq: pix-tail declares, binds and consumes its own queue" "$(cat "$TMP/pix-tail.err")"
    fi

    local body="smoke-$ID"
    expect_ok "rabbitmq: api-rabbitmq publishes to pix with key pix.payment.requested" \
        amqp_as amqp-publish api-rabbitmq %2F -e pix -r pix.payment.requested -b "$body"
    if wait_until "pix-tail to receive the message" 15 proc_gone "$tail_pid" >/dev/null && grep -qx "$body" "$tail_out"; then
        pass "rabbitmq: pix-tail received it on its own queue"
    else
        fail "rabbitmq: pix-tail should have received '$body'" "$(cat "$tail_out" "$TMP/pix-tail.err" 2>/dev/null)"
    fi
    expect_refused "rabbitmq: api-rabbitmq may not publish with routing key evil.key" 'ACCESS_REFUSED.*' \
        amqp_as amqp-publish api-rabbitmq %2F -e pix -r evil.key -b x
    expect_refused "rabbitmq: api-rabbitmq may not publish to the default exchange" 'ACCESS_REFUSED.*' \
        amqp_as amqp-publish api-rabbitmq %2F -r pix.notification.sent -b x
    expect_refused "rabbitmq: api-rabbitmq may not consume pix.notification.sent" 'ACCESS_REFUSED.*' \
        amqp_as amqp-consume api-rabbitmq %2F -q pix.notification.sent -c 1 cat

    expect_ok "rabbitmq: notifier publishes to pix with key pix.notification.sent" \
        amqp_as amqp-publish notifier %2F -e pix -r pix.notification.sent -b "note-$ID"
    expect_refused "rabbitmq: notifier may not publish with key pix.payment.settled" 'ACCESS_REFUSED.*' \
        amqp_as amqp-publish notifier %2F -e pix -r pix.payment.settled -b x

    expect_output "rabbitmq: auditor consumes (and acks) the notification from pix.notification.sent" "^note-$ID\$" \
        amqp_as amqp-consume auditor %2F -q pix.notification.sent -c 1 cat
    expect_refused "rabbitmq: auditor may not publish" 'ACCESS_REFUSED.*' \
        amqp_as amqp-publish auditor %2F -e pix -r pix.audit.log -b x
    expect_refused "rabbitmq: auditor may not consume another queue" 'ACCESS_REFUSED.*' \
        amqp_as amqp-consume auditor %2F -q pix.payment.requested -c 1 cat
    expect_refused "rabbitmq: auditor may not declare a queue" 'ACCESS_REFUSED.*' \
        amqp_as amqp-declare-queue auditor %2F -q "pix-smoke.$ID"

    expect_refused "rabbitmq: pix-tail may not bind with key evil.key" 'ACCESS_REFUSED.*' \
        amqp_as amqp-consume pix-tail %2F -x -e pix -r evil.key -c 1 cat
    expect_refused "rabbitmq: pix-tail may not publish" 'ACCESS_REFUSED.*' \
        amqp_as amqp-publish pix-tail %2F -e pix -r pix.payment.requested -b x
    expect_refused "rabbitmq: pix-tail may not consume pix.notification.sent" 'ACCESS_REFUSED.*' \
        amqp_as amqp-consume pix-tail %2F -q pix.notification.sent -c 1 cat
}

# pix-tail consumes from a server-named queue (seen through the management API).
tail_consuming() {
    mgmt_as pix-admin GET /api/consumers/%2F | sed '$d' \
        | jq -e '[.[] | select(.queue.name | startswith("amq.gen-")) | select(.channel_details.user == "pix-tail")] | length > 0' >/dev/null
}

# ---- main -------------------------------------------------------------------------

t0="$(now_us)"
case "$what" in
    all) smoke_kafka; smoke_rabbitmq ;;
    kafka) smoke_kafka ;;
    rabbitmq) smoke_rabbitmq ;;
esac
step "cleaning up"
cleanup
trap - EXIT
echo
if ((failures > 0)); then
    printf 'secure smoke: %d passed, %d FAILED, %d skipped (%ss)\n' "$passes" "$failures" "$skips" "$(elapsed_since "$t0")"
    exit 1
fi
printf 'secure smoke: all %d checks passed, %d skipped (%ss)\n' "$passes" "$skips" "$(elapsed_since "$t0")"
