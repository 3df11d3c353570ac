"""The sidecar client's account lookup: by code through bookkeeping, asked once per code."""

import asyncio

import pytest

from finance_notifier.settings import Settings
from finance_notifier.sidecar import DependencyError, Sidecar

ACCOUNT = "0b8f9a1e-3c2d-5e4f-8a9b-1c2d3e4f5a6b"


class ScriptedSidecar(Sidecar):
    """The real client with its invocations answered from a script and recorded."""

    def __init__(self, answers):
        super().__init__(Settings.from_env({}))
        self.answers = answers
        self.calls = []

    async def token(self):
        return "token"

    async def _invoke(self, app_id, method, *, verb, data=b"", content_type=None, headers=(), query=None):
        self.calls.append((app_id, verb, method, query))
        return self.answers[method]


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_balance_looks_the_account_up_by_code_once():
    sidecar = ScriptedSidecar({
        "v1/accounts": (200, {"items": [{"id": ACCOUNT, "code": "revenue:sales:eur"}], "next": None}),
        f"v1/accounts/{ACCOUNT}/balance": (200, {"balance": -500, "currency": "EUR",
                                                 "normal_balance": 500, "as_of_sequence": 3}),
    })
    first = run(sidecar.balance("revenue:sales:eur"))
    second = run(sidecar.balance("revenue:sales:eur"))
    assert first.account_id == ACCOUNT and first.normal_balance == 500
    assert second == first
    lookups = [c for c in sidecar.calls if c[2] == "v1/accounts"]
    assert lookups == [("bookkeeping", "GET", "v1/accounts", (("code", "revenue:sales:eur"),))]


def test_an_unknown_code_has_no_balance():
    sidecar = ScriptedSidecar({"v1/accounts": (200, {"items": [], "next": None})})
    assert run(sidecar.balance("revenue:sales:xyz")) is None
    assert all(c[2] == "v1/accounts" for c in sidecar.calls)


@pytest.mark.parametrize("answer", [(503, {"code": "dependency_unavailable"}), (200, {"unexpected": 1})])
def test_a_failed_lookup_is_a_dependency_error(answer):
    sidecar = ScriptedSidecar({"v1/accounts": answer})
    with pytest.raises(DependencyError):
        run(sidecar.balance("revenue:sales:eur"))
