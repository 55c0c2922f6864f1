#!/usr/bin/env bash
# Local counterpart of scripts/create_kafka_topics.sh: creates the five PIX topics on the local
# Kafka (127.0.0.1:9092) through the Admin API, idempotently.
#
#   scripts/local/create_kafka_topics.sh [--partitions N]
#
# Env: PIX_KAFKA_BOOTSTRAP (127.0.0.1:9092), PIX_TOPIC_PARTITIONS (3). Needs a build
# (scripts/local/build.sh release); `./pix up` does all of it.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

admin="$(pix_root)/build/release/src/pix-admin"
[[ -x "$admin" ]] || die "$admin is missing: run scripts/local/build.sh release first"
step "creating the PIX topics on ${PIX_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
exec "$admin" topology --skip-rabbit "$@"
