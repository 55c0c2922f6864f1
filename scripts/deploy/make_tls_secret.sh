#!/usr/bin/env bash
# Creates (or updates) the TLS Secret pix-local-tls that the Ingresses of k8s/ingress/ serve for
# https://pix.local: a self-signed certificate made with openssl, stored with
# `kubectl create secret tls` in each API namespace (an Ingress reads Secrets of its own namespace).
# Safe to run again: the certificate is reused while it is valid for more than 30 days, and the
# Secrets are applied, not created (no "already exists" error).
#
#   scripts/deploy/make_tls_secret.sh               create/renew the certificate, apply the Secrets
#   scripts/deploy/make_tls_secret.sh --print       print the Secrets' YAML, touch no cluster
#   scripts/deploy/make_tls_secret.sh --renew       make a new certificate even if the old one is valid
#
# Env: PIX_TLS_HOST (pix.local), PIX_TLS_DAYS (825), PIX_TLS_NAMESPACES ("api-kafka api-rabbitmq"),
#      PIX_TLS_SECRET (pix-local-tls), PIX_TLS_DIR ($PIX_STATE/tls: the key and certificate).
# Needs openssl and kubectl (with a current context, e.g. minikube's, unless --print).
# Browsers and curl will not trust the certificate: use curl -k, or trust $PIX_TLS_DIR/pix.local.crt.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

print_only=0
renew=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --print) print_only=1 ;;
        --renew) renew=1 ;;
        -h | --help)
            pix_usage "$0"
            exit 0
            ;;
        *) die "unknown argument '$1' (--print, --renew, --help)" ;;
    esac
    shift
done

host="${PIX_TLS_HOST:-pix.local}"
days="${PIX_TLS_DAYS:-825}"
secret="${PIX_TLS_SECRET:-pix-local-tls}"
read -r -a namespaces <<<"${PIX_TLS_NAMESPACES:-api-kafka api-rabbitmq}"
dir="${PIX_TLS_DIR:-$PIX_STATE/tls}"
crt="$dir/$host.crt"
key="$dir/$host.key"

[[ "$days" =~ ^[0-9]+$ ]] || die "PIX_TLS_DAYS='$days' is not a number of days"
((${#namespaces[@]} > 0)) || die "PIX_TLS_NAMESPACES is empty"
command -v openssl >/dev/null 2>&1 || die "openssl not found (apt-get install openssl)"
command -v kubectl >/dev/null 2>&1 || die "kubectl not found"

mkdir -p "$dir"
chmod 700 "$dir"

# Reuse a certificate for this host that stays valid for 30 more days.
if ((renew == 0)) && [[ -s "$crt" && -s "$key" ]] \
    && openssl x509 -in "$crt" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 \
    && openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | grep -q "DNS:$host\b"; then
    ok "reusing $crt (valid until $(openssl x509 -in "$crt" -noout -enddate | cut -d= -f2))" >&2
else
    step "self-signed certificate for $host, $days days: $crt" >&2
    (
        umask 077
        openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days "$days" \
            -subj "/CN=$host/O=pix-pubsub dev" \
            -addext "subjectAltName=DNS:$host" \
            -addext "keyUsage=digitalSignature,keyEncipherment" \
            -addext "extendedKeyUsage=serverAuth" \
            -keyout "$key.tmp" -out "$crt.tmp" 2>/dev/null
    ) || die "openssl could not create the certificate"
    mv -f "$key.tmp" "$key"
    mv -f "$crt.tmp" "$crt"
fi

# The manifest `kubectl create secret tls` would create (client-side only), for each namespace.
manifest() {
    kubectl create secret tls "$secret" --namespace "$1" --cert "$crt" --key "$key" \
        --dry-run=client --output yaml
}

if ((print_only)); then
    first=1
    for ns in "${namespaces[@]}"; do
        ((first)) || echo "---"
        first=0
        manifest "$ns"
    done
    exit 0
fi

for ns in "${namespaces[@]}"; do
    kubectl get namespace "$ns" >/dev/null 2>&1 \
        || die "namespace $ns does not exist: kubectl apply -f k8s/namespaces.yaml first"
    step "Secret $ns/$secret" >&2
    manifest "$ns" | kubectl apply -f - >/dev/null || die "kubectl apply of Secret $ns/$secret failed"
    ok "Secret $ns/$secret applied"
done
echo "add pix.local to /etc/hosts:  echo \"\$(minikube ip) $host\" | sudo tee -a /etc/hosts"
