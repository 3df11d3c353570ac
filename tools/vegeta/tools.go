//go:build tools

// Wrapper module that pins vegeta, the load tool of `make slo`
// (scripts/slo-run.sh). scripts/install-observability.sh builds it from the
// module proxy at the version required here. See docs/adr/0033-slo-choices.md.
package tools

import _ "github.com/tsenart/vegeta/v12"
