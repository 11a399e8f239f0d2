"""Image references and the release files that pin them (``overlays/<env>/release/kustomization.yaml``).

A reference is read by the grammar of image references (distribution/reference, the registries' own), which says
where its name, tag and digest are; it says nothing of which images an environment may run. That is the admission
policies' (policies/: trusted registries, no latest tag, pinned by a sha256 digest), which `gitops set-image` and
`gitops promote` run on the render.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

# distribution/reference's grammar (reference/regexp.go): [domain[:port]/]path[:tag][@algorithm:hex].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL_OF_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL_OF_HOST}(?:\.{_LABEL_OF_HOST})*|\[[a-fA-F0-9:]+\])"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)
_LABEL = "app.kubernetes.io/version"


def repository_of(reference: str) -> str:
    """The last part of a reference's name: ``app`` of ``registry:5000/team/app:1.0@sha256:…``."""
    return reference.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


class ImageError(Exception):
    """An image reference or a release file that can't be used; the message says which and why."""


@dataclass(frozen=True)
class ImageRef:
    name: str  # registry/path
    tag: str | None
    digest: str  # sha256:<64 hex>

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        """A reference a release file can pin: name[:tag]@digest. Whether an environment may run it is the admission
        policies' to say."""
        match = _REFERENCE.fullmatch(reference)
        if match is None:
            raise ImageError(
                f"{reference!r} is not an image reference ([registry/]name[:tag]@<algorithm>:<hex>, "
                "as distribution/reference reads them)"
            )
        if match.group("digest") is None:
            raise ImageError(
                f"image reference {reference!r} has no digest: a release file pins the image as name[:tag]@<digest>"
            )
        return cls(match.group("name"), match.group("tag"), match.group("digest"))

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.name}{tag}@{self.digest}"

    @property
    def digest_start(self) -> str:
        """The digest's first 12 hex digits, which name it in branches and labels."""
        return self.digest.partition(":")[2][:12]

    @property
    def version(self) -> str:
        """The ``app.kubernetes.io/version`` label: the tag, or the digest's start where there is none."""
        return self.tag or f"{self.digest.partition(':')[0]}-{self.digest_start}"

    @property
    def short(self) -> str:
        return f"{repository_of(self.name)}@{self.digest.partition(':')[0]}:{self.digest_start}"


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
