"""Image references and the release files that pin them (``overlays/<env>/release/kustomization.yaml``)."""

from __future__ import annotations

import io
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

# registry/path[:tag]@sha256:<64 hex>; the registry is the first component (it has a dot, a colon or is localhost).
_REFERENCE = re.compile(
    r"^(?P<name>(?P<registry>[a-z0-9.-]+(?::\d+)?)/[a-z0-9._/-]+?)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"@(?P<digest>sha256:[0-9a-f]{64})$"
)
_LABEL = "app.kubernetes.io/version"


class ImageError(Exception):
    """An image reference or a release file that can't be used; the message says which and why."""


@dataclass(frozen=True)
class ImageRef:
    name: str  # registry/path
    tag: str | None
    digest: str  # sha256:<64 hex>

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        match = _REFERENCE.match(reference)
        registry = match.group("registry") if match else ""
        if match is None or not ("." in registry or ":" in registry or registry == "localhost"):
            raise ImageError(
                f"image reference {reference!r} is not registry/name@sha256:<64 hex digits> "
                "(or registry/name:tag@sha256:<64 hex digits>): environments run images pinned by digest"
            )
        return cls(match.group("name"), match.group("tag"), match.group("digest"))

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.name}{tag}@{self.digest}"

    @property
    def version(self) -> str:
        """The ``app.kubernetes.io/version`` label: the tag, or the digest's start where there is none."""
        return self.tag or f"sha256-{self.digest.removeprefix('sha256:')[:12]}"

    @property
    def short(self) -> str:
        return f"{self.name.rsplit('/', 1)[-1]}@{self.digest[:19]}"


def trusted_registries(root: Path) -> list[str]:
    config = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("gitops", {})
    registries = config.get("trusted-registries")
    if not registries:
        raise ImageError("pyproject.toml has no [tool.gitops] trusted-registries: no registry is trusted")
    return [str(r) for r in registries]


def check_trusted(image: ImageRef, root: Path) -> None:
    trusted = trusted_registries(root)
    if not any(f"{image.name}/".startswith(prefix.rstrip("/") + "/") for prefix in trusted):
        raise ImageError(
            f"image {image.name!r} is not from a trusted registry ({', '.join(trusted)}; "
            "pyproject.toml [tool.gitops] trusted-registries)"
        )


def environments(root: Path) -> list[str]:
    return sorted(p.parent.parent.name for p in (root / "overlays").glob("*/release/kustomization.yaml"))


def release_file(root: Path, environment: str) -> Path:
    path = root / "overlays" / environment / "release" / "kustomization.yaml"
    if not path.is_file():
        known = ", ".join(environments(root)) or "none"
        raise ImageError(f"unknown environment {environment!r}: expected one of {known} (overlays/<env>/release/)")
    return path


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 120
    return yaml


def read_image(path: Path, text: str | None = None) -> ImageRef:
    """The image a release file pins (``text``: its content at some revision, instead of the file's own)."""
    data = _yaml().load(path.read_text() if text is None else text)
    try:
        (entry,) = data["images"]
        tag = entry.get("newTag")
        return ImageRef(str(entry["newName"]), str(tag) if tag is not None else None, str(entry["digest"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ImageError(f"{path}: expected exactly one `images` entry with newName and digest ({exc})") from None


def write_image(path: Path, image: ImageRef) -> bool:
    """Point the release file at ``image``; return whether the file changed. Comments and layout are kept."""
    yaml = _yaml()
    original = path.read_text()
    data = yaml.load(original)
    try:
        (entry,) = data["images"]
        (labels,) = data["labels"]
    except (KeyError, TypeError, ValueError):
        raise ImageError(f"{path}: expected exactly one `images` entry and one `labels` entry") from None
    entry["newName"] = image.name
    if image.tag:
        entry["newTag"] = image.tag
    elif "newTag" in entry:
        del entry["newTag"]
    entry["digest"] = image.digest
    labels["pairs"][_LABEL] = image.version
    out = io.StringIO()
    yaml.dump(data, out)
    if out.getvalue() == original:
        return False
    path.write_text(out.getvalue())
    return True
