"""The demo's script: edits on different bots, sync rounds that show what moved where, a
concurrent edit resolved by MERGE, auto sync, the final catalogs and a customer's payment.

Every action is a call of the public API on one of the demo's bots; this module only
decides the order and narrates it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neonpay.cli.demo.narrator import Narrator
from neonpay.cli.demo.network import BOT_NAMES, DemoNetwork
from neonpay.cli.demo.snapshot import Snapshot, diff, side_by_side, take_snapshot
from neonpay.cli.views import format_time
from neonpay.core import DiscountType, PaymentStage, TemplateCategory, TemplateProduct
from neonpay.errors import PaymentError, SyncError, mask_token

if TYPE_CHECKING:
    from neonpay.core.neonpay import NeonPay
    from neonpay.sync.conflicts import SyncConflict
    from neonpay.sync.multi import MultiBotSyncManager
    from neonpay.sync.results import SyncResult

__all__ = ["STEPS", "DemoStory"]

STEPS = 8
CUSTOMER_ID = 4242
#: Seconds any wait of the demo may take before it gives up.
WAIT_LIMIT = 20.0
_ARROWS = {"bidirectional": "<->", "push": "->", "pull": "<-"}


@dataclass
class DemoStory:
    """Runs the demo's steps on a started :class:`DemoNetwork`."""

    network: DemoNetwork
    narrator: Narrator
    report: dict[str, Any] = field(default_factory=dict)

    # --- shortcuts -------------------------------------------------------------------------
    def bot(self, name: str) -> NeonPay:
        return self.network.bots[name].neonpay

    @property
    def manager(self) -> MultiBotSyncManager:
        manager = self.network.manager
        if manager is None:
            raise SyncError("the demo network has no sync manager")
        return manager

    def snapshots(self) -> dict[str, Snapshot]:
        return {name: take_snapshot(self.bot(name)) for name in BOT_NAMES}

    # --- the story ------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Run every step; returns the report (``ok`` says whether the demo succeeded)."""
        self.introduce()
        await self.seed_catalog()
        await self.edit_on_different_bots()
        await self.concurrent_edit()
        await self.auto_sync()
        identical = self.final_catalogs()
        self.statistics()
        paid = await self.customer_buys()
        self.report.update(identical=identical, payment_recorded=paid, ok=identical and paid)
        self.report["steps"] = self.narrator.steps
        return self.report

    def introduce(self) -> None:
        net, say = self.network, self.narrator.say
        self.narrator.step(
            "A Bot API emulator and three bots, each with its own store and sync server"
        )
        assert net.emulator is not None
        say(f"Bot API emulator: {net.emulator.base_url} (stands in for api.telegram.org)")
        rows = [
            {
                "bot": bot.name,
                "node": bot.neonpay.node_id,
                "token": mask_token(bot.token),
                "store": bot.storage,
                "sync_url": bot.url,
            }
            for bot in net.bots.values()
        ]
        self.narrator.table(
            [("bot", "Bot"), ("token", "Token"), ("store", "Store"), ("sync_url", "Sync URL")],
            rows,
        )
        peers = [
            {
                "peer": c.name,
                "link": f"main {_ARROWS[c.direction.value]} {c.name}",
                "direction": c.direction.value,
                "conflicts": c.conflict_resolution.value,
            }
            for c in self.manager.list_bots()
        ]
        say(
            "main syncs with both (as in the spec: a store bot both ways, a support bot "
            "push only); requests are signed with a generated secret"
        )
        self.narrator.table(
            [("link", "Link"), ("direction", "Direction"), ("conflicts", "Conflicts")], peers
        )
        self.report["bots"] = rows
        self.report["emulator"] = net.emulator.base_url

    async def seed_catalog(self) -> None:
        self.narrator.step("main creates the catalog; one sync round carries it")
        main = self.bot("main")
        for stage_id, title, description, price in (
            ("basic", "Basic", "The essentials", 50),
            ("premium", "Premium", "Every feature", 100),
            ("lifetime", "Lifetime", "Every feature, forever", 500),
        ):
            main.create_payment_stage(stage_id, PaymentStage(title, description, price))
        main.templates.create_template(
            "storefront",
            description="The shop window",
            categories=[TemplateCategory("plans", "Plans")],
            products=[
                TemplateProduct("basic", "Basic", 50, category_id="plans"),
                TemplateProduct("premium", "Premium", 100, category_id="plans"),
            ],
            theme={"accent": "violet"},
        )
        main.settings.set("thank_you_message", "Thank you for shopping with us!")
        self.narrator.say(
            "main: + stages basic, premium, lifetime; + template storefront; "
            "+ setting thank_you_message"
        )
        await self.sync_round(["store-2", "support"])

    async def edit_on_different_bots(self) -> None:
        self.narrator.step("Changes on different bots, then a sync round")
        main, store = self.bot("main"), self.bot("store-2")
        main.create_payment_stage(
            "gift-card", PaymentStage("Gift card", "A gift for a friend", 250)
        )
        main.remove_payment_stage("lifetime")
        self.narrator.say("main:    + stage gift-card (250 Stars), - stage lifetime")
        store.update_payment_stage("basic", price=45)
        store.promotions.create_promo_code(
            "SPRING25", DiscountType.PERCENTAGE, 25, description="Spring sale"
        )
        self.narrator.say("store-2: ~ basic price 50 -> 45, + promo SPRING25 (-25%)")
        await self.sync_round(["store-2", "support"])

    async def concurrent_edit(self) -> None:
        self.narrator.step("A concurrent edit: main and store-2 change the same stage")
        main, store = self.bot("main"), self.bot("store-2")
        base = main.get_payment_stage("premium")
        assert base is not None
        main.update_payment_stage(
            "premium", description="Every feature, priority support", price=120
        )
        self.narrator.say(
            "main:    premium description -> 'Every feature, priority support', price -> 120"
        )
        await asyncio.sleep(0.01)  # a later wall clock: store-2's edit is the newer one
        store.update_payment_stage("premium", title="Premium+", price=110)
        self.narrator.say("store-2: premium title -> 'Premium+', price -> 110")
        results = await self.sync_round(["store-2"])
        conflicts = [c for r in results for c in r.conflicts]
        self.report["conflicts"] = [c.to_dict() for c in conflicts]
        for conflict in conflicts:
            self.explain_conflict(conflict, base.to_fields())
        await self.sync_round(["support"])

    def explain_conflict(self, conflict: SyncConflict, base: dict[str, Any]) -> None:
        say = self.narrator.say
        say(
            f"    conflict on {conflict.item_type} {conflict.item_id!r}: versions "
            f"{_vector(conflict.source_version)} (main) and "
            f"{_vector(conflict.target_version)} (store-2) are concurrent; "
            f"{conflict.strategy.value.upper()} decides ({conflict.outcome}):"
        )
        merged = self.bot("main").get_payment_stage(conflict.item_id)
        if merged is None:
            return
        final = merged.to_fields()
        for name in sorted(final):
            ours = conflict.source_data.get(name)
            theirs = conflict.target_data.get(name)
            before = base.get(name)
            if ours == before and theirs == before:
                continue
            if ours != before and theirs != before:
                why = "both changed it: the later edit wins"
            elif ours != before:
                why = "changed on main only"
            else:
                why = "changed on store-2 only"
            say(f"      {name} = {final[name]!r} ({why})")

    async def auto_sync(self) -> None:
        self.narrator.step("Auto sync: edits travel without anyone calling sync")
        manager = self.manager
        await manager.start_auto_sync_all()
        try:
            started = time.monotonic()
            self.bot("store-2").promotions.create_promo_code(
                "WELCOME5", DiscountType.FIXED_AMOUNT, 5, description="Welcome gift"
            )
            self.bot("main").settings.set("thank_you_message", "Thanks! See you soon.")
            self.narrator.say("store-2: + promo WELCOME5 (-5 Stars)")
            self.narrator.say("main:    ~ thank_you_message -> 'Thanks! See you soon.'")
            arrivals = {
                "WELCOME5 reached main": lambda: _has_promo(self.bot("main"), "WELCOME5"),
                "WELCOME5 reached support (via main)": lambda: _has_promo(
                    self.bot("support"), "WELCOME5"
                ),
                "thank-you message reached store-2": lambda: _thanks(self.bot("store-2")),
                "thank-you message reached support": lambda: _thanks(self.bot("support")),
            }
            for label, arrived in arrivals.items():
                seconds = await _wait_for(arrived, started)
                self.narrator.say(f"{label} after {seconds:.1f} s")
            await _wait_for(self._all_delivered, started)
        finally:
            await manager.stop_auto_sync_all()
        self.narrator.say(
            "auto sync stopped (it runs for as long as the bot or 'neonpay serve' runs)"
        )

    def _all_delivered(self) -> bool:
        return all(s["lag"] == 0 for s in self.manager.get_all_sync_stats().values())

    def final_catalogs(self) -> bool:
        self.narrator.step("The catalogs, side by side")
        snapshots = self.snapshots()
        columns, rows = side_by_side(snapshots)
        self.narrator.table(columns, rows)
        first = snapshots[BOT_NAMES[0]]
        identical = all(snapshot == first for snapshot in snapshots.values())
        if identical:
            self.narrator.good(f"identical on all three bots ({len(first)} records)")
        else:
            for name in BOT_NAMES[1:]:
                for line in diff(first, snapshots[name]):
                    self.narrator.bad(f"{name} differs from main: {line}")
        self.report["catalogs"] = {
            name: {f"{section}/{key}": fields for (section, key), fields in snap.items()}
            for name, snap in snapshots.items()
        }
        return identical

    def statistics(self) -> None:
        self.narrator.step("Sync statistics (main's view of its peers)")
        stats = self.manager.get_all_sync_stats()
        rows = [
            {
                "peer": name,
                "syncs": values["total_syncs"],
                "ok": values["successful_syncs"],
                "failed": values["failed_syncs"],
                "rate": f"{values['success_rate']:.1f}%",
                "items": values["total_items_synced"],
                "conflicts": values["total_conflicts"],
                "lag": values["lag"],
                "bytes": values["bytes_sent"] + values["bytes_received"],
            }
            for name, values in stats.items()
        ]
        self.narrator.table(
            [
                ("peer", "Peer"),
                ("syncs", "Syncs"),
                ("ok", "OK"),
                ("failed", "Failed"),
                ("rate", "Success"),
                ("items", "Items"),
                ("conflicts", "Conflicts"),
                ("lag", "Lag"),
                ("bytes", "Bytes"),
            ],
            rows,
        )
        self.report["stats"] = stats

    async def customer_buys(self) -> bool:
        self.narrator.step("A customer buys Premium+ with promo code SPRING25")
        net, say = self.network, self.narrator.say
        main_bot = net.bots["main"]
        api, emulator, main = main_bot.api, net.emulator, main_bot.neonpay
        assert api is not None
        assert emulator is not None
        await api.start_polling(timeout=1)
        try:
            stage = main.get_payment_stage("premium")
            assert stage is not None
            invoice = await main.send_invoice(CUSTOMER_ID, "premium", "SPRING25")
            say(
                f"main sent user {CUSTOMER_ID} an invoice: {stage.title}, {stage.price} Stars, "
                "with SPRING25"
            )
            result = await emulator.pay(CUSTOMER_ID, invoice, timeout=10)
            if not result.approved or result.charge_id is None:
                reason = result.error_message or ("timed out" if result.timed_out else "refused")
                self.narrator.bad(f"the payment was not approved: {reason}")
                self.report["payment"] = {"approved": False, "reason": reason}
                return False
            say("the emulated user paid; the bot approved the pre-checkout query in time")
            payment = await _wait_for_value(lambda: main.payments.get(result.charge_id or ""))
        finally:
            await api.stop_polling()
        if payment is None:
            raise PaymentError("the successful payment was not recorded in time")
        self.narrator.good(
            f"recorded on main: {payment.amount} Stars from user {payment.user_id} for "
            f"{payment.stage_id} (price {stage.price}, {payment.promo_code} -25%), charge "
            f"{payment.charge_id[:12]}…, {format_time(payment.created_at)}"
        )
        self.report["payment"] = {
            "approved": True,
            "charge_id": payment.charge_id,
            "user_id": payment.user_id,
            "stage_id": payment.stage_id,
            "amount": payment.amount,
            "price": stage.price,
            "promo_code": payment.promo_code,
            "emulator_balance": emulator.star_balance(main_bot.token),
        }
        await self.sync_round(["store-2", "support"], quiet=True)
        uses = {name: self.bot(name).promotions.usage("SPRING25") for name in BOT_NAMES}
        say(
            "one more sync round carries the promo use: SPRING25 usage seen on each bot: "
            + ", ".join(f"{n} {u}" for n, u in uses.items())
            + f" ({_count(uses['main'], 'use')}, counted once network-wide)"
        )
        self.report["payment"]["promo_uses"] = uses
        return True

    # --- a sync round ---------------------------------------------------------------------------
    async def sync_round(self, peers: Sequence[str], *, quiet: bool = False) -> list[SyncResult]:
        """Sync main with ``peers`` one after the other, saying what reached whom."""
        results = []
        for peer in peers:
            before = {name: take_snapshot(self.bot(name)) for name in ("main", peer)}
            result = await self.manager.sync_with_bot(peer)
            results.append(result)
            if quiet and result.success:
                continue
            config = self.manager.get_bot(peer)
            arrow = _ARROWS[config.direction.value] if config else "<->"
            line = (
                f"sync main {arrow} {peer}: {result.status.value}, {result.pushed} sent, "
                f"{result.pulled} received, {_count(len(result.conflicts), 'conflict')} "
                f"({result.duration * 1000:.0f} ms, {_count(result.requests, 'request')})"
            )
            if result.success:
                self.narrator.good(line)
            else:
                self.narrator.bad(line + ": " + "; ".join(result.errors))
            for name in ("main", peer):
                changes = diff(before[name], take_snapshot(self.bot(name)))
                for change in changes:
                    self.narrator.say(f"    {name} got {change}")
        return results


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _vector(version: dict[str, int]) -> str:
    return "{" + ", ".join(f"{node}: {count}" for node, count in sorted(version.items())) + "}"


def _has_promo(neonpay: NeonPay, code: str) -> bool:
    return neonpay.promotions.get_promo_code(code) is not None


def _thanks(neonpay: NeonPay) -> bool:
    return bool(neonpay.settings.get("thank_you_message") == "Thanks! See you soon.")


async def _wait_for(condition: Callable[[], bool], started: float) -> float:
    """Wait (bounded) until ``condition()``; returns seconds since ``started``."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise SyncError(f"auto sync did not deliver within {WAIT_LIMIT:.0f} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _wait_for_value(read: Callable[[], Any]) -> Any:
    """Poll ``read()`` until it returns something (bounded); None when it never does."""
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        value = read()
        if value is not None or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)
