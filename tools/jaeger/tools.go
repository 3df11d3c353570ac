//go:build tools

// Wrapper module that pins the trace backend (Jaeger all-in-one v1) the
// platform runs in `make up`. scripts/install-observability.sh builds
// github.com/jaegertracing/jaeger/cmd/all-in-one from the module proxy at the
// version required here. See docs/adr/0032-trace-backend.md.
package tools

import _ "github.com/jaegertracing/jaeger/cmd/all-in-one"
