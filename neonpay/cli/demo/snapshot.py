"""Catalog snapshots for the demo: what one bot holds, what changed, and side-by-side rows.

A snapshot maps ``(section, key)`` to the record's fields, read through the public API
(the same document ``neonpay export`` writes). Comparing two snapshots of one bot
tells what a sync round brought to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from neonpay.cli.commands.transfer import export_document
from neonpay.core import NeonPay

__all__ = [
    "SECTIONS",
    "Snapshot",
    "describe",
    "diff",
    "side_by_side",
    "take_snapshot",
]

SECTIONS = ("payment_stages", "promo_codes", "templates", "settings")
_NOUNS = {
    "payment_stages": "stage",
    "promo_codes": "promo",
    "templates": "template",
    "settings": "setting",
}

#: ``(section, key) -> fields`` (settings: ``{"value": ...}``).
Snapshot = dict[tuple[str, str], dict[str, Any]]


def take_snapshot(neonpay: NeonPay) -> Snapshot:
    """The catalog of one bot, through the public API."""
    document = export_document(neonpay)
    snapshot: Snapshot = {}
    for section in SECTIONS:
        for key, fields in document[section].items():
            value = {"value": fields} if section == "settings" else dict(fields)
            snapshot[(section, key)] = value
    return snapshot


def describe(section: str, fields: Mapping[str, Any] | None) -> str:
    """A short text for one record (``Premium · 120 Stars``); '-' when absent."""
    if fields is None:
        return "-"
    if section == "payment_stages":
        return f"{fields.get('title')} · {fields.get('price')} Stars"
    if section == "promo_codes":
        value = fields.get("discount_value")
        unit = "%" if fields.get("discount_type") == "percentage" else " Stars"
        return f"-{value}{unit}" + ("" if fields.get("active", True) else " (off)")
    if section == "templates":
        products = fields.get("products") or []
        return f"{len(products)} products"
    return _short(fields.get("value"))


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """What changed from ``before`` to ``after``, one line per record, in key order."""
    lines: list[str] = []
    for section, key in sorted(set(before) | set(after)):
        old, new = before.get((section, key)), after.get((section, key))
        noun = _NOUNS[section]
        if old == new:
            continue
        if old is None:
            lines.append(f"+ {noun} {key}: {describe(section, new)}")
        elif new is None:
            lines.append(f"- {noun} {key} deleted")
        else:
            changed = [
                f"{name} {_short(old.get(name))} -> {_short(new.get(name))}"
                for name in sorted(set(old) | set(new))
                if old.get(name) != new.get(name)
            ]
            lines.append(f"~ {noun} {key}: " + ", ".join(changed))
    return lines


def side_by_side(
    snapshots: Mapping[str, Snapshot],
) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """Columns and rows of a table with one column per bot and one row per record."""
    names: Sequence[str] = list(snapshots)
    keys = sorted({key for snapshot in snapshots.values() for key in snapshot})
    columns = [("record", "Record")] + [(name, name) for name in names]
    rows = []
    for section, key in keys:
        row = {"record": f"{_NOUNS[section]} {key}"}
        for name in names:
            row[name] = describe(section, snapshots[name].get((section, key)))
        rows.append(row)
    return columns, rows


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
