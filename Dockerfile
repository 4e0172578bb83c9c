# One image per service, from one file: `--target third-party-api|main-app|queue-worker|devstack`,
# and `--target keyless` for the operator command line (the key-rotation job runs `keyless rotate`).
# Classic Dockerfile syntax only (no BuildKit features): docker, podman/buildah and azd build it.
#
# Every base is a build argument whose default is a tagged public image, so a machine without a
# registry can pass local ones (CI does: see .ci/containers).
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# checkov:skip=CKV_DOCKER_7: every FROM is one of these build arguments, whose defaults are tagged; checkov does not read ARG defaults

# cargo-chef: dependencies build in their own layer, reused until Cargo.toml or Cargo.lock change.
FROM ${RUST_IMAGE} AS chef
# As .cargo/config.toml: aws-lc seeds from the OS only (no CPU jitter entropy: faster start-up).
# Set here too, so the dependency layer cargo-chef cooks is built exactly as the final build.
ENV AWS_LC_SYS_NO_JITTER_ENTROPY=1
ARG CARGO_CHEF_VERSION=0.1.73
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins \
        -p third-party-api -p main-app -p queue-worker -p devstack -p ops \
    && mkdir -p /out/bin /out/state \
    && cp target/release/third-party-api target/release/main-app \
          target/release/queue-worker target/release/devstack target/release/keyless /out/bin/

# What every runtime image shares: no shell, no package manager, user 65532 (distroless
# `nonroot`), the version labels.
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/keyless-azure/keyless-azure-rust"
USER 65532:65532

FROM runtime AS third-party-api
LABEL org.opencontainers.image.title="third-party-api" \
      org.opencontainers.image.description="Example API protected by Azure-Functions-style keys"
COPY --from=builder --chown=65532:65532 /out/state/ /var/lib/third-party-api/
COPY --from=builder /out/bin/third-party-api /usr/local/bin/third-party-api
# The file store (when neither THIRD_PARTY_API_KEYS_FILE nor THIRD_PARTY_API_KEYS_URL is set) is
# .third-party-api/keys.json under this directory, which user 65532 owns. No store variable is
# set here: in Azure the app gets THIRD_PARTY_API_KEYS_URL, which excludes the file store's.
WORKDIR /var/lib/third-party-api
ENV PORT=7071 BIND_ADDRESS=0.0.0.0
EXPOSE 7071
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/third-party-api", "healthcheck", "/readyz"]
ENTRYPOINT ["/usr/local/bin/third-party-api"]

FROM runtime AS main-app
LABEL org.opencontainers.image.title="main-app" \
      org.opencontainers.image.description="Public app: key from Key Vault, third-party call, Queue Storage, verification"
COPY --from=builder /out/bin/main-app /usr/local/bin/main-app
ENV PORT=8080 BIND_ADDRESS=0.0.0.0
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/main-app", "healthcheck", "/readyz"]
ENTRYPOINT ["/usr/local/bin/main-app"]

FROM runtime AS queue-worker
LABEL org.opencontainers.image.title="queue-worker" \
      org.opencontainers.image.description="Queue consumer that records and expires codes"
COPY --from=builder /out/bin/queue-worker /usr/local/bin/queue-worker
ENV PORT=8081 BIND_ADDRESS=0.0.0.0
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/queue-worker", "healthcheck", "/readyz"]
ENTRYPOINT ["/usr/local/bin/queue-worker"]

# The operator command line; in Azure, the key-rotation job runs `keyless rotate` with it (its
# arguments come from the job). A one-shot command: no port, no health check.
FROM runtime AS keyless
LABEL org.opencontainers.image.title="keyless" \
      org.opencontainers.image.description="Operator command line: key rotation, doctor, queue and code tools"
COPY --from=builder /out/bin/keyless /usr/local/bin/keyless
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/keyless"]
CMD ["--help"]

# Local Azure for docker-compose.yml: identity and Key Vault emulators, storage gates (not for Azure).
FROM runtime AS devstack
LABEL org.opencontainers.image.title="devstack" \
      org.opencontainers.image.description="Local identity and Key Vault emulators and storage RBAC gates for docker compose"
COPY --from=builder --chown=65532:65532 /out/state/ /devstack/
COPY --from=builder /out/bin/devstack /usr/local/bin/devstack
EXPOSE 42356 8443 10000 10001
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/devstack", "compose", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/devstack", "compose"]
CMD ["serve"]
