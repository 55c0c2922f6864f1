#!/usr/bin/env bash
# Starts Kafka in the pix-kafka image with the Prometheus JMX exporter javaagent in the broker's
# KAFKA_OPTS (only the broker loads it: every CLI tool in the container reads KAFKA_OPTS too).
#
# Two ways, chosen by PIX_KAFKA_SCRAM_USERS:
#   unset  the official image's launcher, /etc/kafka/docker/run: KAFKA_* variables -> server.properties,
#          storage formatted on the first start. `docker run pix-kafka:3.9.1` (plaintext, no
#          authentication) and any setup of the upstream image keep working unchanged.
#   set    the secured broker of docker-compose.yaml and k8s/ (SASL_SSL + SCRAM-SHA-512 with PEM
#          keystores, docs/security-deploy.md):
#          1. /opt/kafka/config/server.properties from the KAFKA_* variables with the image's own
#             mapping (KafkaDockerWrapper: KAFKA_ dropped, lower case, "_" -> ".", "___" -> "-",
#             "__" -> "_"; the same variables are left out). The image's configure step is not run:
#             for any SSL listener it insists on JKS keystores with password files in
#             /etc/kafka/secrets, and Kafka refuses a keystore password with PEM keystores.
#          2. storage formatted with one SCRAM-SHA-512 credential per user of PIX_KAFKA_SCRAM_USERS
#             (kafka-storage.sh format --add-scram), each password read from PIX_KAFKA_SCRAM_DIR/<user>,
#             so the broker (kafka-broker) and pix-admin can log in on the very first start. An
#             already formatted storage is left as it is (--ignore-formatted): a user added later is
#             created with kafka-configs.sh as pix-admin (docs/security-deploy.md).
#          3. /opt/kafka/config/pix-client.properties for Kafka's CLI tools inside the container (the
#             healthcheck): SASL_SSL as PIX_KAFKA_CLIENT_USER (default kafka-broker), its password read
#             by DirectoryConfigProvider from PIX_KAFKA_SCRAM_DIR (never written out), the truststore
#             of the broker (KAFKA_SSL_TRUSTSTORE_LOCATION, PEM).
#          4. exec kafka-server-start.sh.
#
# Env: PIX_JMX_EXPORTER (on|off, default on), PIX_JMX_EXPORTER_PORT (9404),
#      PIX_JMX_EXPORTER_CONFIG (/etc/kafka/jmx-exporter/kafka.yaml, mounted from
#      monitoring/kafka/jmx-exporter.yaml), PIX_KAFKA_SCRAM_USERS (space-separated),
#      PIX_KAFKA_SCRAM_DIR (/run/secrets/kafka-scram), PIX_KAFKA_CLIENT_USER (kafka-broker), CLUSTER_ID
#      (required when secured). Arguments are passed on to /etc/kafka/docker/run (first way only).
set -euo pipefail

agent=/opt/jmx-exporter/jmx_prometheus_javaagent.jar
port="${PIX_JMX_EXPORTER_PORT:-9404}"
config="${PIX_JMX_EXPORTER_CONFIG:-/etc/kafka/jmx-exporter/kafka.yaml}"
props=/opt/kafka/config/server.properties
client_props=/opt/kafka/config/pix-client.properties

die() {
    echo "pix-kafka: $*" >&2
    exit 64
}

agent_opts=""
case "${PIX_JMX_EXPORTER:-on}" in
    off | false | 0)
        echo "pix-kafka: JMX exporter disabled (PIX_JMX_EXPORTER=${PIX_JMX_EXPORTER})"
        ;;
    *)
        [[ -r "$config" ]] || die "JMX exporter rules $config not found: mount monitoring/kafka/jmx-exporter.yaml there (or set PIX_JMX_EXPORTER=off)"
        [[ "$port" =~ ^[0-9]+$ ]] || die "PIX_JMX_EXPORTER_PORT='$port' is not a port number"
        agent_opts="-javaagent:${agent}=${port}:${config}"
        echo "pix-kafka: JMX exporter on :${port}/metrics with rules ${config}"
        ;;
esac

with_agent() {
    if [[ -n "$agent_opts" ]]; then
        export KAFKA_OPTS="${agent_opts}${KAFKA_OPTS:+ $KAFKA_OPTS}"
    fi
}

if [[ -z "${PIX_KAFKA_SCRAM_USERS:-}" ]]; then
    with_agent
    exec /etc/kafka/docker/run "$@"
fi

# ---- the secured broker -------------------------------------------------------------------------

scram_dir="${PIX_KAFKA_SCRAM_DIR:-/run/secrets/kafka-scram}"
client_user="${PIX_KAFKA_CLIENT_USER:-kafka-broker}"
[[ -n "${CLUSTER_ID:-}" ]] || die "CLUSTER_ID is not set"
[[ -w /opt/kafka/config ]] || die "/opt/kafka/config is not writable"

# KAFKA_* -> server.properties, as the image's KafkaDockerWrapper maps them.
render_properties() {
    local name key
    echo "# Written by pix-kafka-run from the container's KAFKA_* variables; rewritten at every start."
    while IFS= read -r name; do
        case "$name" in
            KAFKA_VERSION | KAFKA_HEAP_OPTS | KAFKA_LOG4J_OPTS | KAFKA_OPTS | KAFKA_JMX_OPTS | \
                KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_LOG4J_ROOT_LOGLEVEL | KAFKA_LOG4J_LOGGERS | \
                KAFKA_TOOLS_LOG4J_LOGLEVEL | KAFKA_JMX_HOSTNAME) continue ;;
        esac
        key="${name#KAFKA_}"
        key="${key,,}"
        key="${key//_/.}"
        key="${key//.../-}"
        key="${key//../_}"
        printf '%s=%s\n' "$key" "${!name}"
    done < <(compgen -e | grep '^KAFKA_' | LC_ALL=C sort)
}

render_properties >"$props.tmp"
mv -f "$props.tmp" "$props"
echo "pix-kafka: wrote $props ($(grep -vc '^#' "$props") properties)"

# One --add-scram per user; a password goes into the format command line only (StorageTool has no
# file option), so it must be a plain token.
scram=()
for user in $PIX_KAFKA_SCRAM_USERS; do
    f="$scram_dir/$user"
    [[ -r "$f" ]] || die "no password file $f for SCRAM user $user (mount it, or drop $user from PIX_KAFKA_SCRAM_USERS)"
    pw="$(<"$f")"
    [[ "$pw" =~ ^[A-Za-z0-9._~-]+$ ]] || die "$f: a password must be one line of [A-Za-z0-9._~-]"
    scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$pw]")
done
echo "pix-kafka: formatting the storage unless it is already (SCRAM-SHA-512 users: $PIX_KAFKA_SCRAM_USERS)"
if ! out="$(/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$CLUSTER_ID" -c "$props" \
    "${scram[@]}" 2>&1)"; then
    # The command line held the passwords: print the tool's own lines only.
    printf '%s\n' "$out" | grep -v 'password=' >&2
    die "kafka-storage.sh format failed"
fi
printf '%s\n' "$out" | grep -v 'password=' | sed 's/^/pix-kafka:   /'
unset pw scram

truststore="${KAFKA_SSL_TRUSTSTORE_LOCATION:-}"
[[ -n "$truststore" ]] || die "KAFKA_SSL_TRUSTSTORE_LOCATION is not set (the CA, PEM)"
cat >"$client_props" <<EOF
# Kafka CLI tools inside this container (the healthcheck): --command-config $client_props
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
config.providers=dir
config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$client_user" password="\${dir:$scram_dir:$client_user}";
ssl.truststore.type=PEM
ssl.truststore.location=$truststore
EOF

with_agent
exec /opt/kafka/bin/kafka-server-start.sh "$props"
