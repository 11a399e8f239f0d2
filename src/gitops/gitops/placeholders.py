"""Which site-specific values are still the shipped placeholders: settings/site.yaml, value by value.

A value is a placeholder when it names a domain reserved for examples (RFC 2606: example.com, example.net,
example.org, and the .example and .invalid top-level domains) or the organisation `your-org` the repository ships
with. `gitops check` reports them; with `--strict` (for a production cluster) each one is a problem. Group and chat
channel names are plain names no reserved word marks: the check cannot tell them from real ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitops.layout import SITE_SETTINGS, RepositoryError

_RESERVED = re.compile(r"(?<![\w-])(example\.(?:com|net|org)|[\w.-]+\.(?:example|invalid)|your-org)(?![\w-])")


@dataclass(frozen=True, order=True)
class Placeholder:
    key: str
    value: str

    def __str__(self) -> str:
        return f"{SITE_SETTINGS}: {self.key} is still a placeholder ({self.value})"


def find_placeholders(root: Path) -> list[Placeholder]:
    path = root / SITE_SETTINGS
    try:
        data = yaml.safe_load(path.read_text())["data"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise RepositoryError(f"{SITE_SETTINGS}: cannot read its data: {exc}") from None
    return sorted(Placeholder(key, str(value)) for key, value in data.items() if _RESERVED.search(str(value)))
