"""``neonpay emulator send|messages|invoices|pay|refund|bots``: a person tries a bot by hand.

Real processes: a ``neonpay emulator`` on a free port of 127.0.0.1, a small aiogram shop
bot (``emulator_shop_bot.py``) polling it with its own SQLite store, and the console
script acting as the user.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neonpay import create_neonpay
from neonpay.cli.control_client import ControlFailed, call
from neonpay.cli.main import build_parser

from .emulator_shop_bot import GREETING, PRICE, THANK_YOU
from .helpers import CLI, free_port, neonpay_command

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"
BOT = "test_123456_bot"
USER = "42"
#: Seconds a process may take to start (the machine may be busy).
START_TIMEOUT = 60.0


@dataclass
class Shop:
    """The running emulator and bot."""

    url: str
    storage: str

    def payments(self) -> list[Any]:
        neonpay = create_neonpay(storage=self.storage)
        try:
            return list(neonpay.payments.list())
        finally:
            neonpay.close()


def _stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, then everything it printed (its pipes closed)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return out + err


def _wait_for_bot(url: str, bot_process: subprocess.Popen[str]) -> None:
    """Until the bot has called the emulator (bounded; fails early if the bot died)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if bot_process.poll() is not None:
            raise AssertionError(f"the bot exited: {bot_process.communicate()}")
        if any(b["username"] == BOT for b in call(url, "bots")["bots"]):
            return
        if time.monotonic() > deadline:
            raise AssertionError("the bot did not call the emulator in time")
        time.sleep(0.05)  # polling a condition with a bound, not a fixed wait


@pytest.fixture
def shop(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[Shop]:
    port = free_port()
    emulator = subprocess.Popen(  # noqa: S603 - our own console script
        [*neonpay_command(), "emulator", "--port", str(port)],
        cwd=tmp_path,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bot: subprocess.Popen[str] | None = None
    try:
        assert emulator.stdout is not None
        first = emulator.stdout.readline()  # blocks until the emulator listens (or dies)
        assert "listening on" in first, emulator.communicate()
        url = f"http://127.0.0.1:{port}"
        storage = f"sqlite:///{tmp_path / 'shop.db'}"
        bot = subprocess.Popen(  # noqa: S603 - this interpreter and our own test bot
            [
                sys.executable,
                str(Path(__file__).with_name("emulator_shop_bot.py")),
                "--api",
                url,
                "--token",
                TOKEN,
                "--storage",
                storage,
            ],
            cwd=tmp_path,
            env={k: v for k, v in cli_env.items() if k != "PYTHONWARNINGS"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_bot(url, bot)
        yield Shop(url, storage)
    finally:
        if bot is not None:
            _stop(bot)
        assert TOKEN not in _stop(emulator)


def _no_secret(*runs: Any) -> None:
    for run in runs:
        assert TOKEN not in run.stdout + run.stderr
        assert "Traceback" not in run.stderr


def test_send_start_and_read_the_reply(shop: Shop, cli: CLI) -> None:
    sent = cli("emulator", "send", "--url", shop.url, "--user", USER, "--wait", "30", "/start")
    assert sent.code == 0, sent.stderr
    assert f"@{BOT}: {GREETING}" in sent.stdout

    listed = cli("emulator", "messages", "--url", shop.url, "--bot", BOT, "--user", USER)
    assert listed.code == 0, listed.stderr
    assert GREETING in listed.stdout

    as_json = cli("emulator", "messages", "--url", shop.url, "--user", USER, "--json").json()
    assert [m["summary"] for m in as_json["messages"]] == [GREETING]

    bots = cli("emulator", "bots", "--url", shop.url, "--json").json()["bots"]
    assert [(b["username"], b["token"]) for b in bots] == [(BOT, "123456:AB…hi")]
    _no_secret(sent, listed)


def test_buy_pay_and_refund(shop: Shop, cli: CLI) -> None:
    url = ["--url", shop.url, "--bot", f"@{BOT}", "--user", USER]
    bought = cli("emulator", "send", *url, "--wait", "30", "/buy")
    assert bought.code == 0, bought.stderr
    assert f"invoice: Premium ({PRICE} XTR)" in bought.stdout

    invoices = cli("emulator", "invoices", *url, "--json").json()["invoices"]
    assert [(i["title"], i["amount"], i["paid"]) for i in invoices] == [("Premium", PRICE, False)]
    assert shop.payments() == []

    paid = cli("emulator", "pay", *url, "--invoice", str(invoices[0]["message_id"]), "--wait", "30")
    assert paid.code == 0, paid.stderr
    assert f"paid {PRICE} XTR for 'Premium'" in paid.stdout
    assert f"@{BOT}: {THANK_YOU}" in paid.stdout

    payments = shop.payments()
    assert [(p.user_id, p.amount, p.stage_id) for p in payments] == [(42, PRICE, "premium")]
    messages = cli("emulator", "messages", *url).stdout
    assert THANK_YOU in messages
    assert cli("emulator", "invoices", *url, "--json").json()["invoices"][0]["paid"] is True
    assert (
        cli("emulator", "bots", "--url", shop.url, "--json").json()["bots"][0]["star_balance"]
        == PRICE
    )

    refunded = cli("emulator", "refund", *url)
    assert refunded.code == 0, refunded.stderr
    assert f"refunded {PRICE} XTR to user 42" in refunded.stdout
    assert (
        cli("emulator", "bots", "--url", shop.url, "--json").json()["bots"][0]["star_balance"] == 0
    )
    again = cli("emulator", "refund", *url)
    assert again.code == 1
    assert again.stderr.strip() == f"error: user 42 has no payment to @{BOT} to refund"
    _no_secret(bought, paid, refunded, again)


def test_bad_input_is_refused_and_changes_nothing(shop: Shop, cli: CLI) -> None:
    url = ["--url", shop.url]
    assert cli("emulator", "send", *url, "--user", USER, "--wait", "30", "/buy").code == 0
    before_messages = cli("emulator", "messages", *url, "--user", USER, "--json").json()
    before_bots = cli("emulator", "bots", *url, "--json").json()

    cases = {
        "unknown bot": (
            ["send", *url, "--bot", "nobody_bot", "--user", USER, "hi"],
            1,
            f"error: no bot 'nobody_bot' (known: @{BOT} (123456))",
        ),
        "no invoice to that user": (
            ["pay", *url, "--user", "43"],
            1,
            f"error: @{BOT} has sent no invoice to user 43",
        ),
        "no such invoice": (
            ["pay", *url, "--user", USER, "--invoice", "999"],
            1,
            f"error: @{BOT} sent user 42 no invoice in message 999",
        ),
        "user id out of range": (
            ["send", *url, "--user", "99999999999999999999", "hi"],
            1,
            "error: user must be a whole number from 1 to 9007199254740991",
        ),
        "nothing to refund": (
            ["refund", *url, "--user", USER],
            1,
            f"error: user 42 has no payment to @{BOT} to refund",
        ),
    }
    for name, (args, code, message) in cases.items():
        run = cli("emulator", *args)
        assert (run.code, run.stderr.strip()) == (code, message), name
        assert run.stdout == "", name

    for args in (["send", *url, "--user", "0", "hi"], ["send", *url, "--user", "abc", "hi"]):
        usage = cli("emulator", *args)
        assert usage.code == 2
        assert "argument --user" in usage.stderr

    assert cli("emulator", "messages", *url, "--user", USER, "--json").json() == before_messages
    assert cli("emulator", "messages", *url, "--user", "43", "--json").json()["messages"] == []
    assert cli("emulator", "bots", *url, "--json").json() == before_bots
    assert shop.payments() == []


def test_no_emulator_at_the_url_is_one_line(cli: CLI) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = cli("emulator", "send", "--url", url, "--user", USER, "/start")
    assert run.code == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot reach the emulator at {url}")
    bad_url = cli("emulator", "bots", "--url", "127.0.0.1:8081")
    assert bad_url.code == 1
    assert "--url must be the emulator's address" in bad_url.stderr


def test_serve_is_the_same_as_no_action() -> None:
    parser = build_parser()
    plain = parser.parse_args(["emulator", "--port", "9001"])
    served = parser.parse_args(["emulator", "serve", "--port", "9001"])
    before = parser.parse_args(["emulator", "--port", "9001", "serve"])
    for args in (plain, served, before):
        assert (args.host, args.port, args.precheckout_timeout) == ("127.0.0.1", 9001, 10)
        assert args.handler is plain.handler


def test_client_reports_the_emulators_reason() -> None:
    with pytest.raises(ControlFailed, match="cannot reach"):
        call(f"http://127.0.0.1:{free_port()}", "bots")
