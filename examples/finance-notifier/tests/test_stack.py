"""End to end against the running platform (`make example-test`: under the stack lock, after `make up`).

Starts finance-notifier with its own daprd (run.sh), creates a payment with a
test card, confirms it and refunds part of it through the platform's public
APIs (the edge gateway), then reads the notifier's JSON log: both events
arrived, validated against their schemas, and each brought a balance read
from bookkeeping with the notifier's own token. Also proves the refusals
around it: the sidecar's accessControl and the app token.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.stack
if os.environ.get("FINANCE_NOTIFIER_E2E") != "1":
    pytest.skip("needs the running platform: make example-test", allow_module_level=True)

HERE = Path(__file__).resolve().parents[1]
GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")
ADMIN_SECRET = os.environ.get("ADMIN_CLIENT_SECRET", "local-only-admin-secret")
TEST_CARD = "4242424242424242"  # contracts/openapi/psp-sandbox.yaml: authorized
E2E_CLIENT = "finance-notifier-e2e"
WAIT_S = float(os.environ.get("FINANCE_NOTIFIER_E2E_WAIT_S", "90"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(client_id: str, secret: str, scope: str, audience: str) -> str:
    resp = requests.post(f"{GATEWAY}/auth/oauth2/token", auth=(client_id, secret), timeout=10,
                         data={"grant_type": "client_credentials", "scope": scope, "audience": audience})
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def operator_secret() -> str:
    """A client of the test's own for payments (created once, its secret reissued on every run)."""
    admin = {"Authorization": f"Bearer {token('platform-admin', ADMIN_SECRET, 'auth:admin', 'auth')}"}
    resp = requests.post(f"{GATEWAY}/auth/admin/clients", headers=admin, timeout=10, json={
        "client_id": E2E_CLIENT, "name": "finance-notifier end-to-end test",
        "grant_types": ["client_credentials"], "allowed_scopes": ["payments:read", "payments:write"],
        "allowed_audiences": ["payments"]})
    if resp.status_code == 409:
        resp = requests.post(f"{GATEWAY}/auth/admin/clients/{E2E_CLIENT}/secret", headers=admin, timeout=10)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["client_secret"]


def wait_for(what: str, probe, timeout_s: float, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: run.sh exited with {proc.returncode}")
        result = probe()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"{what}: not within {timeout_s} s")


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 300
    except requests.RequestException:
        return False


class Notifier:
    def __init__(self, tmp: Path):
        self.ports = {name: free_port() for name in ("app", "http", "grpc", "metrics")}
        self.dapr_token = secrets.token_urlsafe(32)
        self.app_token = secrets.token_urlsafe(32)
        self.log_dir = tmp
        self.log = tmp / "finance-notifier.log"
        self.proc: subprocess.Popen | None = None

    def start(self):
        env = {**os.environ,
               "FINANCE_NOTIFIER_APP_PORT": str(self.ports["app"]),
               "FINANCE_NOTIFIER_DAPR_HTTP_PORT": str(self.ports["http"]),
               "FINANCE_NOTIFIER_DAPR_GRPC_PORT": str(self.ports["grpc"]),
               "FINANCE_NOTIFIER_METRICS_PORT": str(self.ports["metrics"]),
               "FINANCE_NOTIFIER_LOG_DIR": str(self.log_dir),
               "FINANCE_NOTIFIER_DAPR_API_TOKEN": self.dapr_token,
               "FINANCE_NOTIFIER_APP_API_TOKEN": self.app_token}
        self.proc = subprocess.Popen([str(HERE / "run.sh")], env=env, start_new_session=True)
        wait_for("the notifier's daprd", lambda: http_ok(f"{self.sidecar}/v1.0/healthz"), 60, self.proc)
        wait_for("the notifier", lambda: http_ok(f"http://127.0.0.1:{self.ports['app']}/healthz"), 30, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    @property
    def sidecar(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def lines(self) -> list[dict]:
        out = []
        for raw in self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []:
            try:
                out.append(json.loads(raw))
            except ValueError:
                pass  # a line not from the JSON logger (e.g. a crash trace) is no notice
        return out


@pytest.fixture(scope="module")
def notifier(tmp_path_factory):
    subprocess.run([str(HERE / "issue-secret.sh")], check=True, timeout=60)
    n = Notifier(tmp_path_factory.mktemp("finance-notifier"))
    try:
        n.start()
        yield n
    finally:
        n.stop()
        if n.log.exists():
            print(f"--- last lines of {n.log}")
            print("\n".join(n.log.read_text().splitlines()[-30:]))


def test_payment_and_refund_events_are_validated_and_bring_a_balance(notifier):
    pay = {"Authorization": f"Bearer {token(E2E_CLIENT, operator_secret(), 'payments:read payments:write', 'payments')}"}
    reference = f"finance-notifier-e2e-{uuid.uuid4()}"

    created = requests.post(f"{GATEWAY}/payments/v1/payments", timeout=15,
                            headers={**pay, "Idempotency-Key": str(uuid.uuid4())},
                            json={"amount": 1234, "currency": "EUR", "customer_reference": reference})
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    confirmed = requests.post(f"{GATEWAY}/payments/v1/payments/{payment_id}/confirm", timeout=30,
                              headers={**pay, "Idempotency-Key": str(uuid.uuid4())},
                              json={"card_number": TEST_CARD})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "succeeded", confirmed.text
    refunded = requests.post(f"{GATEWAY}/payments/v1/payments/{payment_id}/refunds", timeout=30,
                             headers={**pay, "Idempotency-Key": str(uuid.uuid4())}, json={"amount": 500})
    assert refunded.status_code == 201, refunded.text
    refund_id = refunded.json()["id"]

    def notices():
        found = {}
        for line in notifier.lines():
            if line.get("message") == "notice" and line.get("payment_id") == payment_id:
                found[line["event.type"]] = line
        return found if len(found) == 2 else None

    found = wait_for("notices of both events", notices, WAIT_S, notifier.proc)
    paid, refund = found["payments.payment.succeeded"], found["payments.refund.succeeded"]
    assert paid["event.valid"] is True and refund["event.valid"] is True
    assert paid["amount"] == 1234 and paid["currency"] == "EUR"
    assert refund["refund_id"] == refund_id and refund["amount"] == 500
    # The balances came from bookkeeping: the accounts the chart of accounts names,
    # each answered with an integer balance in the event's currency.
    assert paid["account.code"] == "revenue:sales:eur"
    assert refund["account.code"] == "revenue:refunds:eur"
    for notice in (paid, refund):
        assert isinstance(notice["account.balance"], int)
        assert notice["account.id"] == str(uuid.UUID(notice["account.id"]))
    # The notifier got its token once, by client credentials, for bookkeeping:read only.
    tokens = [l for l in notifier.lines() if l.get("message") == "token obtained"]
    assert tokens and tokens[0]["oauth.client_id"] == "finance-notifier"
    assert tokens[0]["oauth.scope"] == "bookkeeping:read"


def test_its_sidecar_may_reach_only_what_its_access_control_allows(notifier):
    headers = {"dapr-api-token": notifier.dapr_token}
    # bookkeeping lets it GET accounts only: a write is refused by bookkeeping's sidecar.
    resp = requests.post(f"{notifier.sidecar}/v1.0/invoke/bookkeeping/method/v1/entries",
                         headers=headers, json={}, timeout=10)
    assert resp.status_code == 403, resp.text
    # payments has no policy for it at all.
    resp = requests.get(f"{notifier.sidecar}/v1.0/invoke/payments/method/v1/payments",
                        headers=headers, timeout=10)
    assert resp.status_code == 403, resp.text
    # auth's admin API is not among its operations.
    resp = requests.post(f"{notifier.sidecar}/v1.0/invoke/auth/method/admin/clients/finance-notifier/secret",
                         headers=headers, timeout=10)
    assert resp.status_code == 403, resp.text
    # Nobody may invoke finance-notifier: here payments' sidecar (with the stack's
    # own API token) is refused by the notifier's sidecar. (Invoking itself
    # through its own sidecar is not checked by daprd's accessControl: measured.)
    stack_tokens = dict(line.split("=", 1) for line in
                        (HERE.parents[1] / ".run" / "tokens.env").read_text().split())
    resp = requests.get("http://127.0.0.1:3502/v1.0/invoke/finance-notifier/method/healthz",
                        headers={"dapr-api-token": stack_tokens["DAPR_API_TOKEN"]}, timeout=10)
    assert resp.status_code == 403, resp.text
    # Its sidecar API needs its token, and its secrets API gives nothing but its own secret.
    assert requests.get(f"{notifier.sidecar}/v1.0/metadata", timeout=5).status_code == 401
    resp = requests.get(f"{notifier.sidecar}/v1.0/secrets/platform-secrets/REDIS_PASSWORD",
                        headers=headers, timeout=5)
    assert resp.status_code == 403, resp.text


def test_its_dapr_facing_route_refuses_callers_without_the_app_token(notifier):
    url = f"http://127.0.0.1:{notifier.ports['app']}/events/payments"
    before = len(notifier.lines())
    resp = requests.post(url, json={"id": "x", "source": "payments", "type": "payments.payment.succeeded",
                                    "data": {}}, timeout=5)
    assert resp.status_code == 401 and resp.json()["code"] == "unauthorized"
    # What its sidecar would deliver, but schema-invalid: dropped, with the reasons logged.
    resp = requests.post(url, headers={"dapr-api-token": notifier.app_token}, timeout=5, json={
        "id": f"e2e-{uuid.uuid4()}", "source": "payments", "type": "payments.payment.succeeded",
        "specversion": "1.0", "data": {"payment_id": "p", "amount": -1, "currency": "EUR"}})
    assert resp.json() == {"status": "DROP"}
    dropped = [l for l in notifier.lines()[before:] if l.get("message") == "event dropped: it breaks its schema"]
    assert dropped and any("amount" in e for e in dropped[-1]["event.errors"])
