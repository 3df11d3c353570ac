#!/usr/bin/env bash
# docker-compose.yml cannot run here (no Docker engine); this checks what can
# be checked without one (`make compose-check`, part of `make test`), on the
# file as Compose itself resolves it (`docker-compose config`):
#  * the file is valid Compose; every Dapr image is the version tools/dapr/go.mod pins;
#  * every app of dapr.yaml has an app, a sidecar and a `<app>-net` namespace
#    holder; app and sidecar both join the holder (never one the other's),
#    which carries the alias `<app>`, so either restarts without the other;
#  * health: every app checks its /readyz, every namespace holder its
#    sidecar's /v1.0/healthz(/outbound), the app waits for its sidecar to be
#    healthy, and every `service_healthy` condition names a service that has
#    a healthcheck (or Compose would wait forever);
#  * the statements volume is chowned to the sidecar's uid (65532) by a
#    one-shot service every sidecar that mounts it waits for;
#  * URLs that cross containers name a Compose service (not 127.0.0.1 or
#    localhost), communication's receipts and statement links are set;
#  * no secret has a default: every secret-like variable is `${VAR:?}`, every
#    such VAR is in .env.example with an empty value, and the file does not
#    resolve with .env.example alone;
#  * the gateway holder checks every gateway daprd, Caddy's upstreams are theirs;
#  * nothing but the gateway's :8000 is published beyond the host's loopback.
# `scripts/check-compose.sh --self-test` breaks each property in a copy of the
# file and fails unless the check rejects every copy.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

command -v docker-compose >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
}

# The required variables of the file, with placeholders: enough to validate it.
required_vars() { grep -oE '\$\{[A-Z_]+:\?' "${1:-docker-compose.yml}" | sed -E 's/^\$\{//; s/:\?$//' | sort -u; }
export_placeholders() {
  local var
  for var in $(required_vars "$1"); do
    case "$var" in
      # A folder (the trust bundle's, scripts/lib/mtls.sh): an absolute path.
      PLATFORM_MTLS_DIR) export "$var=${!var:-/placeholder-for-validation}" ;;
      *) export "$var=${!var:-placeholder-for-validation}" ;;
    esac
  done
}

# check_file <compose file>: 0 when every property holds, messages on stderr.
check_file() {
  local file="$1" resolved status=0
  export_placeholders "$file"
  resolved="$(mktemp)"
  if ! docker-compose --project-directory "$here" -f "$file" config > "$resolved" 2>"$resolved.err"; then
    cat "$resolved.err" >&2; echo "compose: $file is not valid Compose" >&2; rm -f "$resolved" "$resolved.err"; return 1
  fi

  local pinned
  pinned="$(awk '$1=="github.com/dapr/dapr" {print $2; exit}' tools/dapr/go.mod)"
  python3 - "$resolved" "$file" "${pinned#v}" "$here/dapr.yaml" "$here/.env.example" <<'PY' || status=1
import re, sys, yaml
resolved, raw_path, pinned, dapr_yaml, env_example = sys.argv[1:6]
cfg = yaml.safe_load(open(resolved))
raw = yaml.safe_load(open(raw_path))
services = cfg["services"]
errors = []
def err(msg): errors.append(msg)

# Dapr images at the pinned version.
dapr_images = [s["image"] for s in services.values() if str(s.get("image", "")).startswith("daprio/")]
if not dapr_images: err("no daprio/* image found")
for image in dapr_images:
    if image.rsplit(":", 1)[-1] != pinned: err(f"{image} is not the pinned Dapr {pinned}")

def aliases(name):
    nets = services[name].get("networks") or {}
    out = set()
    if isinstance(nets, dict):
        for n in nets.values():
            out.update((n or {}).get("aliases") or [])
    return out
known_hosts = set(services) | {a for n in services for a in aliases(n)}

def deps(name):
    d = services[name].get("depends_on") or {}
    return d if isinstance(d, dict) else {k: {"condition": "service_started"} for k in d}

def health_test(name):
    hc = services[name].get("healthcheck") or {}
    if hc.get("disable"): return ""
    t = hc.get("test") or ""
    return " ".join(t) if isinstance(t, list) else str(t)

# Every service that shares a namespace shares a holder's, and a holder
# shares nobody's.
holders = set()
for name, s in services.items():
    mode = s.get("network_mode", "")
    if mode.startswith("service:"):
        target = mode.split(":", 1)[1]
        holders.add(target)
        if not target.endswith("-net"):
            err(f"{name} joins the network namespace of {target}, not of a `-net` holder: restarting {target} would cut {name} off")
for h in holders:
    if h not in services: err(f"namespace holder {h} does not exist"); continue
    hs = services[h]
    if hs.get("network_mode"): err(f"namespace holder {h} itself joins {hs['network_mode']}")
    if "build" in hs: err(f"namespace holder {h} is built from the app's source (it must not change with the app)")

apps = re.findall(r"appID:\s*(\S+)", open(dapr_yaml).read())
if not apps: err("no appID in dapr.yaml")
for app in apps:
    net, sidecar = f"{app}-net", f"{app}-dapr"
    for n in (app, net, sidecar):
        if n not in services: err(f"no service {n}")
    if any(n not in services for n in (app, net, sidecar)): continue
    for n in (app, sidecar):
        if services[n].get("network_mode") != f"service:{net}":
            err(f"{n} is not in the network namespace of {net}")
    if app not in aliases(net): err(f"{net} does not carry the network alias {app} (URLs like http://{app}:8080 would not resolve)")
    if "/readyz" not in health_test(app): err(f"{app} has no healthcheck on its /readyz")
    if "/v1.0/healthz" not in health_test(net): err(f"{net} has no healthcheck of its sidecar (/v1.0/healthz)")
    if deps(app).get(net, {}).get("condition") != "service_healthy":
        err(f"{app} does not wait for its sidecar to be healthy (depends_on {net}: service_healthy)")
    if net not in deps(sidecar): err(f"{sidecar} does not depend on {net}")

# The gateway: its holder is healthy only when every gateway daprd is, and
# every upstream Caddy is given is one of them.
def flag(cmd, name):
    cmd = [str(c) for c in cmd or []]
    return cmd[cmd.index(name) + 1] if name in cmd else None
gw_daprds = [n for n, s in services.items()
             if s.get("network_mode") == "service:gateway-net" and str(s.get("image", "")).startswith("daprio/daprd")]
if "gateway-net" not in services or not gw_daprds:
    err("no gateway-net holder with gateway daprds")
else:
    for n in gw_daprds:
        port = flag(services[n].get("command"), "--dapr-public-port")
        if not port or f"/dev/tcp/127.0.0.1/{port}" not in health_test("gateway-net"):
            err(f"gateway-net's healthcheck does not check {n} (public port {port})")
    http_ports = {flag(services[n].get("command"), "--dapr-http-port") for n in gw_daprds}
    for k, v in (services.get("gateway", {}).get("environment") or {}).items():
        if k.endswith("_UPSTREAM") and str(v).rsplit(":", 1)[-1] not in http_ports:
            err(f"gateway: {k}={v} is no gateway daprd's HTTP port ({sorted(p for p in http_ports if p)})")

# A condition Compose can meet.
for name in services:
    for dep, d in deps(name).items():
        if dep not in services: err(f"{name} depends on unknown {dep}"); continue
        cond = (d or {}).get("condition", "service_started")
        if cond == "service_healthy" and not health_test(dep):
            err(f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")
        if cond == "service_completed_successfully" and services[dep].get("restart", "no") not in ("no", None):
            err(f"{name} waits for one-shot {dep}, which restarts")

# The statements volume: owned by the sidecars' user before any writes.
SIDECAR_UID = "65532"  # distroless `nonroot`, daprio/daprd's user
inits = [n for n, s in services.items()
         if any(str(v).startswith("files:") for v in s.get("volumes") or [])
         and "chown" in " ".join(map(str, s.get("command") or []))]
if not inits: err("no one-shot service chowns the `files` volume")
for n in inits:
    if f"{SIDECAR_UID}:{SIDECAR_UID}" not in " ".join(map(str, services[n]["command"])):
        err(f"{n} does not chown the statements volume to {SIDECAR_UID} (the sidecars' uid)")
for name, s in services.items():
    if name in inits: continue
    if any(str(v).startswith("files:") for v in s.get("volumes") or []):
        if not any(deps(name).get(i, {}).get("condition") == "service_completed_successfully" for i in inits):
            err(f"{name} mounts the statements volume without waiting for its chown ({' '.join(inits) or 'none'})")

# URLs that cross containers.
url_re = re.compile(r"^https?://([^/:]+)")
PUBLIC = {"APP__LINKS__STATEMENTS_BASE_URL"}          # a link for a user's browser
IDENTIFIERS = {"APP__AUTH__ISSUER", "APP__OAUTH__ISSUER", "GATEWAY_ISSUER"}  # compared, never fetched
for name, s in services.items():
    for k, v in (s.get("environment") or {}).items():
        m = url_re.match(str(v))
        if not m or k in PUBLIC or k in IDENTIFIERS: continue
        host = m.group(1)
        if host not in known_hosts:
            err(f"{name}: {k}={v} names {host}, not a Compose service (unreachable from the other containers)")
comm_env = (services.get("communication") or {}).get("environment") or {}
for k in ("APP__PROVIDERS__RECEIPTS_BASE_URL", "APP__LINKS__STATEMENTS_BASE_URL"):
    if k not in comm_env: err(f"communication: {k} is not set (its default is the one-host stack's loopback)")

# No development secret: secret-like variables are required variables.
secret_re = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY$|TRUST_ANCHORS)")
def raw_envs():
    for name, s in (raw.get("services") or {}).items():
        yield name, (s or {}).get("environment") or {}
    for k, v in raw.items():
        if k.startswith("x-") and isinstance(v, dict):
            env = v.get("environment") if "environment" in v else v
            if isinstance(env, dict): yield k, env
for name, env in raw_envs():
    if not isinstance(env, dict): continue
    for k, v in env.items():
        if k == "<<" or not secret_re.search(k): continue
        if not re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(v)):
            err(f"{name}: {k} has a value in the file ({str(v)[:20]}...), not a required variable")
required = set(re.findall(r"\$\{([A-Z_]+):\?", open(raw_path).read()))
example = {}
for line in open(env_example):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        k, v = line.split("=", 1); example[k.strip()] = v.strip()
for var in sorted(required - set(example) - {"DAPR_TRUST_ANCHORS"}):
    err(f".env.example lacks {var}")
for var, v in example.items():
    if secret_re.search(var) and v: err(f".env.example gives {var} a value (copying it would deploy a known secret)")

# Published ports: only the gateway's 8000 beyond the host's loopback.
def published(p):
    if isinstance(p, dict): return p.get("host_ip", ""), str(p.get("published", "")), str(p.get("target"))
    parts = str(p).split("/")[0].split(":")
    if len(parts) == 3: return parts[0], parts[1], parts[2]
    if len(parts) == 2: return "", parts[0], parts[1]
    return "", parts[0], parts[0]
for name, s in services.items():
    if str(s.get("network_mode", "")).startswith("service:") and s.get("ports"):
        err(f"{name} publishes ports but joins another namespace (Docker refuses: publish them on the holder)")
    for p in s.get("ports") or []:
        ip, host_port, target = published(p)
        if ip in ("127.0.0.1", "::1"): continue
        if not (name == "gateway-net" and host_port == "8000"):
            err(f"{name} publishes {host_port}->{target} on every interface (only the gateway's 8000 may)")

for e in errors: print(f"compose: {e}", file=sys.stderr)
if errors: sys.exit(1)
print(f"compose: valid; Dapr images at {pinned}; {len(apps)} services with sidecars in `-net` namespaces, "
      f"healthchecks and conditions hold, statements volume chowned, no secret defaults, only :8000 public")
PY
  rm -f "$resolved" "$resolved.err"
  return "$status"
}

# Without any variable set, the file must not resolve: nothing has a default.
check_no_defaults() {
  local out
  if out="$(env -i PATH="$PATH" HOME="$HOME" docker-compose --project-directory "$here" --env-file "$here/.env.example" \
              -f "$here/docker-compose.yml" config -q 2>&1)"; then
    echo "compose: docker-compose.yml resolves with .env.example's empty values: a secret has a default" >&2; return 1
  fi
  grep -qE 'Missing mandatory value|required variable' <<<"$out" || { echo "$out" >&2; echo "compose: unexpected error without variables" >&2; return 1; }
}

self_test() {
  local work defect status=0
  work="$(mktemp -d)"; trap 'rm -rf "$work"' RETURN
  # Each defect breaks one property; the check must reject every copy.
  for defect in sidecar-in-app-namespace no-app-healthcheck sidecar-not-awaited no-alias \
                files-not-chowned loopback-webhook secret-default published-sandbox healthy-without-check \
                gateway-daprd-unchecked gateway-upstream-unknown; do
    python3 - "$here/docker-compose.yml" "$work/$defect.yml" "$defect" <<'PY'
import sys, yaml
src, dst, defect = sys.argv[1:4]
doc = yaml.safe_load(open(src))   # anchors expanded: each service edited alone
s = doc["services"]
if defect == "sidecar-in-app-namespace": s["payments-dapr"]["network_mode"] = "service:payments"
if defect == "no-app-healthcheck": s["bookings"].pop("healthcheck")
if defect == "sidecar-not-awaited": s["auth"]["depends_on"]["auth-net"] = {"condition": "service_started"}
if defect == "no-alias": s["communication-net"].pop("networks")
if defect == "files-not-chowned": s["files-init"]["command"] = ["true"]
if defect == "loopback-webhook": s["psp-sandbox"]["environment"]["PSP_WEBHOOK_URL"] = "http://127.0.0.1:8002/v1/webhooks/psp"
if defect == "secret-default": s["bookkeeping"]["environment"]["APP__DATABASE__PASSWORD"] = "bookkeeping"
if defect == "published-sandbox": s["psp-sandbox"]["ports"] = ["8010:8010"]
if defect == "gateway-daprd-unchecked": s["gateway-net"]["healthcheck"]["test"] = ["CMD", "true"]
if defect == "gateway-upstream-unknown": s["gateway"]["environment"]["GATEWAY_BOOKINGS_UPSTREAM"] = "127.0.0.1:3599"
if defect == "healthy-without-check": s["psp-sandbox"]["depends_on"] = {"zipkin": {"condition": "service_healthy"}}
yaml.safe_dump(doc, open(dst, "w"), sort_keys=False)
PY
    if check_file "$work/$defect.yml" 2>"$work/err" >/dev/null; then
      echo "compose self-test: defect '$defect' was ACCEPTED" >&2; status=1
    else
      echo "compose self-test: defect '$defect' rejected: $(head -n1 "$work/err")"
    fi
  done
  return "$status"
}

status=0
check_file "$here/docker-compose.yml" || status=1
check_no_defaults || status=1
if [ "${1:-}" = "--self-test" ]; then self_test || status=1; fi
exit "$status"
