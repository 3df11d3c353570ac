"""Everything this service asks of other services, through its own daprd (Dapr Python SDK).

* its client secret: the sidecar's secrets API, store `platform-secrets`
  (the Configuration lets it read that one key only);
* a token: auth's discovery document, then its token endpoint with
  client credentials (client_secret_post), audience `bookkeeping`, scope
  `bookkeeping:read` — both by service invocation of app id `auth`;
* an account's id: bookkeeping's `GET /v1/accounts?code=<code>`, and its
  balance: `GET /v1/accounts/{id}/balance`, both by service invocation of
  app id `bookkeeping`, with the token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlparse

from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprHttpError, DaprInternalError

from .settings import Settings

log = logging.getLogger("finance_notifier.sidecar")


class DependencyError(Exception):
    """A call through the sidecar failed in a way that may pass: retry the event later."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Balance:
    account_code: str
    account_id: str
    currency: str | None
    balance: int
    normal_balance: int | None
    as_of_sequence: int | None


class Sidecar:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._client: DaprClient | None = None
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_path: str | None = None
        self._account_ids: dict[str, str] = {}

    async def _dapr(self) -> DaprClient:
        if self._client is None:
            # The SDK waits for the sidecar's outbound health when it connects.
            self._client = await asyncio.to_thread(DaprClient)
        return self._client

    async def _invoke(self, app_id: str, method: str, *, verb: str, data: bytes = b"",
                      content_type: str | None = None, headers: tuple[tuple[str, str], ...] = (),
                      query: tuple[tuple[str, str], ...] | None = None) -> tuple[int, Any]:
        client = await self._dapr()
        started = time.monotonic()
        try:
            resp = await client.invoke_method_async(
                app_id, method, data=data, content_type=content_type, metadata=headers,
                http_verb=verb, http_querystring=query, timeout=self._settings.sidecar_timeout_s,
            )
            status, body = resp.status_code or 200, resp.data
        except DaprHttpError as e:
            status, body = e.status_code or 0, e._raw_response_bytes or b""
        except (DaprInternalError, OSError, asyncio.TimeoutError) as e:
            raise DependencyError(f"{app_id} {verb} {method}: {e}") from e
        log.debug("sidecar call", extra={"fields": {
            "dapr.app_id": app_id, "http.method": verb, "http.path": method, "http.status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1)}})
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        return status, parsed

    async def _client_secret(self) -> str:
        client = await self._dapr()
        s = self._settings
        try:
            resp = await asyncio.to_thread(client.get_secret, s.secret_store, s.secret_key)
        except Exception as e:  # the SDK raises grpc errors of several kinds
            raise DependencyError(f"secret {s.secret_key} from {s.secret_store}: {e}") from e
        value = resp.secret.get(s.secret_key)
        if not value:
            raise DependencyError(f"secret {s.secret_key} is empty in {s.secret_store}")
        return value

    async def _token_endpoint(self) -> str:
        if self._token_path is None:
            status, doc = await self._invoke(self._settings.auth_app_id,
                                             ".well-known/openid-configuration", verb="GET")
            if status != 200 or not isinstance(doc, dict) or "token_endpoint" not in doc:
                raise DependencyError(f"auth discovery answered {status}", status)
            # The issuer's URL is not reachable from here: the path is, by invocation.
            self._token_path = urlparse(str(doc["token_endpoint"])).path.lstrip("/")
        return self._token_path

    async def token(self) -> str:
        async with self._lock:
            if self._token and time.monotonic() < self._token_expires_at:
                return self._token
            path = await self._token_endpoint()
            form = urlencode({
                "grant_type": "client_credentials",
                "client_id": self._settings.client_id,
                "client_secret": await self._client_secret(),
                "audience": "bookkeeping",
                "scope": "bookkeeping:read",
            }).encode()
            status, body = await self._invoke(self._settings.auth_app_id, path, verb="POST", data=form,
                                              content_type="application/x-www-form-urlencoded")
            if status != 200 or not isinstance(body, dict) or "access_token" not in body:
                error = body.get("error") if isinstance(body, dict) else None
                raise DependencyError(f"auth's token endpoint answered {status} {error or ''}".strip(), status)
            self._token = str(body["access_token"])
            # Renew a little early so that a token never expires in flight.
            self._token_expires_at = time.monotonic() + max(int(body.get("expires_in", 60)) - 30, 1)
            log.info("token obtained", extra={"fields": {
                "oauth.client_id": self._settings.client_id, "oauth.scope": body.get("scope"),
                "oauth.expires_in_s": body.get("expires_in")}})
            return self._token

    def forget_token(self) -> None:
        self._token = None

    async def account_id(self, code: str, token: str) -> str | None:
        """The id of the account with `code` (GET /v1/accounts?code=), None when there is none.

        Ids never change, so each is asked once.
        """
        if code in self._account_ids:
            return self._account_ids[code]
        status, body = await self._invoke(self._settings.bookkeeping_app_id,
                                          "v1/accounts", verb="GET", query=(("code", code),),
                                          headers=(("authorization", f"Bearer {token}"),))
        if status == 401:
            self.forget_token()
        items = body.get("items") if isinstance(body, dict) else None
        if status != 200 or not isinstance(items, list):
            problem = body.get("code") if isinstance(body, dict) else None
            raise DependencyError(f"bookkeeping's account lookup answered {status} {problem or ''}".strip(), status)
        if not items:
            return None
        account_id = str(uuid.UUID(str(items[0]["id"])))
        self._account_ids[code] = account_id
        return account_id

    async def balance(self, account_code: str) -> Balance | None:
        """The account's balance; None when bookkeeping does not know the account (yet)."""
        token = await self.token()
        account_id = await self.account_id(account_code, token)
        if account_id is None:
            return None
        status, body = await self._invoke(self._settings.bookkeeping_app_id,
                                          f"v1/accounts/{account_id}/balance", verb="GET",
                                          headers=(("authorization", f"Bearer {token}"),))
        if status == 404:
            return None
        if status == 401:
            self.forget_token()
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("balance"), int):
            code = body.get("code") if isinstance(body, dict) else None
            raise DependencyError(f"bookkeeping's balance answered {status} {code or ''}".strip(), status)
        return Balance(account_code=account_code, account_id=account_id, currency=body.get("currency"),
                       balance=body["balance"], normal_balance=body.get("normal_balance"),
                       as_of_sequence=body.get("as_of_sequence"))
