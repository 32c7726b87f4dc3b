"""``neonpay export`` / ``neonpay import``: the catalog as one JSON document.

The document holds the four syncable kinds by key::

    {"format": "neonpay-catalog", "version": 1, "node_id": "...",
     "payment_stages": {"premium": {...}}, "promo_codes": {"SPRING25": {...}},
     "templates": {"shop": {...}}, "settings": {"thank_you_message": "..."}}

Promo usage counts are not part of it: they are per-node counters, not configuration.
An import checks the whole document before writing anything, then creates or replaces
its records in one transaction (``Catalog.write_many``: all or nothing, as local edits
that sync to peers like any other), so 100,000 stages load in seconds.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neonpay import _json
from neonpay._gcpause import collection_paused
from neonpay.cli.tree import EXIT_OK, add_command
from neonpay.core import (
    NeonPay,
    PaymentStage,
    PromoCode,
    Template,
    promotions,
    settings,
    stages,
    templates,
)
from neonpay.core.settings import check_setting
from neonpay.errors import ConfigurationError, NeonPayError, ValidationError

if TYPE_CHECKING:
    from neonpay.cli.context import Context
    from neonpay.cli.tree import Subparsers

__all__ = ["FORMAT", "export_document", "register"]

FORMAT = "neonpay-catalog"
VERSION = 1
_SECTIONS = ("payment_stages", "promo_codes", "templates", "settings")
#: How an error names a record of each section: ``stage 'premium': ...``.
_RECORD_NOUNS = {
    "payment_stages": "stage",
    "promo_codes": "promo code",
    "templates": "template",
    "settings": "setting",
}


def register(subparsers: Subparsers) -> None:
    """Add ``neonpay export`` and ``neonpay import``."""
    export = add_command(
        subparsers,
        "export",
        help="write the catalog as JSON (backup, review)",
        handler=export_catalog,
        reads_only=True,
        examples=["neonpay export --output catalog.json", "neonpay export > catalog.json"],
    )
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE, not stdout")
    import_ = add_command(
        subparsers,
        "import",
        help="create or replace catalog records from an export",
        handler=import_catalog,
        examples=["neonpay import catalog.json", "neonpay import --dry-run catalog.json"],
        description=(
            "Create or replace the records of an export file (JSON). The whole file is\n"
            "checked first: a bad record changes nothing. Records missing from the file\n"
            "are left alone. Imported changes sync to peers like any other edit."
        ),
    )
    import_.add_argument("file", metavar="FILE", help="the export file ('-' for stdin)")
    import_.add_argument("--dry-run", action="store_true", help="check and report, write nothing")


def export_document(neonpay: NeonPay) -> dict[str, Any]:
    """The catalog of ``neonpay`` as an export document."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "node_id": neonpay.node_id,
        "exported_at": time.time(),
        "payment_stages": {
            stage_id: stage.to_fields()
            for stage_id, stage in sorted(neonpay.list_payment_stages().items())
        },
        "promo_codes": {
            promo.code: promo.to_fields()
            for promo in sorted(neonpay.promotions.list_promo_codes(), key=lambda p: p.code)
        },
        "templates": {
            name: template.to_fields()
            for name, template in sorted(neonpay.templates.list_templates().items())
        },
        "settings": dict(sorted(neonpay.settings.list().items())),
    }


def export_catalog(ctx: Context) -> int:
    document = export_document(ctx.open_neonpay())
    text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True)
    if ctx.args.output:
        try:
            Path(ctx.args.output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write {ctx.args.output}: {exc.strerror or exc}"
            ) from exc
        counts = ", ".join(_count(len(document[s]), s) for s in _SECTIONS)
        if ctx.out.json_mode:
            ctx.out.json({"output": ctx.args.output, **{s: len(document[s]) for s in _SECTIONS}})
        else:
            ctx.out.line(f"exported {counts} to {ctx.args.output}")
    else:
        print(text, file=ctx.out.stdout, flush=True)
    return EXIT_OK


@dataclass
class _Plan:
    """What an import will write: ``(kind, key, fields)`` per changed record, and counts."""

    writes: list[tuple[str, str, Mapping[str, Any] | None]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s: {"created": 0, "updated": 0, "unchanged": 0} for s in _SECTIONS}
    )

    def add(self, section: str, old: object, new: Mapping[str, Any], kind: str, key: str) -> None:
        if old is None:
            state = "created"
        elif old == new:
            self.counts[section]["unchanged"] += 1
            return
        else:
            state = "updated"
        self.counts[section][state] += 1
        self.writes.append((kind, key, new))


def import_catalog(ctx: Context) -> int:
    document = _read_document(ctx.args.file)
    neonpay = ctx.open_neonpay()
    # A large file makes many small objects that live until the write: no collector
    # passes over them meanwhile (see neonpay._gcpause).
    with collection_paused():
        plan = _plan(neonpay, document)
        if not ctx.args.dry_run:
            # One transaction for the whole file: all of it, or (a full catalog) nothing.
            neonpay.catalog.write_many(plan.writes, max_live={stages.KIND: neonpay.max_stages})
    if ctx.out.json_mode:
        ctx.out.json({"dry_run": bool(ctx.args.dry_run), "changes": plan.counts})
    else:
        verb = "would import" if ctx.args.dry_run else "imported"
        for section in _SECTIONS:
            c = plan.counts[section]
            ctx.out.line(
                f"{verb} {section.replace('_', ' ')}: {c['created']} new, "
                f"{c['updated']} changed, {c['unchanged']} unchanged"
            )
    return EXIT_OK


def _read_document(name: str) -> Mapping[str, Any]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {name}: {exc.strerror or exc}") from exc
    try:
        document = _json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{name} is not JSON: {exc}") from exc
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise ConfigurationError(f"{name} is not a NEONPAY catalog export (format {FORMAT!r})")
    if document.get("version") != VERSION:
        raise ConfigurationError(
            f"{name} has export version {document.get('version')!r}; this NEONPAY reads {VERSION}"
        )
    for section in _SECTIONS:
        if not isinstance(document.get(section, {}), Mapping):
            raise ConfigurationError(f"{name}: {section!r} must be an object keyed by id")
    return document


def _plan(neonpay: NeonPay, document: Mapping[str, Any]) -> _Plan:
    """Check every record of ``document`` and plan its write (raises before any write).

    Raises:
        ConfigurationError: a record breaks a rule; the message names the record
            (``stage 'premium': invalid payment_stage.price: must be at least 1``).
    """
    plan = _Plan()
    planners: dict[str, Callable[[_Plan, NeonPay, str, Any, Any], None]] = {
        "payment_stages": _plan_stage,
        "promo_codes": _plan_promo,
        "templates": _plan_template,
        "settings": _plan_setting,
    }
    kinds = {
        "payment_stages": stages.KIND,
        "promo_codes": promotions.KIND,
        "templates": templates.KIND,
        "settings": settings.KIND,
    }
    for section, planner in planners.items():
        entries: Mapping[str, Any] = document.get(section, {})
        keys = [key for key in entries if isinstance(key, str)]
        held = neonpay.store.get_many(kinds[section], keys)  # one read, not one per record
        for key, value in entries.items():
            record = held.get(key)
            current = record.fields if record is not None and not record.deleted else None
            try:
                planner(plan, neonpay, key, value, current)
            except NeonPayError as exc:
                raise ConfigurationError(f"{_RECORD_NOUNS[section]} {key!r}: {exc}") from exc
    return plan


def _plan_stage(plan: _Plan, neonpay: NeonPay, stage_id: str, fields: Any, current: Any) -> None:
    checked = neonpay.stages.validate(stage_id, _fields(fields))
    old = PaymentStage.from_fields(current).to_fields() if current is not None else None
    plan.add("payment_stages", old, checked, stages.KIND, stage_id)


def _plan_promo(plan: _Plan, neonpay: NeonPay, code: str, fields: Any, current: Any) -> None:
    promo = PromoCode.from_fields(code, _fields(fields))
    if promo.code != code:  # stored upper-case: look up the code as it will be stored
        record = neonpay.store.get(promotions.KIND, promo.code)
        current = record.fields if record is not None else None
    old = PromoCode.from_fields(promo.code, current).to_fields() if current is not None else None
    plan.add("promo_codes", old, promo.to_fields(), promotions.KIND, promo.code)


def _plan_template(plan: _Plan, neonpay: NeonPay, name: str, fields: Any, current: Any) -> None:
    template = Template.from_fields(name, _fields(fields))
    old = Template.from_fields(name, current).to_fields() if current is not None else None
    plan.add("templates", old, template.to_fields(), templates.KIND, name)


def _plan_setting(plan: _Plan, neonpay: NeonPay, name: str, value: Any, current: Any) -> None:
    checked_value = check_setting(name, value)
    old = None if current is None else {"value": current.get("value")}
    plan.add("settings", old, {"value": checked_value}, settings.KIND, name)


def _fields(fields: Any) -> Mapping[str, Any]:
    if not isinstance(fields, Mapping):
        raise ValidationError("fields", "the entry must be an object of fields")
    return fields


def _count(number: int, section: str) -> str:
    """``1 promo code``, ``2 promo codes``, ``1 setting``: a count with its noun."""
    plural = section.replace("_", " ")
    return f"{number} {plural if number != 1 else plural[:-1]}"
