#!/usr/bin/env bash
# Development secrets of docker-compose.yaml and k8s/ (DEVELOPMENT VALUES: a local CA, certificates,
# random passwords, a token issuer, the saga's decision-signing keys), made in .local/dev-secrets
# (gitignored) and kept there.
#
#   scripts/deploy/dev_secrets.sh [ensure]         make what is missing (idempotent), keys and passwords 0600
#   scripts/deploy/dev_secrets.sh --renew-certs    re-issue every server certificate (same CA)
#   scripts/deploy/dev_secrets.sh token [--scope TOPIC ...] [--ttl 1h] [--subject NAME]
#                                                  a bearer token of the development issuer
#   scripts/deploy/dev_secrets.sh k8s              ensure, then print the path of the Kubernetes Secrets:
#                                                  kubectl apply -f "$(scripts/deploy/dev_secrets.sh k8s)"
#   scripts/deploy/dev_secrets.sh list             every file, its mode, the uids that read it, who uses it
#   scripts/deploy/dev_secrets.sh definitions --dir DIR
#                                                  only render DIR/rabbitmq/definitions.json from the
#                                                  passwords in DIR (a directory of real secrets)
#
# Options: --dir DIR (PIX_SECRETS_DIR), --access acl|owner|world (how containers may read the files
# compose mounts: acl, the default on Linux, adds a POSIX ACL entry per reading uid and needs setfacl;
# owner for Docker Desktop, rootless Docker or Podman; world makes them 0644), --quiet.
# scripts/deploy/dev_secrets.py --help has the details; docs/security-deploy.md says what each file
# is for, how real secrets replace them and how to rotate them.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

pix_help_if_asked "$@"

root="$(pix_root)"
command -v openssl >/dev/null 2>&1 || die "openssl not found (apt-get install openssl)"
py=/usr/bin/python3
[[ -x "$py" ]] || py="$(command -v python3)" || die "python3 not found"
if [[ "${1:-}" == --* ]]; then
    set -- ensure "$@"
fi
PYTHONDONTWRITEBYTECODE=1 exec "$py" "$root/scripts/deploy/dev_secrets.py" "$@"
