# syntax=docker/dockerfile:1
# pix-pubsub images: one build, three targets (names are the deployment contract, see README "Deploy"):
#
#   docker build --target api-kafka    -t api-kafka:latest .     pix-api, PIX_BROKER=kafka,  port 5000
#   docker build --target api-rabbitmq -t api-rabbitmq:latest .  pix-api, PIX_BROKER=rabbit, port 5001
#   docker build                       -t pix-pubsub:latest .    every binary; run one by its name
#                                                                (pix-antifraud, pix-settlement, pix-notifier,
#                                                                 pix-auditor, pix-admin, pix-sim, pix-tail,
#                                                                 pix-token)
#
# Build arguments: VERSION, REVISION, CREATED, SOURCE (OCI labels), BUILD_JOBS (default 2).
# Binaries go to /usr/local/bin; they run as 10001:10001 with /var/lib/pix (ledger.db, audit.db) as
# the working directory; /healthz, /readyz and /metrics answer on the API port or the stage's admin port.

ARG DEBIAN_VERSION=bookworm

# ---------------------------------------------------------------------------------------------------
# build: the same Debian packages scripts/local/deps.sh installs for the C++ build (toolchain and
# libraries; the test-only gtest/gmock are left out because the release preset builds no tests).
FROM debian:${DEBIAN_VERSION} AS build
ENV DEBIAN_FRONTEND=noninteractive
# Keep downloaded .debs in the cache mount instead of deleting them (the base image's docker-clean).
RUN rm -f /etc/apt/apt.conf.d/docker-clean \
    && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >/etc/apt/apt.conf.d/keep-cache
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake ninja-build pkg-config g++ \
        librdkafka-dev librabbitmq-dev libboost1.81-dev libspdlog-dev libcli11-dev libsqlite3-dev libssl-dev

WORKDIR /src
# Sources after the packages: editing code never invalidates the apt layer. Only what the release
# configure reads is copied (.dockerignore keeps the rest out of the context).
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake/ cmake/
COPY bench/CMakeLists.txt bench/pix-ceiling.cpp bench/pix-saga-probe.cpp bench/
COPY src/ src/

ARG BUILD_JOBS=2
# The release preset: RelWithDebInfo, PIX_BUILD_TESTS=OFF. Only the programs under src/apps are
# built (not the bench/ tools). The build tree lives in a cache mount, so a rebuild is incremental;
# the binaries are stripped on the way out.
RUN --mount=type=cache,target=/src/build,id=pix-pubsub-build \
    cmake --preset release \
    && cmake --build --preset release --parallel "${BUILD_JOBS}" --target \
        pix-admin pix-antifraud pix-api pix-auditor pix-notifier pix-settlement pix-sim pix-tail pix-token \
    && install -d /out/bin \
    && install -m 0755 -s \
        build/release/src/pix-admin build/release/src/pix-antifraud build/release/src/pix-api \
        build/release/src/pix-auditor build/release/src/pix-notifier build/release/src/pix-settlement \
        build/release/src/pix-sim build/release/src/pix-tail build/release/src/pix-token \
        /out/bin/

# ---------------------------------------------------------------------------------------------------
# runtime: the shared libraries the binaries link (readelf NEEDED -> dpkg -S on bookworm), plus
# ca-certificates, tzdata and curl (container probes).
FROM debian:${DEBIAN_VERSION}-slim AS runtime
ARG DEBIAN_VERSION
ENV DEBIAN_FRONTEND=noninteractive
# The package lists stay in a cache mount, out of the image.
RUN --mount=type=cache,target=/var/lib/apt/lists,sharing=locked,id=pix-runtime-apt-lists \
    apt-get update \
    && apt-get install -y --no-install-recommends \
        libstdc++6 libgcc-s1 libssl3 libfmt9 libspdlog1.10 librdkafka1 librabbitmq4 libsqlite3-0 \
        ca-certificates tzdata curl \
    && groupadd --gid 10001 pix \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/pix --shell /usr/sbin/nologin pix \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/pix

COPY --from=build /out/bin/ /usr/local/bin/
# Fail the build, not the first start, if a shared library is missing.
RUN if ldd /usr/local/bin/pix-* | grep 'not found'; then exit 1; fi

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
# The deploy workflow passes the repository URL; empty in a local build.
ARG SOURCE=""
LABEL org.opencontainers.image.title="pix-pubsub" \
      org.opencontainers.image.description="PIX payment events over Kafka and RabbitMQ: APIs, saga stages, simulator (C++20)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.vendor="pix-pubsub" \
      org.opencontainers.image.base.name="docker.io/library/debian:${DEBIAN_VERSION}-slim"

# Listen on every interface inside the container (the programs default to 127.0.0.1), log JSON lines,
# and keep the SQLite stores on the data volume.
ENV PIX_LISTEN=0.0.0.0 \
    PIX_ADMIN_LISTEN=0.0.0.0 \
    PIX_LOG_FORMAT=json \
    PIX_LEDGER_DB=/var/lib/pix/ledger.db \
    PIX_AUDIT_DB=/var/lib/pix/audit.db
# /var/lib/pix is where compose and Kubernetes mount the data volumes (no VOLUME here, so that
# one-shot commands such as pix-admin leave no anonymous volumes behind).
WORKDIR /var/lib/pix
USER 10001:10001
STOPSIGNAL SIGTERM

# ---------------------------------------------------------------------------------------------------
FROM runtime AS api-kafka
LABEL org.opencontainers.image.title="api-kafka" \
      org.opencontainers.image.description="pix-api publishing PIX events to Kafka (POST /kafka, port 5000)"
ENV PIX_BROKER=kafka \
    PIX_PORT=5000
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${PIX_PORT}/healthz" || exit 1
ENTRYPOINT ["/usr/local/bin/pix-api"]

# ---------------------------------------------------------------------------------------------------
FROM runtime AS api-rabbitmq
LABEL org.opencontainers.image.title="api-rabbitmq" \
      org.opencontainers.image.description="pix-api publishing PIX events to RabbitMQ (POST /rabbit, port 5001)"
ENV PIX_BROKER=rabbit \
    PIX_PORT=5001
EXPOSE 5001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${PIX_PORT}/healthz" || exit 1
ENTRYPOINT ["/usr/local/bin/pix-api"]

# ---------------------------------------------------------------------------------------------------
# pix (the default, last stage): every binary; the command names the program, e.g.
#   docker run --rm pix-pubsub:latest pix-admin topology --kafka-bootstrap kafka:9092 ...
# Saga stages serve /healthz /readyz /metrics on their admin ports 9101-9104.
FROM runtime AS pix
EXPOSE 5000 5001 9101 9102 9103 9104
CMD ["pix-api", "--help"]
