# syntax=docker/dockerfile:1
# One image per service: docker build --build-arg SERVICE=payments .
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
ARG SERVICE
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    test -n "${SERVICE}" \
 && cargo build --release --locked -p "${SERVICE}" \
 && install -D "target/release/${SERVICE}" /out/service

FROM debian:bookworm-slim AS runtime
ARG SERVICE
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home app
COPY --from=build /out/service /app/service
COPY services/${SERVICE}/config /app/config
ENV APP_CONFIG_DIR=/app/config \
    APP_ENVIRONMENT=production \
    APP__SERVER__PORT=8080
USER app
EXPOSE 8080
# SIGTERM starts a graceful shutdown (see crates/server).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/service"]
