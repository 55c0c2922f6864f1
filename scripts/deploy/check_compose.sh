#!/usr/bin/env bash
# Validates the container deployment: docker-compose.yaml, the Dockerfiles, the RabbitMQ definitions
# and the secured configuration's contract. Offline except for one real check against the locally
# running RabbitMQ.
#
#   scripts/deploy/check_compose.sh                 every check below; exit 1 on any finding
#   scripts/deploy/check_compose.sh --hash PASSWORD print a RabbitMQ password hash (salted SHA-256,
#                                                   rabbit_password_hashing_sha256)
#
# compose      `docker-compose config -q` (the Compose schema, strict: an unknown key fails), then
#              compose_contract.py: no obsolete `version:`; every build context/Dockerfile/target and every bind-mounted file
#              exists; third-party images pinned (a tag, never :latest); our images carry the contract's
#              names (api-kafka:latest, api-rabbitmq:latest, pix-pubsub:latest, pix-kafka:3.9.1); every
#              long-running service has a healthcheck (one-shots: restart "no"), every depends_on waits
#              for health or completion; published ports are the contract's and bound to 127.0.0.1;
#              probes hit /readyz on the service's own port; Prometheus targets name compose services
#              and ports; every ${VAR} is listed in .env.example, and none is a credential.
# secure       scripts/deploy/secure_contract.py compose, against a fresh run of dev_secrets.sh in a
#              temporary directory: every secret file is one dev_secrets.sh makes, every PIX_*_FILE and
#              /run/secrets path is a secret mounted in that service, every Kafka principal has SCRAM
#              credentials in the broker's setup and is one of pix_acls' principals, every RabbitMQ
#              user of a URL has permissions in definitions.template.json, no plaintext listener nor
#              amqp:// URL, the APIs on HTTPS with --auth jwt, healthchecks over https with the CA,
#              the saga's decision keys (antifraud and settlement sign with their own, settlement and
#              notifier trust the upstream stage's, each mounted only where it is used, no
#              --allow-unsigned) (its docstring lists every rule).
# dockerfiles  dockerfiles.py: Dockerfile and deploy/images/kafka/Dockerfile: `# syntax=docker/dockerfile:1`; the
#              targets api-kafka, api-rabbitmq and pix (last); final stages run as a numeric non-root
#              USER; no remote ADD without --checksum; base images pinned; every COPY source exists
#              and passes .dockerignore; the build targets are src/apps/* (pix-token, the host-side
#              development token issuer, may be left out); the runtime stage installs the Debian
#              package of every library the built binaries link (readelf + dpkg -S on build/release/src,
#              else build/debug/src with the sanitizer runtimes left out); OCI labels; the pix-api
#              stages' port, broker and HEALTHCHECK; pix-kafka-run's secured path.
# definitions  rabbit_definitions.py: monitoring/rabbitmq/definitions.template.json: exactly dev_secrets.sh's users, no guest,
#              no password hashes (dev_secrets.sh adds them), tags and permissions as designed (the
#              secure profile's of scripts/local/rabbitmq.sh), topic permissions on `pix`; queues are
#              src/pix/domain/topics.hpp's.
#              Then the REAL check: in a throwaway vhost of the local RabbitMQ (management API
#              http://127.0.0.1:15672, guest/guest) import the exchanges, queues and bindings
#              (POST /api/definitions/<vhost>) and copies of the users (random passwords) with their
#              permissions and topic permissions, run `pix-admin topology --skip-kafka` as the
#              pix-admin copy and require success with the vhost unchanged (the definitions are exactly
#              what pix-admin declares); `pix-admin topology` as every other user must fail (no
#              configure); pix-api as api-rabbitmq and as notifier must publish
#              pix.notification.sent to `pix` (POST /rabbit -> 200, the message reaches the queue),
#              notifier must be refused pix.payment.requested (topic permission) and auditor any
#              publish. The vhost and the user copies are deleted on exit (trap). Neither `/` nor
#              guest is touched.
#
# Needs: docker-compose, python3 with PyYAML (Debian's /usr/bin/python3 + python3-yaml), curl,
# openssl, readelf/dpkg, built programs (build/release/src, else build/debug/src) and the local
# RabbitMQ of the plain profile (scripts/local/rabbitmq.sh start). Env: PIX_BIN_DIR (the programs),
# RABBITMQ_MGMT_URL (http://127.0.0.1:15672), RABBITMQ_AMQP_HOST (127.0.0.1), RABBITMQ_PORT (5672),
# RABBITMQ_CHECK_USER / RABBITMQ_CHECK_PASSWORD (guest / guest: management API only).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

root="$(pix_root)"
cd "$root"

PY=/usr/bin/python3
[[ -x "$PY" ]] || PY="$(command -v python3)"

# The checks themselves are Python modules beside this script (stdlib + PyYAML): compose_contract.py,
# dockerfiles.py, rabbit_definitions.py (their tests: test_*.py, run by validate.sh's `pytest` check).
export PYTHONDONTWRITEBYTECODE=1
deploy_py() { "$PY" "$root/scripts/deploy/$1" "${@:2}"; }

case "${1:-}" in
    -h | --help)
        pix_usage "${BASH_SOURCE[0]}"
        exit 0
        ;;
    --hash)
        [[ $# -eq 2 ]] || die "usage: $0 --hash PASSWORD"
        deploy_py rabbit_definitions.py hash "$2"
        exit 0
        ;;
    "") ;;
    *) die "usage: $0 [--hash PASSWORD]" ;;
esac

command -v docker-compose >/dev/null 2>&1 || die "docker-compose not found (scripts/local/deps.sh installs it)"
"$PY" -c 'import yaml' 2>/dev/null || die "$PY has no PyYAML (apt-get install python3-yaml)"

start="$(now_us)"
failed=()

step "compose: docker-compose -f docker-compose.yaml config -q (Compose schema, strict)"
if docker-compose -f docker-compose.yaml config -q; then
    ok "docker-compose.yaml is valid"
else
    failed+=("compose schema")
fi

step "compose: contract (builds, mounts, images, healthchecks, depends_on, ports, credentials)"
deploy_py compose_contract.py || failed+=("compose contract")

step "secure contract: docker-compose.yaml against a fresh dev_secrets.sh run (secure_contract.py compose)"
deploy_py secure_contract.py compose || failed+=("secure contract")

step "Dockerfiles: Dockerfile, deploy/images/kafka/Dockerfile"
deploy_py dockerfiles.py || failed+=("dockerfiles")

step "definitions.template.json: users, permissions, topic permissions, topology (offline)"
deploy_py rabbit_definitions.py offline || failed+=("definitions offline")

vhost="pix-defs-check-$$"
prefix="$vhost."
live_pid=""
# The live check runs in the background so that a signal reaches this shell at once; it is passed
# on to the check (which deletes what it created), and the EXIT trap deletes it again (idempotent).
cleanup_live() {
    if [[ -n "$live_pid" ]] && kill -0 "$live_pid" 2>/dev/null; then
        kill -TERM "$live_pid" 2>/dev/null || true
        wait "$live_pid" 2>/dev/null || true
    fi
    deploy_py rabbit_definitions.py cleanup "$vhost" "$prefix" || true
}
trap cleanup_live EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "definitions.template.json: import into vhost $vhost of the local RabbitMQ, then pix-admin topology and pix-api"
rc=0
# Not through deploy_py: the pid must be Python's own, for cleanup_live's SIGTERM to reach it.
"$PY" "$root/scripts/deploy/rabbit_definitions.py" live "$vhost" "$prefix" &
live_pid=$!
wait "$live_pid" || rc=$?
live_pid=""
if ((rc == 2)); then
    die "the live definitions check needs the local RabbitMQ (management on ${RABBITMQ_MGMT_URL:-http://127.0.0.1:15672}) and built programs"
elif ((rc != 0)); then
    failed+=("definitions live")
fi

if ((${#failed[@]})); then
    die "check_compose: ${#failed[@]} check(s) failed: ${failed[*]} ($(elapsed_since "$start")s)"
fi
ok "compose, Dockerfiles and RabbitMQ definitions: all checks passed ($(elapsed_since "$start")s)"
