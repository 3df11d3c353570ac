//go:build tools

// Wrapper module that pins Sloth, the generator of the multi-window,
// multi-burn-rate Prometheus rules from slo/*.yaml.
// scripts/install-observability.sh builds github.com/slok/sloth/cmd/sloth at
// the version required here. See docs/adr/0033-slo-choices.md.
package tools

import _ "github.com/slok/sloth/cmd/sloth"
