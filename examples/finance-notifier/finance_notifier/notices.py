"""From a delivered event to Dapr's answer: validate, then notice the ledger balance it moved.

Answers (Dapr pub/sub): SUCCESS when done, when the event is not one this
service handles (other `payments.*` types share the topic), or when it is
too old to notice; RETRY when a dependency failed or bookkeeping does not
know the account yet (it books the same event concurrently); DROP when the
event breaks its contract, which no retry can mend. The subscription has no
dead-letter topic: see README.md.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from .contracts import EnvelopeError, EventSchemas, parse_envelope
from .sidecar import DependencyError, Sidecar

log = logging.getLogger("finance_notifier.notices")

HANDLED_TYPES = ("payments.payment.succeeded", "payments.refund.succeeded")

# docs/chart-of-accounts.md: the account each event moves in the notice's currency.
_ACCOUNT = {
    "payments.payment.succeeded": "revenue:sales:{cur}",
    "payments.refund.succeeded": "revenue:refunds:{cur}",
}


class Outcome(str, Enum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


class Notifier:
    # Deliveries are at least once: the (source, id) of the last notices
    # given, so that a redelivery gives none twice. In memory only: after a
    # restart a redelivered event may be noticed again (README.md).
    _REMEMBERED = 10_000

    def __init__(self, schemas: EventSchemas, sidecar: Sidecar, max_notice_age_s: int):
        self._schemas = schemas
        self._sidecar = sidecar
        self._max_age_s = max_notice_age_s
        self._noticed: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def handle(self, body: Any) -> Outcome:
        try:
            event = parse_envelope(body)
        except EnvelopeError as e:
            log.error("event dropped: not a CloudEvent with JSON data",
                      extra={"fields": {"event.error": str(e)}})
            return Outcome.DROP
        fields = {"event.id": event.id, "event.source": event.source, "event.type": event.type}
        if event.type not in self._schemas.types:
            log.debug("event ignored: not a type this service handles", extra={"fields": fields})
            return Outcome.SUCCESS
        errors = self._schemas.errors(event.type, event.data)
        if errors:
            log.error("event dropped: it breaks its schema",
                      extra={"fields": {**fields, "event.valid": False, "event.errors": errors}})
            return Outcome.DROP
        data = event.data
        fields.update({"event.valid": True, "payment_id": data["payment_id"],
                       "refund_id": data.get("refund_id"), "amount": data["amount"],
                       "currency": data["currency"]})
        if (event.source, event.id) in self._noticed:
            log.info("event validated; already noticed (a redelivery)", extra={"fields": fields})
            return Outcome.SUCCESS
        age_s = _age_seconds(data["occurred_at"])
        if age_s > self._max_age_s:
            log.info("event validated; too old for a notice", extra={"fields": {**fields, "event.age_s": age_s}})
            return Outcome.SUCCESS
        code = _ACCOUNT[event.type].format(cur=data["currency"].lower())
        try:
            balance = await self._sidecar.balance(code)
        except DependencyError as e:
            log.warning("event to retry: a dependency failed",
                        extra={"fields": {**fields, "error": str(e), "http.status": e.status}})
            return Outcome.RETRY
        if balance is None:
            log.info("event to retry: bookkeeping does not know the account yet",
                     extra={"fields": {**fields, "account.code": code}})
            return Outcome.RETRY
        log.info("notice", extra={"fields": {
            **fields, "account.code": balance.account_code, "account.id": balance.account_id,
            "account.balance": balance.balance, "account.normal_balance": balance.normal_balance,
            "account.as_of_sequence": balance.as_of_sequence}})
        self._noticed[(event.source, event.id)] = None
        while len(self._noticed) > self._REMEMBERED:
            self._noticed.popitem(last=False)
        return Outcome.SUCCESS


def _age_seconds(occurred_at: str) -> float:
    # Valid by the schema's "date-time" format (RFC 3339); Python < 3.11
    # does not read a trailing Z, so normalise it.
    at = datetime.fromisoformat(occurred_at.replace("Z", "+00:00").replace("z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return round((datetime.now(timezone.utc) - at).total_seconds(), 3)
