#!/usr/bin/env bash
# Local development PKI of the secure broker profile, made with OpenSSL under $PIX_STATE/tls
# (directories 0700, private keys 0600; EC P-256 keys in unencrypted PKCS#8 PEM, which
# OpenSSL-based clients, Erlang and Kafka's PEM keystores all read).
#
#   scripts/local/tls.sh ensure [--san NAME ...]   make what is missing or due (idempotent)
#   scripts/local/tls.sh rotate [--san NAME ...]   re-issue the server and every client certificate (same CA)
#   scripts/local/tls.sh show                      subject, SANs, expiry and fingerprint of each certificate
#
# What `ensure` keeps valid (a certificate is re-issued, with a new key, when it is missing,
# expires within PIX_TLS_RENEW_DAYS, has other SANs than wanted, is not signed by the current
# CA or does not match its key; a new CA re-issues everything):
#   ca.crt, ca.key                 the local development CA (CN=pix-pubsub local development CA)
#   server.crt, server.key         the brokers' certificate: SANs IP:127.0.0.1, DNS:localhost,
#                                  DNS:127.0.0.1 (for rabbitmq-c 0.11, see BASE_SANS) + --san
#   clients/<name>.crt, .key       one per principal (CN=<name>) for mutual TLS: api-kafka,
#                                  api-rabbitmq, antifraud, settlement, notifier, auditor, pix-admin,
#                                  pix-tail, bench, kafka-controller (the KRaft controller listener's
#                                  identity; it is also a server certificate with the same SANs)
#   kafka/server.keystore.pem      Kafka PEM keystores (key + certificate + CA) of the client
#   kafka/controller.keystore.pem  listener and of the controller listener
# --san NAME (repeatable): extra SAN of the server certificate, `DNS:x`, `IP:x`, or a bare name
# or IPv4 address; remembered in server.sans (a later `ensure` without --san keeps them;
# `--san none` drops them).
#
# Env: PIX_PROFILE (secure, the default here; brokers.sh, kafka.sh and rabbitmq.sh run it for secure),
#      PIX_STATE (<repo>/.local/secure when PIX_PROFILE=secure), PIX_TLS_DAYS (825: server and
#      clients), PIX_TLS_CA_DAYS (3650), PIX_TLS_RENEW_DAYS (30).
set -euo pipefail

# Part of the secure profile: that is the default here.
export PIX_PROFILE="${PIX_PROFILE:-secure}"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/secure.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/secure.sh"
[[ "$PIX_PROFILE" == secure ]] || die "tls.sh belongs to the secure profile (PIX_PROFILE=secure), not '$PIX_PROFILE'"

TLS_DAYS="${PIX_TLS_DAYS:-825}"
CA_DAYS="${PIX_TLS_CA_DAYS:-3650}"
RENEW_DAYS="${PIX_TLS_RENEW_DAYS:-30}"
CA_CN="pix-pubsub local development CA"
SERVER_CN="pix-broker"
SANS_FILE="$PIX_TLS_DIR/server.sans"
# DNS:127.0.0.1 on top of IP:127.0.0.1: rabbitmq-c 0.11 (Debian's librabbitmq, amqp-tools, the
# C++ services) checks the host name against DNS-type SANs only, so `amqps://...@127.0.0.1` needs
# it; OpenSSL's, Java's and Erlang's checks use the IP SAN and ignore it.
BASE_SANS=(IP:127.0.0.1 DNS:localhost DNS:127.0.0.1)
# The controller listener's certificate is checked by Kafka's Java clients only.
CONTROLLER_SANS=(IP:127.0.0.1 DNS:localhost)

usage() { pix_usage "${BASH_SOURCE[0]}"; }

# Everything this script writes is private to the user.
umask 077

command -v openssl >/dev/null 2>&1 || die "openssl not found: run scripts/local/deps.sh"

# ---- helpers ----------------------------------------------------------------

# normalize_san NAME: DNS:x / IP:x as given, a bare IPv4 address as IP:, anything else as DNS:.
normalize_san() {
    local s="$1"
    case "$s" in
        DNS:?* | IP:?*) printf '%s\n' "$s" ;;
        *:*) die "--san $s: use DNS:name, IP:address, or a bare name" ;;
        *)
            if [[ "$s" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
                printf 'IP:%s\n' "$s"
            elif [[ "$s" =~ ^[A-Za-z0-9*]([A-Za-z0-9.*-]*[A-Za-z0-9])?$ ]]; then
                printf 'DNS:%s\n' "$s"
            else
                die "--san $s: not a host name or IPv4 address"
            fi
            ;;
    esac
}

# The SANs a certificate carries, one per line as DNS:x / IP:x, sorted.
cert_sans() {
    openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null \
        | sed -n '2,$p' | tr ',' '\n' | sed 's/^[[:space:]]*//; s/^IP Address:/IP:/' | sed '/^$/d' | sort
}

# wanted_sans_sorted SAN...: the same form as cert_sans.
sorted_lines() { printf '%s\n' "$@" | sed '/^$/d' | sort -u; }

cert_not_after() { openssl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//'; }

# why_reissue CRT KEY CA_CHECK [SAN...]: prints why CRT must be (re)issued, nothing if it is fine.
why_reissue() {
    local crt="$1" key="$2" check_ca="$3"
    shift 3
    if [[ ! -s "$crt" || ! -s "$key" ]]; then
        echo "missing"
        return 0
    fi
    if ! openssl x509 -in "$crt" -noout -checkend "$((RENEW_DAYS * 86400))" >/dev/null 2>&1; then
        echo "expires within ${RENEW_DAYS} days ($(cert_not_after "$crt"))"
        return 0
    fi
    if [[ "$(openssl x509 -in "$crt" -noout -pubkey 2>/dev/null)" != "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]]; then
        echo "does not match its key"
        return 0
    fi
    if [[ "$check_ca" == 1 ]] && ! openssl verify -CAfile "$PIX_CA_CRT" "$crt" >/dev/null 2>&1; then
        echo "not signed by the current CA"
        return 0
    fi
    if [[ $# -gt 0 ]]; then
        local have want
        have="$(cert_sans "$crt" | paste -sd, -)"
        want="$(sorted_lines "$@" | paste -sd, -)"
        if [[ "$have" != "$want" ]]; then
            echo "SANs changed (has ${have:-none}, wants $want)"
            return 0
        fi
    fi
}

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() {
    local tmp
    tmp="$(mktemp -d "$PIX_TLS_DIR/.ca.XXXXXX")"
    cat >"$tmp/ca.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = $CA_CN
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    new_key "$tmp/ca.key"
    openssl req -x509 -new -config "$tmp/ca.cnf" -key "$tmp/ca.key" -sha256 -days "$CA_DAYS" \
        -set_serial "0x$(openssl rand -hex 16)" -out "$tmp/ca.crt"
    chmod 600 "$tmp/ca.key"
    chmod 644 "$tmp/ca.crt"
    mv -f "$tmp/ca.key" "$PIX_CA_KEY"
    mv -f "$tmp/ca.crt" "$PIX_CA_CRT"
    rm -rf "$tmp"
}

# issue CN KEY CRT EKU [SAN...]: new key and certificate signed by the CA.
issue() {
    local cn="$1" key="$2" crt="$3" eku="$4"
    shift 4
    local tmp san=""
    tmp="$(mktemp -d "$PIX_TLS_DIR/.issue.XXXXXX")"
    if [[ $# -gt 0 ]]; then
        san="subjectAltName = $(sorted_lines "$@" | paste -sd, -)"
    fi
    printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = %s\n' "$cn" >"$tmp/req.cnf"
    cat >"$tmp/ext.cnf" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $eku
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
$san
EOF
    new_key "$tmp/key.pem"
    openssl req -new -config "$tmp/req.cnf" -key "$tmp/key.pem" -out "$tmp/csr.pem"
    openssl x509 -req -in "$tmp/csr.pem" -CA "$PIX_CA_CRT" -CAkey "$PIX_CA_KEY" -sha256 -days "$TLS_DAYS" \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$tmp/ext.cnf" -out "$tmp/crt.pem" 2>/dev/null
    chmod 600 "$tmp/key.pem"
    chmod 644 "$tmp/crt.pem"
    mv -f "$tmp/key.pem" "$key"
    mv -f "$tmp/crt.pem" "$crt"
    rm -rf "$tmp"
}

# write_if_changed FILE: stdin -> FILE (0600), only touching FILE when content differs.
write_if_changed() {
    local f="$1" tmp
    tmp="$(mktemp "$f.XXXXXX")"
    cat >"$tmp"
    if [[ -f "$f" ]] && cmp -s "$tmp" "$f"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$f"
    return 0
}

# The extra SANs: --san arguments if any (remembered), else the remembered ones.
EXTRA_SANS=()
load_extra_sans() {
    local -a given=("$@")
    if [[ ${#given[@]} -gt 0 ]]; then
        if [[ "${given[*]}" == none ]]; then
            EXTRA_SANS=()
        else
            local s
            for s in "${given[@]}"; do
                EXTRA_SANS+=("$(normalize_san "$s")")
            done
        fi
        if [[ ${#EXTRA_SANS[@]} -gt 0 ]]; then
            sorted_lines "${EXTRA_SANS[@]}" >"$SANS_FILE"
        else
            : >"$SANS_FILE"
        fi
    elif [[ -s "$SANS_FILE" ]]; then
        mapfile -t EXTRA_SANS <"$SANS_FILE"
    fi
}

lock_tls_dir() {
    mkdir -p "$PIX_TLS_DIR" "$PIX_TLS_CLIENTS_DIR" "$PIX_TLS_DIR/kafka"
    chmod 700 "$PIX_TLS_DIR" "$PIX_TLS_CLIENTS_DIR" "$PIX_TLS_DIR/kafka"
    # brokers.sh, kafka.sh and rabbitmq.sh may all call `ensure` at once: one at a time.
    exec 9>"$PIX_TLS_DIR/.lock"
    flock -w 120 9 || die "another tls.sh holds $PIX_TLS_DIR/.lock for over 120 s"
}

# ---- commands ---------------------------------------------------------------

# ensure FORCE_LEAVES [--san ...]
cmd_ensure() {
    local force="$1"
    shift
    local -a sans_args=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --san) [[ $# -ge 2 ]] || die "--san needs a value"; sans_args+=("$2"); shift 2 ;;
            --san=*) sans_args+=("${1#--san=}"); shift ;;
            *) die "unknown argument '$1' (usage: $0 ensure|rotate [--san NAME ...])" ;;
        esac
    done
    lock_tls_dir
    load_extra_sans "${sans_args[@]}"
    local -a server_sans=("${BASE_SANS[@]}" "${EXTRA_SANS[@]}")
    local made=0 why name

    # The CA: its own expiry only (it signs itself). A new CA invalidates every leaf below.
    why="$(why_reissue "$PIX_CA_CRT" "$PIX_CA_KEY" 0)"
    if [[ -n "$why" ]]; then
        step "making the local development CA ($why): $PIX_CA_CRT"
        make_ca
        echo "    made ca.crt: CN=$CA_CN, valid until $(cert_not_after "$PIX_CA_CRT")"
        made=$((made + 1))
    fi

    why="$(why_reissue "$PIX_SERVER_CRT" "$PIX_SERVER_KEY" 1 "${server_sans[@]}")"
    if [[ "$force" == 1 ]]; then why="rotation${why:+, and $why}"; fi
    if [[ -n "$why" ]]; then
        step "issuing the server certificate ($why)"
        issue "$SERVER_CN" "$PIX_SERVER_KEY" "$PIX_SERVER_CRT" "serverAuth, clientAuth" "${server_sans[@]}"
        echo "    made server.crt: CN=$SERVER_CN, SANs $(cert_sans "$PIX_SERVER_CRT" | paste -sd' ' -), valid until $(cert_not_after "$PIX_SERVER_CRT")"
        made=$((made + 1))
    fi

    local -a reissued=()
    for name in "${PIX_TLS_CLIENT_NAMES[@]}"; do
        local crt="$PIX_TLS_CLIENTS_DIR/$name.crt" key="$PIX_TLS_CLIENTS_DIR/$name.key"
        local -a sans=()
        local eku="clientAuth"
        if [[ "$name" == kafka-controller ]]; then
            # The controller listener presents this certificate as a server too (the broker
            # connects to its controller on 127.0.0.1 and checks the name).
            sans=("${CONTROLLER_SANS[@]}")
            eku="serverAuth, clientAuth"
        fi
        why="$(why_reissue "$crt" "$key" 1 "${sans[@]}")"
        if [[ "$force" == 1 ]]; then why="rotation"; fi
        if [[ -n "$why" ]]; then
            issue "$name" "$key" "$crt" "$eku" "${sans[@]}"
            reissued+=("$name ($why)")
            made=$((made + 1))
        fi
    done
    if [[ ${#reissued[@]} -gt 0 ]]; then
        step "issued ${#reissued[@]} client certificate(s) in $PIX_TLS_CLIENTS_DIR"
        printf '    made %s\n' "${reissued[@]}"
    fi

    # Kafka's PEM keystores: private key, its certificate, then the CA.
    local -a ks_made=()
    if cat "$PIX_SERVER_KEY" "$PIX_SERVER_CRT" "$PIX_CA_CRT" | write_if_changed "$PIX_KAFKA_SERVER_KEYSTORE"; then
        ks_made+=("$PIX_KAFKA_SERVER_KEYSTORE")
    fi
    if cat "$PIX_TLS_CLIENTS_DIR/kafka-controller.key" "$PIX_TLS_CLIENTS_DIR/kafka-controller.crt" "$PIX_CA_CRT" \
        | write_if_changed "$PIX_KAFKA_CONTROLLER_KEYSTORE"; then
        ks_made+=("$PIX_KAFKA_CONTROLLER_KEYSTORE")
    fi
    if [[ ${#ks_made[@]} -gt 0 ]]; then
        printf '    made %s\n' "${ks_made[@]}"
    fi

    if ((made == 0)); then
        ok "TLS material up to date in $PIX_TLS_DIR (server until $(cert_not_after "$PIX_SERVER_CRT"), SANs $(cert_sans "$PIX_SERVER_CRT" | paste -sd' ' -), ${#PIX_TLS_CLIENT_NAMES[@]} client certificates)"
    else
        ok "TLS material in $PIX_TLS_DIR: $made certificate(s) made"
        note_running_brokers
    fi
}

# Brokers read their certificates when they start; say so when they run with older ones.
note_running_brokers() {
    local f
    for f in "$PIX_STATE/kafka/kafka.pid" "$PIX_STATE/rabbitmq/rabbitmq.pid"; do
        local pid
        pid="$(pid_from_file "$f")"
        if [[ -n "$pid" ]] && pid_alive "$pid"; then
            warn "a secure broker is running (pid $pid) with the previous certificates: restart it to serve the new ones"
            warn "  (PIX_PROFILE=secure scripts/local/brokers.sh down && PIX_PROFILE=secure scripts/local/brokers.sh up)"
            return 0
        fi
    done
}

show_one() {
    local label="$1" crt="$2"
    if [[ ! -s "$crt" ]]; then
        printf '%-28s missing (%s)\n' "$label" "$crt"
        return 0
    fi
    local subject sans fp
    subject="$(openssl x509 -in "$crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
    sans="$(cert_sans "$crt" | paste -sd' ' -)"
    fp="$(openssl x509 -in "$crt" -noout -fingerprint -sha256 | sed 's/^.*=//' | tr -d ':' | cut -c1-16)"
    printf '%-28s %-40s until %s  SANs %s  sha256 %s\n' "$label" "$subject" "$(cert_not_after "$crt")" "${sans:-none}" "$fp"
}

cmd_show() {
    [[ -s "$PIX_CA_CRT" ]] || die "no CA in $PIX_TLS_DIR yet: run $0 ensure"
    echo "TLS material in $PIX_TLS_DIR (keys: *.key, mode 0600)"
    show_one "ca.crt" "$PIX_CA_CRT"
    show_one "server.crt" "$PIX_SERVER_CRT"
    local name
    for name in "${PIX_TLS_CLIENT_NAMES[@]}"; do
        show_one "clients/$name.crt" "$PIX_TLS_CLIENTS_DIR/$name.crt"
    done
    if [[ -s "$SANS_FILE" ]]; then
        echo "extra server SANs (server.sans): $(paste -sd' ' "$SANS_FILE")"
    fi
}

case "${1:-}" in
    ensure) shift; cmd_ensure 0 "$@" ;;
    rotate) shift; cmd_ensure 1 "$@" ;;
    show) cmd_show ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
