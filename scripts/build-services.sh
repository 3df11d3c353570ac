#!/usr/bin/env bash
# Builds the services' binaries the one way `make up`, `make chaos` and
# `make stack-soak` do: the same units `make test` builds
# (`--lib --bins --tests`), so that both share one feature resolution (the
# dev-dependencies' features included) and one set of artifacts. A plain
# `cargo build --bins` resolves features without the dev-dependencies
# (serde_json's float_roundtrip, sqlx's `any`, payments' `fault-injection`,
# ...) and so recompiled nearly the whole graph after `make test` (702 s on
# a loaded 2-core machine). The price: payments' debug binary carries its
# crash points, which only an in-process test can arm (src/fault.rs); release
# builds (images) never have them.
#
#   scripts/build-services.sh [--quiet]     (extra cargo flags are passed on)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo build --workspace --lib --bins --tests "$@"
