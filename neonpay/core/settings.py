"""Settings: named values with JSON content, stored as ``setting`` records.

A few names are known and checked (``thank_you_message``, ``enable_logging``,
``max_stages``); any other name of the identifier alphabet holds any JSON value of at
most 16 KiB that passes :func:`neonpay.limits.check_json_value` (nested at most 32 levels,
valid text, 64-bit whole numbers, finite numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from neonpay import _json
from neonpay.core import validation as v
from neonpay.errors import NotFoundError, ValidationError
from neonpay.limits import check_json_value

if TYPE_CHECKING:
    from neonpay.core.catalog import Catalog

__all__ = ["KIND", "KNOWN_SETTINGS", "SettingsManager"]

KIND = "setting"
MAX_VALUE_BYTES = 16 * 1024


def _thank_you(value: Any) -> Any:
    return v.check_text(value, "thank_you_message", max_len=4096, kind=KIND)


def _flag(name: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValidationError(name, "must be true or false", kind=KIND)
        return value

    return check


def _max_stages(value: Any) -> Any:
    return v.check_int(value, "max_stages", low=1, high=100_000, kind=KIND)


#: Settings with a known meaning and the check each value must pass.
KNOWN_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "thank_you_message": _thank_you,
    "enable_logging": _flag("enable_logging"),
    "max_stages": _max_stages,
}
_MISSING = object()


def check_setting(name: str, value: Any) -> Any:
    """Validate one setting; returns the value to store."""
    v.check_id(name, "name", kind=KIND)
    check = KNOWN_SETTINGS.get(name)
    if check is not None:
        return check(value)
    check_json_value(value, name, kind=KIND)
    try:
        size = len(_json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValidationError(name, "must be a JSON value", kind=KIND) from exc
    if size > MAX_VALUE_BYTES:
        raise ValidationError(name, f"must be at most {MAX_VALUE_BYTES} bytes as JSON", kind=KIND)
    return value


class SettingsManager:
    """Settings in the store: ``neonpay.settings``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def set(self, name: str, value: Any) -> Any:
        """Create or change a setting."""
        checked = check_setting(name, value)
        self._catalog.write(KIND, name, lambda old: {"value": checked})
        return checked

    def get(self, name: str, default: Any = None) -> Any:
        record = self._catalog.store.get(KIND, name)
        return record.fields.get("value") if record else default

    def list(self) -> dict[str, Any]:
        return {r.key: r.fields.get("value") for r in self._catalog.store.list(KIND)}

    def update(self, name: str, value: Any) -> Any:
        """Change an existing setting; raises NotFoundError when it does not exist."""
        checked = check_setting(name, value)

        def patch(old: Mapping[str, Any] | None) -> Mapping[str, Any]:
            if old is None:
                raise NotFoundError(f"no setting {name!r}")
            return {"value": checked}

        self._catalog.write(KIND, name, patch)
        return checked

    def remove(self, name: str) -> bool:
        return self._catalog.delete(KIND, name)

    # CRUD names in the style of the other catalogs
    create = set
    create_setting = set
    get_setting = get
    list_settings = list
    update_setting = update
    remove_setting = remove
