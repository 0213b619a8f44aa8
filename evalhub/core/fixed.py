"""One rule shape for values an object keeps for good once something depends on them (a run's
checkpoint and seeds, a used checkpoint's generator, a membership's project): sending the value
it has is accepted, so a body fetched and sent back still works; sending another is refused,
every such field named, instead of silently re-attributing what was made from the old value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalhub.core.errors import InvalidFields


def fixed_fields_check(*, current: Mapping[str, Any], changes: Mapping[str, Any],
                       message: str) -> None:
    """Refuse (:class:`InvalidFields`, 400) when ``changes`` gives any field of ``current`` (the
    fixed fields and their values) another value. ``message`` is formatted with ``field`` (its
    name in words)."""
    changed = {field: [message.format(field=field.replace("_", " "))]
               for field, value in current.items()
               if field in changes and changes[field] != value}
    if changed:
        raise InvalidFields(changed)
