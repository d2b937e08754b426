# syntax=docker/dockerfile:1.7
# The preflight job image: built with the full Rust toolchain, run from distroless (glibc,
# libssl3, libgcc and CA certificates; no shell, no package manager) as a fixed non-root user.
# The hooks run it with a read-only root file system: preflight writes nothing but its
# termination message (/dev/termination-log, mounted by the kubelet).

# The workspace's rust-version: the image builds with the declared minimum, the highest
# rust-version among the locked dependencies of the binary (preflight-job/tests/toolchain.rs
# derives it from `cargo metadata` and fails when a dependency bump needs a newer Rust).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# OpenSSL headers for native-tls and kube's openssl-tls; cargo-chef caches the dependencies.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/* \
 && cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
# The dependencies alone: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json --package preflight-job
COPY . .
RUN cargo build --release --locked --package preflight-job --bin preflight
# The system's CAs as a hashed directory (one file per CA, named by its subject's hash), from
# which preflight has OpenSSL read a CA only when a chain needs it (preflight_core::tls):
# distroless ships only the bundle file, which OpenSSL 3 would decode whole for every connector.
RUN mkdir /trust && cp -L /etc/ssl/certs/*.[0-9] /trust/

# Debian 12's libc6, libssl3 and libgcc-s1: what the binary links (ldd), checked by
# preflight-job/tests/image.rs.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="preflight" \
      org.opencontainers.image.description="Readiness checks of a GitOps platform's tiers, before the sync" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/goldenpath/preflight" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /src/target/release/preflight /usr/local/bin/preflight
COPY --from=build /trust/ /etc/ssl/certs/
# distroless's nonroot user; the hooks' securityContext names the same UID.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/preflight"]
