"""The event contracts as this service reads them: valid events pass, every kind of break is found."""

import copy
import json

import pytest

from finance_notifier.contracts import EnvelopeError, EventSchemas, parse_envelope
from finance_notifier.notices import HANDLED_TYPES
from finance_notifier.settings import Settings

SUCCEEDED = {
    "payment_id": "6f1c2b1e-0000-4000-8000-000000000001",
    "amount": 1234,
    "currency": "EUR",
    "customer_reference": "cust-1",
    "occurred_at": "2026-12-07T08:00:00Z",
}
REFUNDED = {**SUCCEEDED, "refund_id": "re_1", "amount": 500}


@pytest.fixture(scope="module")
def schemas():
    return EventSchemas(Settings.from_env({}).contracts_dir / "events", HANDLED_TYPES)


def test_both_handled_types_have_a_schema(schemas):
    assert schemas.types == {"payments.payment.succeeded", "payments.refund.succeeded"}


@pytest.mark.parametrize("event_type,data", [
    ("payments.payment.succeeded", SUCCEEDED),
    ("payments.refund.succeeded", REFUNDED),
])
def test_valid_events_pass(schemas, event_type, data):
    assert schemas.errors(event_type, data) == []


@pytest.mark.parametrize("mutate,where", [
    (lambda d: d.pop("currency"), "(root)"),
    (lambda d: d.update(currency="eur"), "currency"),
    (lambda d: d.update(amount=0), "amount"),
    (lambda d: d.update(amount="12"), "amount"),
    (lambda d: d.update(occurred_at="yesterday"), "occurred_at"),
    (lambda d: d.update(unexpected=True), "(root)"),
    (lambda d: d.update(customer_reference=""), "customer_reference"),
])
def test_each_break_of_the_schema_is_reported(schemas, mutate, where):
    data = copy.deepcopy(SUCCEEDED)
    mutate(data)
    errors = schemas.errors("payments.payment.succeeded", data)
    assert errors and errors[0].startswith(f"{where}:"), errors


def test_a_refund_needs_its_refund_id(schemas):
    data = {k: v for k, v in REFUNDED.items() if k != "refund_id"}
    assert any("refund_id" in e for e in schemas.errors("payments.refund.succeeded", data))


def test_envelope_accepts_data_as_object_or_json_text():
    body = {"id": "1", "source": "payments", "type": "payments.payment.succeeded", "data": SUCCEEDED}
    assert parse_envelope(body).data == SUCCEEDED
    as_text = {**body, "data": json.dumps(SUCCEEDED)}
    assert parse_envelope(as_text).data == SUCCEEDED


@pytest.mark.parametrize("body", [
    None, [], "x",
    {"source": "payments", "type": "t", "data": {}},
    {"id": "1", "source": "payments", "type": "t", "data": "not json"},
    {"id": "1", "source": "payments", "type": "t", "data": [1]},
])
def test_envelope_refuses_what_is_not_a_cloud_event_with_an_object(body):
    with pytest.raises(EnvelopeError):
        parse_envelope(body)
