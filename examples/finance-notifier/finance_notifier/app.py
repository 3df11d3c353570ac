"""The HTTP side: thin routes over the notifier, and who may call each.

| route | who may call it |
|---|---|
| GET /healthz | anyone on loopback (liveness; no data) |
| GET /dapr/subscribe, POST /events/payments | only its own daprd: header `dapr-api-token` = APP_API_TOKEN, else 401 |

Errors are `application/problem+json` with a stable `code`.
"""

from __future__ import annotations

import hmac
import logging

from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .contracts import EventSchemas
from .notices import HANDLED_TYPES, Notifier
from .settings import Settings
from .sidecar import Sidecar

log = logging.getLogger("finance_notifier.app")

_DAPR_FACING = ("/dapr/", "/events/")


def problem(status: int, code: str, title: str, detail: str | None = None) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def build(settings: Settings, notifier: Notifier | None = None) -> FastAPI:
    if notifier is None:
        schemas = EventSchemas(settings.contracts_dir / "events", HANDLED_TYPES)
        notifier = Notifier(schemas, Sidecar(settings), settings.max_notice_age_s)
    app = FastAPI(title="finance-notifier", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def only_the_sidecar(request: Request, call_next):
        if request.url.path.startswith(_DAPR_FACING):
            expected = settings.app_api_token
            given = request.headers.get("dapr-api-token", "")
            if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
                log.warning("refused: Dapr-facing route without the app token",
                            extra={"fields": {"http.path": request.url.path}})
                return problem(401, "unauthorized", "Unauthorized",
                               "This route answers its sidecar only (dapr-api-token).")
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError):
        return problem(400, "invalid_request", "Bad request", str(exc.errors()[:3]))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    dapr_app = DaprApp(app)

    @dapr_app.subscribe(pubsub=settings.pubsub_name, topic=settings.topic, route="/events/payments")
    async def payments_event(request: Request):
        try:
            body = await request.json()
        except ValueError:
            body = None
        outcome = await notifier.handle(body)
        return {"status": outcome.value}

    return app
