"""``neonpay export`` / ``neonpay import``: the catalog as one JSON document.

The document holds the four syncable kinds by key::

    {"format": "neonpay-catalog", "version": 1, "node_id": "...",
     "payment_stages": {"premium": {...}}, "promo_codes": {"SPRING25": {...}},
     "templates": {"shop": {...}}, "settings": {"thank_you_message": "..."}}

Promo usage counts are not part of it: they are per-node counters, not configuration.
An import checks the whole document before writing anything, then creates or replaces
each record through the public API (so the changes sync to peers like any edit).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neonpay.cli.tree import EXIT_OK, add_command
from neonpay.core import NeonPay, PaymentStage, PromoCode, Template
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
    """What an import will write: one callable per record, and what it changes."""

    writes: list[Callable[[], object]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s: {"created": 0, "updated": 0, "unchanged": 0} for s in _SECTIONS}
    )

    def add(self, section: str, old: object, new: object, write: Callable[[], object]) -> None:
        if old is None:
            state = "created"
        elif old == new:
            state = "unchanged"
            write = _nothing
        else:
            state = "updated"
        self.counts[section][state] += 1
        self.writes.append(write)


def _nothing() -> None:
    return None


def import_catalog(ctx: Context) -> int:
    document = _read_document(ctx.args.file)
    neonpay = ctx.open_neonpay()
    plan = _plan(neonpay, document)
    if not ctx.args.dry_run:
        for write in plan.writes:
            write()
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
        document = json.loads(text)
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
    planners: dict[str, Callable[[_Plan, NeonPay, str, Any], None]] = {
        "payment_stages": _plan_stage,
        "promo_codes": _plan_promo,
        "templates": _plan_template,
        "settings": _plan_setting,
    }
    for section, planner in planners.items():
        for key, value in document.get(section, {}).items():
            try:
                planner(plan, neonpay, key, value)
            except NeonPayError as exc:
                raise ConfigurationError(f"{_RECORD_NOUNS[section]} {key!r}: {exc}") from exc
    return plan


def _plan_stage(plan: _Plan, neonpay: NeonPay, stage_id: str, fields: Any) -> None:
    checked = neonpay.stages.validate(stage_id, _fields(fields))
    stage = PaymentStage.from_fields(checked)
    old = neonpay.get_payment_stage(stage_id)
    plan.add(
        "payment_stages",
        old.to_fields() if old else None,
        checked,
        partial(neonpay.create_payment_stage, stage_id, stage),
    )


def _plan_promo(plan: _Plan, neonpay: NeonPay, code: str, fields: Any) -> None:
    promo = PromoCode.from_fields(code, _fields(fields))
    current = neonpay.promotions.get_promo_code(promo.code)
    plan.add(
        "promo_codes",
        current.to_fields() if current else None,
        promo.to_fields(),
        partial(
            neonpay.promotions.create_promo_code,
            promo.code,
            promo.discount_type,
            promo.discount_value,
            max_uses=promo.max_uses,
            expires_at=promo.expires_at,
            min_amount=promo.min_amount,
            allowed_user_ids=promo.allowed_user_ids,
            description=promo.description,
            active=promo.active,
        ),
    )


def _plan_template(plan: _Plan, neonpay: NeonPay, name: str, fields: Any) -> None:
    template = Template.from_fields(name, _fields(fields))
    existing = neonpay.templates.get_template(name)
    plan.add(
        "templates",
        existing.to_fields() if existing else None,
        template.to_fields(),
        partial(neonpay.templates.save, template),
    )


_MISSING = object()


def _plan_setting(plan: _Plan, neonpay: NeonPay, name: str, value: Any) -> None:
    checked_value = check_setting(name, value)
    current_value = neonpay.settings.get(name, _MISSING)
    plan.add(
        "settings",
        None if current_value is _MISSING else {"value": current_value},
        {"value": checked_value},
        partial(neonpay.settings.set, name, checked_value),
    )


def _fields(fields: Any) -> Mapping[str, Any]:
    if not isinstance(fields, Mapping):
        raise ValidationError("fields", "the entry must be an object of fields")
    return fields


def _count(number: int, section: str) -> str:
    """``1 promo code``, ``2 promo codes``, ``1 setting``: a count with its noun."""
    plural = section.replace("_", " ")
    return f"{number} {plural if number != 1 else plural[:-1]}"
