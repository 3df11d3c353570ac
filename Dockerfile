# syntax=docker/dockerfile:1
# Every Rust image of the platform, from one workspace build:
#   services (default target):     docker build --build-arg PACKAGE=payments .
#   sandboxes, pluggable components: docker build --target binary --build-arg PACKAGE=psp-sandbox .
# (A service image also carries its config folder; the others have none.)
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
ARG PACKAGE
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    test -n "${PACKAGE}" \
 && cargo build --release --locked -p "${PACKAGE}" \
 && install -D "target/release/${PACKAGE}" /out/app

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home app
# SIGTERM starts a graceful shutdown (crates/server, sandboxes/kit,
# pluggable-components).
STOPSIGNAL SIGTERM

# Sandboxes and Dapr pluggable components. A pluggable component serves its
# Unix socket in DAPR_COMPONENTS_SOCKETS_FOLDER, a volume shared with its
# daprd only; a named volume mounted there starts with this folder's owner.
FROM runtime AS binary
RUN install -d -o app -m 0755 /var/run/dapr-components-sockets
ENV DAPR_COMPONENTS_SOCKETS_FOLDER=/var/run/dapr-components-sockets
COPY --from=build /out/app /app/bin
USER app
ENTRYPOINT ["/app/bin"]

# The services (the default, last target).
FROM runtime AS service
ARG PACKAGE
COPY --from=build /out/app /app/service
COPY services/${PACKAGE}/config /app/config
ENV APP_CONFIG_DIR=/app/config \
    APP_ENVIRONMENT=production \
    APP__SERVER__PORT=8080
USER app
EXPOSE 8080
ENTRYPOINT ["/app/service"]
