"""What every benchmark of a run shares: settings, a work directory, the node processes,
the seeded catalogs, the floor figures and the results collected so far."""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import catalog
from bench.procs import ProcessGroup
from bench.report import Result

if TYPE_CHECKING:
    from bench.references import FloorSample

__all__ = ["Context", "Settings"]

POSTGRES_ENV = "NEONPAY_TEST_POSTGRES"


@dataclass(frozen=True)
class Settings:
    """How big and how often: the full suite, or the quick one CI runs."""

    quick: bool
    repeats: int  # runs of each case (the median of them is reported)
    big_repeats: int  # runs of cases with 100,000 records
    sizes: tuple[int, ...]  # catalog sizes of the first-sync cases and the floor
    catalog: int  # the catalog of the incremental cases (no change, changes, conflicts ...)
    round_trips: int  # no-change round trips timed (per repeat)
    realtime_samples: int  # writes timed in the real-time case
    postgres_url: str | None

    @classmethod
    def make(cls, *, quick: bool, repeats: int | None = None) -> Settings:
        postgres = os.environ.get(POSTGRES_ENV) or None
        if quick:
            return cls(
                quick=True,
                repeats=repeats or 1,
                big_repeats=repeats or 1,
                sizes=(200, 1000),
                catalog=1000,
                round_trips=20,
                realtime_samples=10,
                postgres_url=postgres,
            )
        return cls(
            quick=False,
            repeats=repeats or 5,
            big_repeats=repeats or 3,
            sizes=(1000, 10_000, 100_000),
            catalog=10_000,
            round_trips=200,
            realtime_samples=100,
            postgres_url=postgres,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["postgres_url"] = bool(self.postgres_url)
        return data


class Context:
    """Shared state of one run."""

    def __init__(self, settings: Settings, work: Path, procs: ProcessGroup) -> None:
        self.settings = settings
        self.work = work
        self.procs = procs
        self.results: list[Result] = []
        self.skipped: list[tuple[str, str]] = []
        self._floor_samples: dict[int, list[FloorSample]] = {}
        self._plain: dict[int, Path] = {}
        self._stores: dict[int, Path] = {}
        self._files = 0
        self._lock = asyncio.Lock()
        #: The webhook secret every node of this run signs with.
        self.secret = secrets.token_hex(16)

    def fresh(self, name: str) -> Path:
        """A new, unused path in the work directory."""
        self._files += 1
        return self.work / f"{self._files:04d}-{name}"

    def repeats(self, n: int) -> int:
        return self.settings.big_repeats if n >= 100_000 else self.settings.repeats

    def add(self, result: Result) -> Result:
        self.results.append(result)
        return result

    async def plain_source(self, n: int) -> Path:
        """A plain SQLite table of ``n`` stages (seeded once a run; do not modify)."""
        async with self._lock:
            if n not in self._plain:
                path = self.fresh(f"plain-{n}.db")
                await asyncio.to_thread(catalog.seed_plain, path, n)
                self._plain[n] = path
            return self._plain[n]

    async def store_source(self, n: int) -> Path:
        """A closed NEONPAY SQLite store holding ``n`` stages as its own local writes
        (seeded once a run; copy it with :func:`bench.catalog.copy_sqlite`)."""
        async with self._lock:
            if n not in self._stores:
                path = self.fresh(f"store-{n}.db")
                await asyncio.to_thread(catalog.seed_store, f"sqlite:///{path}", n)
                self._stores[n] = path
            return self._stores[n]

    async def store_copy(self, n: int, name: str) -> Path:
        """A private copy of the seeded store of ``n`` stages."""
        source = await self.store_source(n)
        target = self.fresh(name)
        await asyncio.to_thread(catalog.copy_sqlite, source, target)
        return target

    async def floor(self, n: int) -> float:
        """Move ``n`` records with the floor once, now; its seconds (kept for its row)."""
        from bench.references import floor_once

        sample = await floor_once(self, n)
        self._floor_samples.setdefault(n, []).append(sample)
        return sample.seconds

    def floor_results(self) -> list[Result]:
        """One row per floor size measured in this run."""
        from bench.references import floor_result

        return [floor_result(n, samples) for n, samples in sorted(self._floor_samples.items())]

    @staticmethod
    def set_ratio(result: Result, mine: list[float], base: list[float], n: int) -> None:
        """Set ``result.ratio``: the median of the paired ratios to the floor."""
        ratios = [m / b for m, b in zip(mine, base, strict=True) if b > 0]
        if ratios:
            result.ratio = statistics.median(ratios)
            result.ratio_to = f"floor {n} records, paired run by run"
