"""The event contracts: `contracts/events/<type>.schema.json`, and the CloudEvent envelope as delivered.

Only what `contracts/` says is used here: the `type` names the schema file,
the event's payload is the CloudEvent's `data`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker


class EnvelopeError(ValueError):
    """The delivery is not a CloudEvent with a JSON object as data."""


@dataclass(frozen=True)
class Delivery:
    id: str
    source: str
    type: str
    subject: str | None
    data: dict[str, Any]


def parse_envelope(body: Any) -> Delivery:
    """The CloudEvent Dapr delivered (structured mode). `data` may arrive as a
    JSON object or, when the publisher's content type is not JSON, as a
    string holding JSON: both are accepted (gap noted in README.md)."""
    if not isinstance(body, dict):
        raise EnvelopeError("the delivery is not a JSON object")
    for name in ("id", "source", "type"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise EnvelopeError(f"the CloudEvent has no `{name}`")
    data = body.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise EnvelopeError("the CloudEvent's data is a string that is not JSON") from e
    if not isinstance(data, dict):
        raise EnvelopeError("the CloudEvent's data is not a JSON object")
    subject = body.get("subject")
    return Delivery(
        id=body["id"],
        source=body["source"],
        type=body["type"],
        subject=subject if isinstance(subject, str) else None,
        data=data,
    )


class EventSchemas:
    """Validators for the event types this service consumes, loaded at start-up
    so that a missing or broken schema stops the service, not an event."""

    def __init__(self, events_dir: Path, types: tuple[str, ...]):
        self._validators: dict[str, Draft202012Validator] = {}
        for event_type in types:
            path = events_dir / f"{event_type}.schema.json"
            schema = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
            self._validators[event_type] = Draft202012Validator(schema, format_checker=FormatChecker())

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._validators)

    def errors(self, event_type: str, data: dict[str, Any]) -> list[str]:
        """Every way `data` breaks its schema, as `path: message`; empty when valid."""
        validator = self._validators[event_type]
        found = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found]
