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
