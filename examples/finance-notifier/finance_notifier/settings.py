"""Typed settings, read once from the environment (FINANCE_NOTIFIER_*), checked at start-up.

The sidecar's own variables (DAPR_HTTP_PORT, DAPR_GRPC_PORT, DAPR_API_TOKEN,
APP_API_TOKEN) are read by the Dapr SDK and by the app-token check, as on
every other service of the platform.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_REPO = Path(__file__).resolve().parents[3]


class SettingsError(ValueError):
    """A setting is missing or malformed; the service refuses to start."""


@dataclass(frozen=True)
class Settings:
    app_id: str
    app_port: int
    app_host: str
    pubsub_name: str
    topic: str
    contracts_dir: Path
    client_id: str
    secret_store: str
    secret_key: str
    auth_app_id: str
    bookkeeping_app_id: str
    # Events older than this are validated and acknowledged without a notice:
    # a new consumer group replays the whole stream (see README.md).
    max_notice_age_s: int
    sidecar_timeout_s: int
    app_api_token: str | None = field(repr=False, default=None)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)

        def get(name: str, default: str) -> str:
            return env.get(f"FINANCE_NOTIFIER_{name}", default)

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = get(name, str(default))
            try:
                value = int(raw)
            except ValueError as e:
                raise SettingsError(f"FINANCE_NOTIFIER_{name} must be an integer, got {raw!r}") from e
            if not low <= value <= high:
                raise SettingsError(f"FINANCE_NOTIFIER_{name} must be in [{low}, {high}], got {value}")
            return value

        contracts = Path(get("CONTRACTS_DIR", str(_REPO / "contracts")))
        if not (contracts / "events").is_dir():
            raise SettingsError(f"FINANCE_NOTIFIER_CONTRACTS_DIR has no events/ folder: {contracts}")
        settings = cls(
            app_id=get("APP_ID", "finance-notifier"),
            app_port=integer("APP_PORT", 8030, 1, 65535),
            app_host=get("APP_HOST", "127.0.0.1"),
            pubsub_name=get("PUBSUB", "pubsub"),
            topic=get("TOPIC", "payments"),
            contracts_dir=contracts,
            client_id=get("CLIENT_ID", "finance-notifier"),
            secret_store=get("SECRET_STORE", "platform-secrets"),
            secret_key=get("SECRET_KEY", "FINANCE_NOTIFIER_CLIENT_SECRET"),
            auth_app_id=get("AUTH_APP_ID", "auth"),
            bookkeeping_app_id=get("BOOKKEEPING_APP_ID", "bookkeeping"),
            max_notice_age_s=integer("MAX_NOTICE_AGE_S", 600, 0, 7 * 86400),
            sidecar_timeout_s=integer("SIDECAR_TIMEOUT_S", 5, 1, 60),
            app_api_token=env.get("APP_API_TOKEN") or None,
        )
        for name in ("app_id", "pubsub_name", "topic", "client_id", "secret_store", "secret_key"):
            if not getattr(settings, name):
                raise SettingsError(f"{name} must not be empty")
        return settings
