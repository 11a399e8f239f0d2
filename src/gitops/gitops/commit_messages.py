"""The commit messages this tool writes when it changes a release file, and what it reads back from them.

``deploy(<env>): …`` is the pipeline's (``gitops set-image``), with the trailers ``Image:`` and ``Source-Commit:``
(the commit the image was built from); ``promote(<env>): …`` is a promotion's, with ``Image:`` and
``Promoted-From:``. A rollback reverts the last of either.
"""

from __future__ import annotations

import re

from gitops.images import ImageRef

_SOURCE_COMMIT = re.compile(r"^Source-Commit: ([0-9a-f]{40})$", re.MULTILINE)


def deploy(environment: str, image: ImageRef, source_commit: str | None) -> str:
    # [skip ci]: this commit changes only a release file; it must not start another build.
    source = f" from {source_commit[:12]}" if source_commit else ""
    lines = [f"deploy({environment}): {image.short}{source} [skip ci]", "", f"Image: {image}"]
    if source_commit:
        lines.append(f"Source-Commit: {source_commit}")
    return "\n".join(lines) + "\n"


def promote(source: str, target: str, image: ImageRef, commit: str) -> str:
    return f"promote({target}): {image.short} from {source}\n\nImage: {image}\nPromoted-From: {source} @ {commit}\n"


def changes_release(subject: str, environment: str) -> bool:
    """Whether a commit with this subject is a deploy or a promotion of the environment: what a rollback reverts."""
    return subject.startswith((f"deploy({environment}):", f"promote({environment}):"))


def source_commit(message: str, image: ImageRef) -> str | None:
    """The commit the image was built from, if the message is the pipeline's setting that image."""
    if f"Image: {image}" not in message:
        return None
    found = _SOURCE_COMMIT.search(message)
    return found.group(1) if found else None
