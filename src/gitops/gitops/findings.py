"""What a check found: which entry point, which object, what is wrong, and which tool said so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def object_id(obj: dict[str, Any]) -> str:
    """``Kind/namespace/name``, with ``-`` for a cluster-scoped object's namespace."""
    metadata = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{metadata.get('namespace') or '-'}/{metadata.get('name', '?')}"


@dataclass(frozen=True, order=True)
class Finding:
    entry_point: str
    object: str
    reason: str
    tool: str

    def __str__(self) -> str:
        return f"{self.entry_point}: {self.object}: {self.reason} [{self.tool}]"
