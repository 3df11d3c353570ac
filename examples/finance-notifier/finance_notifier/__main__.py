"""`python -m finance_notifier`: settings, JSON logs, then the HTTP server on loopback."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from . import app as app_module
from . import logs
from .settings import Settings, SettingsError


def main() -> int:
    logs.setup(os.environ.get("FINANCE_NOTIFIER_LOG_LEVEL", "INFO"))
    log = logging.getLogger("finance_notifier")
    try:
        settings = Settings.from_env()
        app = app_module.build(settings)
    except (SettingsError, OSError, ValueError) as e:
        log.error("refusing to start", extra={"fields": {"error": str(e)}})
        return 2
    if not settings.app_api_token:
        log.warning("APP_API_TOKEN is not set: every Dapr-facing route answers 401")
    log.info("starting", extra={"fields": {"app.id": settings.app_id, "app.port": settings.app_port,
                                           "pubsub": settings.pubsub_name, "topic": settings.topic}})
    uvicorn.run(app, host=settings.app_host, port=settings.app_port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
