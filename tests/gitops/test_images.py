"""Image references as a release file pins them: read by the grammar of references, which says where the name, the
tag and the digest are. Which of them an environment may run is the admission policies' to say (test_set_image.py)."""

from __future__ import annotations

import pytest
from gitops.images import ImageError, ImageRef, repository_of

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("reference", "name", "tag", "digest"),
    [
        (f"ghcr.io/your-org/microservice-demo:1.2.3@sha256:{HEX}", "ghcr.io/your-org/microservice-demo", "1.2.3",
         f"sha256:{HEX}"),
        (f"localhost:5000/team/app@sha256:{HEX}", "localhost:5000/team/app", None, f"sha256:{HEX}"),
        (f"app:v1_rc.2@sha256:{HEX}", "app", "v1_rc.2", f"sha256:{HEX}"),
        # Grammatical, though no policy admits them: the policies say so, on the render.
        (f"docker.io/library/nginx:latest@sha256:{HEX.upper()}", "docker.io/library/nginx", "latest",
         f"sha256:{HEX.upper()}"),
        (f"ghcr.io/your-org/app@sha512:{HEX * 2}", "ghcr.io/your-org/app", None, f"sha512:{HEX * 2}"),
    ],
)  # fmt: skip
def test_a_reference_splits_into_what_the_release_file_pins(
    reference: str, name: str, tag: str | None, digest: str
) -> None:
    image = ImageRef.parse(reference)
    assert (image.name, image.tag, image.digest) == (name, tag, digest)
    assert str(image) == reference


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("ghcr.io/your-org/app:1.0.0", "has no digest"),
        ("ghcr.io/your-org/app", "has no digest"),
        ("ghcr.io/your-org/app@sha256:abc", "is not an image reference"),  # a digest has 32 hex digits at least
        (f"ghcr.io/your-org/app:1 0@sha256:{HEX}", "is not an image reference"),
        (f"ghcr.io/Your-Org/app@sha256:{HEX}", "is not an image reference"),  # a path is lower case
        (f"ghcr.io/your-org/app:-1@sha256:{HEX}", "is not an image reference"),
        (f"ghcr.io/your-org/app:{'1' * 129}@sha256:{HEX}", "is not an image reference"),
        (f"ghcr.io/your-org/app@@sha256:{HEX}", "is not an image reference"),
        (f"@sha256:{HEX}", "is not an image reference"),
        (f" ghcr.io/your-org/app@sha256:{HEX}", "is not an image reference"),
    ],
)
def test_what_is_no_pinned_reference_is_refused_saying_which(reference: str, says: str) -> None:
    with pytest.raises(ImageError) as refused:
        ImageRef.parse(reference)
    assert f"{reference!r} {says}" in str(refused.value)


def test_the_version_label_and_the_short_name_come_from_the_tag_or_the_digest() -> None:
    tagged = ImageRef.parse(f"ghcr.io/your-org/app:1.2.3@sha256:{HEX}")
    assert (tagged.version, tagged.short, tagged.digest_start) == ("1.2.3", "app@sha256:0123456789ab", "0123456789ab")
    untagged = ImageRef.parse(f"ghcr.io/your-org/app@sha512:{HEX * 2}")
    assert (untagged.version, untagged.short) == ("sha512-0123456789ab", "app@sha512:0123456789ab")


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        (f"ghcr.io/your-org/app:1.2.3@sha256:{HEX}", "app"),
        (f"localhost:5000/team/app@sha256:{HEX}", "app"),
        ("app:1", "app"),
        ("app", "app"),
    ],
)
def test_the_repository_is_the_names_last_part(reference: str, repository: str) -> None:
    assert repository_of(reference) == repository
