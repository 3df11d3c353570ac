"""Routes in-process: who may call each, and the answers Dapr gets for each kind of event."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from finance_notifier.app import build
from finance_notifier.contracts import EventSchemas
from finance_notifier.notices import HANDLED_TYPES, Notifier, Outcome
from finance_notifier.settings import Settings, SettingsError

TOKEN = "app-token-for-tests"


class NoSidecar:
    """Fails the test if a route reaches for the sidecar: these cases must decide without it."""

    async def balance(self, code):
        raise AssertionError(f"the sidecar was called for {code}")


class RecordingNotifier(Notifier):
    def __init__(self, settings):
        super().__init__(EventSchemas(settings.contracts_dir / "events", HANDLED_TYPES), NoSidecar(),
                         settings.max_notice_age_s)
        self.handled = []

    async def handle(self, body):
        self.handled.append(body)
        return await super().handle(body)


@pytest.fixture
def app():
    settings = Settings.from_env({"APP_API_TOKEN": TOKEN})
    notifier = RecordingNotifier(settings)
    return TestClient(build(settings, notifier)), notifier


def event(event_type="payments.payment.succeeded", **data):
    payload = {"payment_id": "p1", "amount": 100, "currency": "EUR", "customer_reference": "c",
               "occurred_at": datetime.now(timezone.utc).isoformat()}
    payload.update(data)
    return {"id": "e1", "source": "payments", "type": event_type, "specversion": "1.0", "data": payload}


def test_healthz_answers_anyone(app):
    client, _ = app
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("method,path", [("GET", "/dapr/subscribe"), ("POST", "/events/payments")])
@pytest.mark.parametrize("headers", [{}, {"dapr-api-token": "wrong"}])
def test_dapr_facing_routes_refuse_without_the_app_token(app, method, path, headers):
    client, notifier = app
    resp = client.request(method, path, headers=headers, json=event())
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "unauthorized"
    assert notifier.handled == []


def test_without_a_configured_token_every_dapr_facing_call_is_refused():
    settings = Settings.from_env({})
    client = TestClient(build(settings, RecordingNotifier(settings)))
    assert client.get("/dapr/subscribe", headers={"dapr-api-token": ""}).status_code == 401


def test_subscription_is_the_payments_topic(app):
    client, _ = app
    subs = client.get("/dapr/subscribe", headers={"dapr-api-token": TOKEN}).json()
    assert subs == [{"pubsubname": "pubsub", "topic": "payments", "route": "/events/payments", "metadata": {}}]


@pytest.mark.parametrize("body,outcome", [
    (event("payments.payment.created"), "SUCCESS"),            # not ours: acknowledged
    (event(currency="eur"), "DROP"),                            # breaks its schema
    (event("payments.refund.succeeded"), "DROP"),               # refund without refund_id
    (event(occurred_at=(datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()), "SUCCESS"),  # replayed
    ({"not": "a cloud event"}, "DROP"),
])
def test_answers_without_the_sidecar(app, body, outcome):
    client, notifier = app
    resp = client.post("/events/payments", headers={"dapr-api-token": TOKEN}, json=body)
    assert resp.status_code == 200
    assert resp.json() == {"status": outcome}
    assert len(notifier.handled) == 1


def test_unknown_routes_are_problems(app):
    client, _ = app
    resp = client.get("/nope")
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"


@pytest.mark.parametrize("env", [
    {"FINANCE_NOTIFIER_APP_PORT": "x"},
    {"FINANCE_NOTIFIER_APP_PORT": "0"},
    {"FINANCE_NOTIFIER_CONTRACTS_DIR": "/nonexistent"},
    {"FINANCE_NOTIFIER_TOPIC": ""},
])
def test_bad_settings_stop_the_start(env):
    with pytest.raises(SettingsError):
        Settings.from_env(env)


class CountingSidecar:
    def __init__(self):
        self.calls = []

    async def balance(self, code):
        from finance_notifier.sidecar import Balance
        self.calls.append(code)
        return Balance(account_code=code, account_id="a", currency="EUR", balance=-100,
                       normal_balance=100, as_of_sequence=7)


def test_a_redelivered_event_gets_no_second_notice():
    settings = Settings.from_env({})
    sidecar = CountingSidecar()
    notifier = Notifier(EventSchemas(settings.contracts_dir / "events", HANDLED_TYPES), sidecar,
                        settings.max_notice_age_s)
    body = event()
    assert asyncio.run(notifier.handle(body)) is Outcome.SUCCESS
    assert asyncio.run(notifier.handle(body)) is Outcome.SUCCESS
    assert sidecar.calls == ["revenue:sales:eur"]
    other = {**body, "id": "e2"}
    assert asyncio.run(notifier.handle(other)) is Outcome.SUCCESS
    assert sidecar.calls == ["revenue:sales:eur", "revenue:sales:eur"]
