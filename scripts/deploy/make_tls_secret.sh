#!/usr/bin/env bash
# Applies the TLS Secrets (type kubernetes.io/tls) of k8s/ to the current cluster: pix-local-tls
# (the Ingresses' https://pix.local, in api-kafka and api-rabbitmq), api-kafka-tls and
# api-rabbitmq-tls (the APIs' own certificates: the ingress re-encrypts to them) and rabbitmq-tls.
# All are DEVELOPMENT VALUES signed by the development CA of scripts/deploy/dev_secrets.sh, which
# makes them first (idempotent: certificates are reused until 30 days before they expire).
# `kubectl apply -f "$(scripts/deploy/dev_secrets.sh k8s)"` applies these and every other Secret.
#
#   scripts/deploy/make_tls_secret.sh               ensure the certificates, apply the TLS Secrets
#   scripts/deploy/make_tls_secret.sh --print       print the Secrets' YAML, touch no cluster
#   scripts/deploy/make_tls_secret.sh --renew       re-issue the certificates first (same CA)
#
# Env: PIX_SECRETS_DIR (.local/dev-secrets). Needs openssl, python3 and, unless --print, kubectl
# with a current context (e.g. minikube's) and k8s/namespaces.yaml applied.
# Clients trust the certificates with the CA: curl --cacert .local/dev-secrets/ca/ca.crt https://pix.local/...
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

print_only=0
renew=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --print) print_only=1 ;;
        --renew) renew=(--renew-certs) ;;
        -h | --help)
            pix_usage "$0"
            exit 0
            ;;
        *) die "unknown argument '$1' (--print, --renew, --help)" ;;
    esac
    shift
done

root="$(pix_root)"
dir="${PIX_SECRETS_DIR:-$root/.local/dev-secrets}"
# The kubernetes.io/tls documents of k8s/dev-secrets.yaml (made first if need be).
tls_yaml="$("$root/scripts/deploy/dev_secrets.sh" k8s --type kubernetes.io/tls ${renew[@]+"${renew[@]}"})" ||
    die "dev_secrets.sh could not make the certificates"
[[ -n "$tls_yaml" ]] || die "$dir/k8s/dev-secrets.yaml has no kubernetes.io/tls Secret"

if ((print_only)); then
    printf '%s\n' "$tls_yaml"
    exit 0
fi
command -v kubectl >/dev/null 2>&1 || die "kubectl not found"
for ns in api-kafka api-rabbitmq rabbitmq; do
    kubectl get namespace "$ns" >/dev/null 2>&1 \
        || die "namespace $ns does not exist: kubectl apply -f k8s/namespaces.yaml first"
done
printf '%s\n' "$tls_yaml" | kubectl apply -f - || die "kubectl apply of the TLS Secrets failed"
ok "TLS Secrets applied (development CA: $dir/ca/ca.crt)"
echo "add pix.local to /etc/hosts:  echo \"\$(minikube ip) pix.local\" | sudo tee -a /etc/hosts"
