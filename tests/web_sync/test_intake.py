"""Reading bodies before their signature is checked, against a real server: a client that
hangs up mid-body is logged at INFO (never a 500 or a traceback), and the bytes held by
unverified bodies stay within the server's budget (503 server_busy with Retry-After)."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from neonpay import PaymentStage
from neonpay.web_sync import codec
from neonpay.web_sync.intake import MAX_UNVERIFIED_BYTES, BodyBudget, budget_for

from .conftest import Served
from .helpers import signed

CHANGES = "/sync/changes"
_MIB = 1024 * 1024


class Recorder(BodyBudget):
    """A budget that remembers the most bytes it ever held."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.peak = 0
        self.changed = asyncio.Event()

    def take(self, size: int) -> bool:
        taken = super().take(size)
        self.peak = max(self.peak, self.held)
        self.changed.set()
        return taken

    def give_back(self, size: int) -> None:
        super().give_back(size)
        self.changed.set()

    async def until(self, condition: Callable[[int], bool]) -> None:
        """Wait (at most 10 s) until ``condition(held)`` is true."""
        while not condition(self.held):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


class Refusals(logging.Handler):
    """The sync server's log records; ``seen`` is set when a refusal is logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if "refused" in record.getMessage():
            self.seen.set()


@pytest.fixture
def refusals() -> Iterator[Refusals]:
    handler = Refusals()
    library = logging.getLogger("neonpay.web_sync")
    old_level = library.level
    library.setLevel(logging.DEBUG)
    library.addHandler(handler)
    yield handler
    library.removeHandler(handler)
    library.setLevel(old_level)


def install(served: Served, limit: int) -> Recorder:
    budget = Recorder(limit)
    from neonpay.web_sync import intake

    intake._BUDGETS[served.server.app] = budget
    return budget


async def open_upload(served: Served, size: int) -> asyncio.StreamWriter:
    """A connection that has announced a push of ``size`` bytes and sent no body yet."""
    _, writer = await asyncio.open_connection("127.0.0.1", served.server.port)
    writer.write(
        b"POST /sync/changes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {size}\r\n\r\n".encode()
    )
    await writer.drain()
    return writer


async def test_a_hang_up_mid_body_is_logged_at_info(served: Served, refusals: Refusals) -> None:
    writer = await open_upload(served, 100_000)
    writer.write(b"x" * 1000)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(refusals.seen.wait(), 10)
    assert not [r for r in refusals.records if r.levelno >= logging.ERROR]
    assert all(r.exc_info is None for r in refusals.records)
    refused = [r for r in refusals.records if "refused" in r.getMessage()]
    assert refused[0].levelno == logging.INFO
    assert "400 client_gone" in refused[0].getMessage()
    assert budget_for(served.server.app).held == 0


async def test_unverified_bodies_stay_within_the_budget(
    served: Served, http: aiohttp.ClientSession, refusals: Refusals
) -> None:
    budget = install(served, 8 * _MIB)
    body = b"[" + b" " * (4 * _MIB - 2) + b"]"  # unsigned, 4 MiB each

    async def upload() -> tuple[int, str | None]:
        async with http.post(
            served.origin + CHANGES,
            data=io.BytesIO(body),
            headers={"Content-Type": "application/json"},
        ) as answer:
            await answer.read()
            return answer.status, answer.headers.get("Retry-After")

    answers = await asyncio.gather(*(upload() for _ in range(20)), return_exceptions=True)
    statuses = [a[0] for a in answers if isinstance(a, tuple)]
    assert budget.peak <= 8 * _MIB
    assert all(status in (401, 503) for status in statuses), statuses
    assert 503 in statuses
    assert all(a[1] == "1" for a in answers if isinstance(a, tuple) and a[0] == 503)
    assert not [r for r in refusals.records if r.levelno >= logging.ERROR]
    assert budget.held == 0
    # the server still takes a signed push
    record = {
        "kind": "payment_stage",
        "key": "after",
        "fields": PaymentStage("After", "d", price=5).to_fields(),
        "version": {"node-client": 1},
        "hlc": "000000000000001.000001.node-client",
        "field_hlcs": {},
        "deleted": False,
    }
    push = codec.dump({"records": [record]})
    headers = {**signed("POST", CHANGES, push), "Content-Type": "application/json"}
    async with http.post(served.origin + CHANGES, data=push, headers=headers) as answer:
        assert answer.status == 200


async def test_a_body_over_the_budget_while_another_is_held_is_503(
    served: Served, http: aiohttp.ClientSession
) -> None:
    budget = install(served, 256 * 1024)
    holder = await open_upload(served, 300 * 1024)
    holder.write(b"x" * 200 * 1024)
    await holder.drain()
    await budget.until(lambda held: held >= 200 * 1024)  # the first body is being held
    async with http.post(
        served.origin + CHANGES,
        data=b"[" + b" " * 100 * 1024 + b"]",
        headers={"Content-Type": "application/json"},
    ) as answer:
        assert answer.status == 503
        assert answer.headers["Retry-After"] == "1"
        assert (await answer.json())["error"]["code"] == "server_busy"
    holder.close()
    await holder.wait_closed()
    await budget.until(lambda held: held == 0)  # the hung-up body is released


def test_the_default_budget_holds_two_largest_bodies() -> None:
    from neonpay.web_sync.limits import DEFAULT_LIMITS

    assert 2 * DEFAULT_LIMITS.max_body == MAX_UNVERIFIED_BYTES
    with pytest.raises(ValueError, match="positive"):
        BodyBudget(0)
