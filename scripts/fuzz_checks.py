"""Schemathesis checks of the house rules the OpenAPI documents cannot state
(loaded by scripts/fuzz.sh through SCHEMATHESIS_HOOKS; ADR 0039).

* Every error is `application/problem+json` with a stable `code`, except
  where a standard fixes another shape: auth's OAuth endpoints answer
  RFC 6749 error JSON, its login form HTML.
"""
import json

import schemathesis

# Paths whose errors follow another standard than RFC 9457.
OAUTH_PATHS = ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/oauth2/authorize")


@schemathesis.check
def problem_json_errors(ctx, response, case):
    """Every 4xx/5xx is problem+json with `status` and a string `code`."""
    if response.status_code < 400 or case.operation.path in OAUTH_PATHS:
        return None
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media != "application/problem+json":
        raise AssertionError(f"{response.status_code} answered {media or 'no content type'}, not application/problem+json")
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"{response.status_code} problem is not JSON: {e}") from None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not body["code"]:
        raise AssertionError(f"{response.status_code} problem without a `code`: {body!r}")
    if body.get("status") != response.status_code:
        raise AssertionError(f"problem `status` {body.get('status')!r} differs from the HTTP status {response.status_code}")
    return None


# auth's admin API is fuzzed for real, on the platform's own database: a
# generated id may name a client or role that `make up` seeded (a run once
# disabled `platform-admin` and re-keyed it). Every id a mutating admin
# operation targets is therefore one of the run's own (prefixed `fuzz-`):
# the operation is still exercised, seeded clients and roles never touched.
ADMIN_TARGETS = ("/admin/clients/{id}", "/admin/roles/{name}")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    path = case.operation.path
    if case.method.upper() in ("GET", "HEAD") or not path.startswith(ADMIN_TARGETS):
        return
    params = case.path_parameters or {}
    for key in ("id", "name"):
        value = params.get(key)
        if isinstance(value, str) and not value.startswith("fuzz-"):
            params[key] = f"fuzz-{value}"
