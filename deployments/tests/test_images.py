"""Image references: the grammar of distribution/reference, through the validator and
through the API (400 naming `image`)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from clusters.tests.factories import ClusterFactory
from deployments.images import validate_image_reference
from deployments.models import Deployment
from hypervisor.tests.hypothesis_profiles import scaled

HEX64 = "0123456789abcdef" * 4

VALID = [
    "registry.example.com:5000/team/trainer:1.4",
    f"python@sha256:{HEX64}",
    "ubuntu",
    "localhost:5000/a/b:c",
    "[::1]:5000/x",
    "python:3.11-slim",
    "library/ubuntu:22.04",
    f"ghcr.io/org/img:1.0@sha256:{HEX64}",
    "my-registry.io/a__b/c.d-e/f---g:Tag_1.0-rc",
    "Registry.Example.COM/team/trainer",  # the domain may have capitals, the path not
    "a" * 255,  # the longest name
    "x:" + "t" * 128,  # the longest tag
    f"x@sha512:{HEX64 * 2}",
]

INVALID = [
    pytest.param("Ubuntu", id="uppercase-name"),
    pytest.param("library/Ubuntu", id="uppercase-path"),
    pytest.param("registry.example.com/Team/trainer:1.0", id="uppercase-path-after-domain"),
    pytest.param("ubuntu\n", id="trailing-newline"),
    pytest.param("ubuntu:latest\n", id="trailing-newline-after-tag"),
    pytest.param("\nubuntu", id="leading-newline"),
    pytest.param("ubuntu\r\n", id="trailing-crlf"),
    pytest.param("ubüntu", id="unicode-letter"),
    pytest.param("ubuntu:\uff11", id="unicode-digit-in-tag"),
    pytest.param("ubuntu:latest\u200b", id="zero-width-space"),
    pytest.param("a" * 256, id="name-256-chars"),
    pytest.param("registry.example.com/" + "a" * 235, id="name-with-domain-256-chars"),
    pytest.param("", id="empty"),
    pytest.param("x:", id="empty-tag"),
    pytest.param("x:" + "t" * 129, id="tag-129-chars"),
    pytest.param("x:-tag", id="tag-starting-with-dash"),
    pytest.param(f"python@sha256:{HEX64[:63]}", id="sha256-63-hex"),
    pytest.param(f"python@sha256:{HEX64}a", id="sha256-65-hex"),
    pytest.param("python@sha256:" + "g" * 64, id="sha256-not-hex"),
    pytest.param(f"python@sha512:{HEX64}", id="sha512-64-hex"),
    pytest.param("python@sha256:", id="digest-without-hex"),
    pytest.param("python@", id="empty-digest"),
    pytest.param("ubuntu latest", id="inner-space"),
    pytest.param(" ubuntu", id="leading-space"),
    pytest.param("ubuntu ", id="trailing-space"),
    pytest.param("ubuntu\t", id="trailing-tab"),
    pytest.param("team/ trainer", id="space-in-path"),
    pytest.param("/ubuntu", id="leading-slash"),
    pytest.param("ubuntu/", id="trailing-slash"),
    pytest.param("a//b", id="empty-component"),
    pytest.param("a-", id="trailing-separator"),
    pytest.param(":latest", id="tag-only"),
    pytest.param("registry:abc/x", id="port-not-numeric"),
    pytest.param("ubuntu\x00", id="nul"),
]


@pytest.mark.parametrize("reference", VALID)
def test_valid_references_pass(reference):
    validate_image_reference(reference)


@pytest.mark.parametrize("reference", INVALID)
def test_invalid_references_fail(reference):
    with pytest.raises(ValidationError):
        validate_image_reference(reference)


@pytest.mark.django_db
@pytest.mark.parametrize("reference", VALID[:5])
def test_the_api_keeps_a_valid_reference_as_given(owner, organization, as_user, reference):
    cluster = ClusterFactory(organization=organization)

    response = as_user(owner).post(
        "/api/v1/deployments", _body(cluster, image=reference), format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["image"] == reference
    assert Deployment.objects.get().image == reference


@pytest.mark.django_db
@pytest.mark.parametrize("reference", [*INVALID, None, 5, True, ["ubuntu"], {"name": "ubuntu"}])
def test_the_api_refuses_an_invalid_reference_naming_image(owner, organization, as_user, reference):
    cluster = ClusterFactory(organization=organization)

    response = as_user(owner).post(
        "/api/v1/deployments", _body(cluster, image=reference), format="json"
    )

    # 5 too: a number is no string (API.md: no silent coercion; hypervisor.fields).
    assert response.status_code == 400
    assert list(response.json()) == ["image"]
    assert response.json()["image"]  # with a reason
    assert not Deployment.objects.exists()


def _body(cluster, **overrides) -> dict:
    return {
        "cluster": cluster.pk,
        "name": "job",
        "resources": {"cpu": 1, "ram_mb": 1, "gpu": 0},
        **overrides,
    }


# --- properties -------------------------------------------------------------------------

_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_ALNUM = _LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_alnum = st.text(_LOWER, min_size=1, max_size=8)
_separator = st.sampled_from(["_", ".", "__", "-", "--", "---"])
_component = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    _alnum,
    st.lists(st.tuples(_separator, _alnum), max_size=2),
)
_label = st.builds(
    lambda edge, middle: edge + (middle + edge if middle else ""),
    st.text(_ALNUM, min_size=1, max_size=3),
    st.text(_ALNUM + "-", max_size=6),
)
_host = (
    st.just("localhost")
    | st.lists(_label, min_size=2, max_size=4).map(".".join)
    | st.sampled_from(["[::1]", "[2001:db8::1]", "[fe80::a:b]"])
)
_domain = st.builds(
    lambda host, port: host + (f":{port}" if port is not None else ""),
    _host,
    st.none() | st.integers(1, 65535),
)
_tag = st.builds(
    lambda first, rest: first + rest,
    st.text(_ALNUM + "_", min_size=1, max_size=1),
    st.text(_ALNUM + "_.-", max_size=20),
)
_digest = st.sampled_from(["sha256:" + HEX64, "sha512:" + HEX64 * 2])


@st.composite
def references(draw) -> str:
    """References built from the grammar, within the length limits."""
    name = "/".join(draw(st.lists(_component, min_size=1, max_size=4)))
    domain = draw(st.none() | _domain)
    text = f"{domain}/{name}" if domain else name
    if draw(st.booleans()):
        text += ":" + draw(_tag)
    if draw(st.booleans()):
        text += "@" + draw(_digest)
    return text


@settings(max_examples=scaled(100), deadline=None)
@given(references())
def test_every_reference_the_grammar_builds_passes(reference):
    validate_image_reference(reference)


@settings(max_examples=scaled(100), deadline=None)
@given(references(), st.sampled_from(["\n", " ", "\t", "É", "é", "\u00a0", "\x00", "😀"]))
def test_whitespace_or_unicode_anywhere_fails(reference, intruder):
    # Splice the intruder between two characters, or at either end.
    for at in (0, len(reference) // 2, len(reference)):
        with pytest.raises(ValidationError):
            validate_image_reference(reference[:at] + intruder + reference[at:])


@settings(max_examples=scaled(200), deadline=None)
@given(st.text(max_size=600))
def test_any_text_is_either_a_reference_or_a_validation_error(text):
    try:
        validate_image_reference(text)
    except ValidationError:
        return
    # What passes is printable ASCII without whitespace, within the length limit.
    assert text.isascii() and text.isprintable()
    assert not any(c.isspace() for c in text)
    assert 0 < len(text) <= 512
