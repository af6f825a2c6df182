"""Bad input never gets a 5xx: malformed bodies, values, query parameters and paths for
the create endpoints of clusters and deployments, swept by hand and by hypothesis.

Every refused value is a 4xx naming the field (nested fields by their path) with a
non-empty reason. Two of DRF's coercions stay allowed and are not swept here as "bad":
an ASCII numeric string for a number ("5"), and 1/0/"true"/"false" for a boolean. A
number for a string, non-ASCII digits, and control or bidi characters in names are bad
(issue 16, finding 13; `hypervisor.fields`).
"""

from __future__ import annotations

import json
import unicodedata

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment
from deployments.tests.factories import DeploymentFactory
from hypervisor.fields import validate_display_text
from hypervisor.tests.hypothesis_profiles import scaled

pytestmark = pytest.mark.django_db

CLUSTERS = "/api/v1/clusters"
DEPLOYMENTS = "/api/v1/deployments"
HUGE = 10**30


def _nested(depth: int):
    """[{"a": [{"a": ... }]}] `depth` levels deep: junk that is still valid JSON."""
    value: object = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


JUNK = _nested(60)
# Wrong for any field: nothing here is a number, a string or a boolean that DRF coerces.
ANY_FIELD_BAD = [None, [], {}, [1], {"value": 1}, JUNK]
INTEGER_BAD = [
    *ANY_FIELD_BAD,
    True,
    False,
    "abc",
    "",
    "1.5",
    1.5,
    -1,
    HUGE,
    -HUGE,
    "1e400",
]
CPU_BAD = [
    *ANY_FIELD_BAD,
    True,
    False,
    "abc",
    "",
    -1,
    -0.001,
    0.0001,  # 4 decimals
    1.2345,
    "0.2500",  # 4 decimal places written out, even if the value has 2
    HUGE,
    1e308,
    "NaN",
    "Infinity",
    "-Infinity",
]
ID_BAD = [*ANY_FIELD_BAD, True, False, "abc", "", -1, 0, HUGE, -HUGE]
# Numbers where strings belong, and characters that spoof what pages and logs show:
# controls, a right-to-left override, a zero-width joiner, a line separator.
NOT_A_NAME = [5, 1.5, "a\x07b", "a\x1bb", "evil\u202egnp.exe", "a\u200db", "a\u2028b"]
# Digits Python's int() and Decimal() read, but that are no JSON or ASCII number.
NOT_ASCII_DIGITS = ["\u0661", "\uff11", "\u0967"]
RESOURCES_BAD = [*ANY_FIELD_BAD, "8 cores", 5, True, [1, 2, 3]]


def _deployment_body(cluster: Cluster) -> dict:
    return {
        "cluster": cluster.pk,
        "name": "job",
        "image": "registry.example.com/team/job:1",
        "resources": {"cpu": 1, "ram_mb": 128, "gpu": 0},
        "priority": 5,
        "preemptible": True,
        "depends_on": [],
    }


def _cluster_body(cluster: Cluster) -> dict:
    return {
        "organization": cluster.organization_id,
        "name": "fresh-name",
        "capacity": {"cpu": 4, "ram_mb": 1024, "gpu": 1},
        "policy": "fifo",
        "starvation_after_seconds": 60,
    }


DEPLOYMENT_BAD: dict[tuple[str, ...], list] = {
    ("cluster",): [*ID_BAD, "cluster-1"],
    ("name",): [*ANY_FIELD_BAD, True, "", "   ", "x" * 101, "a\x00b", *NOT_A_NAME],
    ("image",): [*ANY_FIELD_BAD, True, "", "x" * 513, "a:b:c:d", 7, 1.5],
    ("resources",): RESOURCES_BAD,
    ("resources", "cpu"): [*CPU_BAD, 8.001, *NOT_ASCII_DIGITS],
    ("resources", "ram_mb"): [*INTEGER_BAD, 32769, *NOT_ASCII_DIGITS],
    ("resources", "gpu"): [*INTEGER_BAD, 5, *NOT_ASCII_DIGITS],
    ("priority",): [*INTEGER_BAD, 1_000_001, *NOT_ASCII_DIGITS],
    ("preemptible",): [*ANY_FIELD_BAD, "maybe", "", 2, -1, 1.5, HUGE],
    ("depends_on",): [
        *(v for v in ANY_FIELD_BAD if v != []),
        "1",
        1,
        True,
        [None],
        [True],
        ["x"],
        [1.5],
        [[1]],
        [{}],
        [{"deployment": None}],
        [{"deployment": "x"}],
        [{"deployment": -1}],
        [{"deployment": HUGE}],
        [{"deployment": 1, "condition": None}],
        [{"deployment": 1, "condition": "sometimes"}],
        [{"deployment": 1, "condition": ["succeeded"]}],
        [HUGE],
        [-1],
        [JUNK],
        list(range(1, 102)),  # over the limit of 100
    ],
}

CLUSTER_BAD: dict[tuple[str, ...], list] = {
    ("organization",): [*ID_BAD, *NOT_ASCII_DIGITS],
    ("name",): [*ANY_FIELD_BAD, True, "", "x" * 101, "a\x00b", *NOT_A_NAME],
    ("capacity",): RESOURCES_BAD,
    ("capacity", "cpu"): CPU_BAD,
    ("capacity", "ram_mb"): INTEGER_BAD,
    ("capacity", "gpu"): INTEGER_BAD,
    ("policy",): [*ANY_FIELD_BAD, True, 5, "", "FIFO", "lifo"],
    ("starvation_after_seconds",): [
        *(v for v in ANY_FIELD_BAD if v is not None),  # null: no protection, valid
        True,
        False,
        "abc",
        1.5,
        0,
        -1,
        HUGE,
        "1e400",
    ],
}


def _with(body: dict, path: tuple[str, ...], value) -> dict:
    """A copy of `body` with the field at `path` set to `value`."""
    body = json.loads(json.dumps(body))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def _messages(errors) -> list:
    """Every leaf of an error structure."""
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in _messages(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in _messages(value)]
    return [errors]


def _field_error_problem(response, path: tuple[str, ...]) -> str | None:
    """None when the answer is 400 with a reason for the field at `path`, else what is wrong.

    A reason may also sit on an enclosing field if it names the nested one: "exceeds the
    cluster's capacity in cpu" is about `resources`, for the dimension `cpu`.
    """
    if response.status_code != 400:
        return f"{response.status_code}: {response.content[:200]!r}"
    errors = response.json()
    for depth, key in enumerate(path):
        if not (isinstance(errors, dict) and key in errors):
            named = path[-1] in " ".join(map(str, _messages(errors)))
            if depth and named:
                break
            return f"no error for {'.'.join(path)}: {response.json()}"
        errors = errors[key]
    messages = _messages(errors)
    if not (messages and all(isinstance(m, str) and m.strip() for m in messages)):
        return f"no reason: {response.json()}"
    return None


def _assert_names_field(response, path: tuple[str, ...]) -> None:
    problem = _field_error_problem(response, path)
    assert problem is None, problem


@pytest.fixture
def api(owner, as_user):
    client = as_user(owner)
    client.raise_request_exception = False  # a 500 is an answer to assert on, not a crash
    return client


@pytest.fixture
def cluster(organization):
    return ClusterFactory(organization=organization)


# --- swept by hand ----------------------------------------------------------------------


def _sweep(send, base: dict, path: tuple[str, ...], values: list) -> list[tuple]:
    """Send `base` with each bad value at `path`; return (value, problem) for each miss."""
    misses = []
    for value in values:
        problem = _field_error_problem(send(_with(base, path, value)), path)
        if problem is not None:
            misses.append((value, problem))
    return misses


@pytest.mark.parametrize("path", list(DEPLOYMENT_BAD), ids=".".join)
def test_bad_values_of_a_deployment_field_are_400_naming_it(api, cluster, path):
    def send(body):
        return api.post(DEPLOYMENTS, body, format="json")

    assert _sweep(send, _deployment_body(cluster), path, DEPLOYMENT_BAD[path]) == []
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("path", list(CLUSTER_BAD), ids=".".join)
def test_bad_values_of_a_cluster_field_are_400_naming_it(api, cluster, path):
    def send(body):
        return api.post(CLUSTERS, body, format="json")

    assert _sweep(send, _cluster_body(cluster), path, CLUSTER_BAD[path]) == []
    assert Cluster.objects.count() == 1


@pytest.mark.parametrize("path", [p for p in CLUSTER_BAD if p != ("organization",)], ids=".".join)
def test_bad_values_in_a_cluster_change_are_400_naming_it(api, cluster, path):
    base = _cluster_body(cluster)
    del base["organization"]
    before = (cluster.name, cluster.capacity, cluster.policy, cluster.starvation_after_seconds)

    def send(body):
        return api.patch(f"{CLUSTERS}/{cluster.pk}", body, format="json")

    assert _sweep(send, base, path, CLUSTER_BAD[path]) == []
    cluster.refresh_from_db()
    after = (cluster.name, cluster.capacity, cluster.policy, cluster.starvation_after_seconds)
    assert after == before


@pytest.mark.parametrize(
    ("endpoint", "field", "body"),
    [(DEPLOYMENTS, "cluster", _deployment_body), (CLUSTERS, "organization", _cluster_body)],
)
def test_a_fractional_id_is_not_rounded_to_an_existing_one(api, cluster, endpoint, field, body):
    data = body(cluster)
    data[field] += 0.5

    _assert_names_field(api.post(endpoint, data, format="json"), (field,))


NOT_A_JSON_OBJECT = [
    ("", "application/json", 400),
    ("{", "application/json", 400),
    ("{'cluster': 1}", "application/json", 400),
    ('{"name": "x",}', "application/json", 400),
    ("null", "application/json", 400),
    ("5", "application/json", 400),
    ('"a string"', "application/json", 400),
    ("[]", "application/json", 400),
    ('[{"name": "x"}]', "application/json", 400),
    ('{"cpu": NaN}', "application/json", 400),
    ('{"cpu": Infinity}', "application/json", 400),
    (b"\xff\xfe\x00", "application/json", 400),
    ('{"name": "\\ud800"}', "application/json", 400),  # a lone surrogate
    (json.dumps(_nested(200)), "application/json", 400),
    ("name=x&image=ubuntu", "application/x-www-form-urlencoded", 415),
    ("hello", "text/plain", 415),
    ("<xml/>", "application/xml", 415),
]


@pytest.mark.parametrize("endpoint", [CLUSTERS, DEPLOYMENTS])
def test_a_body_that_is_no_json_object_is_4xx_with_a_reason(api, endpoint):
    misses = []
    for content, content_type, status in NOT_A_JSON_OBJECT:
        response = api.generic("POST", endpoint, content, content_type=content_type)
        if response.status_code != status or not response.json():
            misses.append((content[:40], response.status_code, response.content[:200]))

    assert misses == []


@pytest.mark.parametrize("endpoint", [CLUSTERS, DEPLOYMENTS])
def test_brackets_nested_beyond_the_parsers_depth_are_400(api, endpoint):
    response = api.generic("POST", endpoint, "[" * 100_000, content_type="application/json")

    assert response.status_code == 400


BAD_QUERIES = [
    {"cluster": "x"},
    {"cluster": str(HUGE)},
    {"cluster": "-1"},
    {"cluster": ""},
    {"status": "unknown"},
    {"status": "\x00"},
    {"organization": "1.0e3"},
    {"organization": str(HUGE)},
    {"organization": "\x00"},
    {"page": "abc"},
    {"page": str(HUGE)},
    {"page": "-1"},
    {"page_size": "abc"},
    {"page_size": str(HUGE)},
    {"page_size": "-5"},
]


@pytest.mark.parametrize("endpoint", [CLUSTERS, DEPLOYMENTS])
def test_bad_query_parameters_are_4xx_with_a_reason_or_ignored(api, cluster, endpoint):
    DeploymentFactory(cluster=cluster)
    misses = []
    for params in BAD_QUERIES:
        response = api.get(endpoint, params)
        if response.status_code >= 500 or (response.status_code >= 400 and not response.json()):
            misses.append((params, response.status_code))

    assert misses == []


def test_huge_or_odd_ids_in_paths_are_a_json_404(api):
    misses = []
    for pk in [str(HUGE), "9" * 19, "-1", "0", "1e5", "%00"]:
        for method, path in [
            ("GET", f"{CLUSTERS}/{pk}"),
            ("PATCH", f"{CLUSTERS}/{pk}"),
            ("DELETE", f"{CLUSTERS}/{pk}"),
            ("GET", f"{CLUSTERS}/{pk}/queue"),
            ("GET", f"{DEPLOYMENTS}/{pk}"),
            ("GET", f"{DEPLOYMENTS}/{pk}/events"),
            ("GET", f"{DEPLOYMENTS}/{pk}/dependents"),
            ("POST", f"{DEPLOYMENTS}/{pk}/complete"),
            ("POST", f"{DEPLOYMENTS}/{pk}/fail"),
            ("POST", f"{DEPLOYMENTS}/{pk}/cancel"),
        ]:
            response = api.generic(method, path, "{}", content_type="application/json")
            if response.status_code != 404 or "json" not in response["Content-Type"]:
                misses.append((method, path, response.status_code, response["Content-Type"]))

    assert misses == []


# --- swept by hypothesis ----------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
FUZZ = settings(
    max_examples=scaled(10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _assert_accepted_or_named(response, path: tuple[str, ...], created: int) -> None:
    if response.status_code != created:
        _assert_names_field(response, path)


@pytest.mark.parametrize("path", list(DEPLOYMENT_BAD), ids=".".join)
def test_any_json_in_a_deployment_field_is_accepted_or_400_naming_it(api, cluster, path):
    @FUZZ
    @given(value=json_values)
    def check(value):
        body = _with(_deployment_body(cluster), path, value)
        _assert_accepted_or_named(api.post(DEPLOYMENTS, body, format="json"), path, 201)

    check()


@pytest.mark.parametrize("path", list(CLUSTER_BAD), ids=".".join)
def test_any_json_in_a_cluster_field_is_accepted_or_400_naming_it(api, cluster, path):
    @FUZZ
    @given(value=json_values, name=st.uuids())
    def check(value, name):
        body = _with({**_cluster_body(cluster), "name": f"c-{name}"}, path, value)
        _assert_accepted_or_named(api.post(CLUSTERS, body, format="json"), path, 201)

    check()


@pytest.mark.parametrize("endpoint", [CLUSTERS, DEPLOYMENTS])
def test_any_json_document_but_a_valid_body_is_4xx(api, endpoint):
    @FUZZ
    @given(body=json_values)
    def check(body):
        response = api.post(endpoint, body, format="json")
        assert 400 <= response.status_code < 500, (body, response.status_code)
        assert response.json()

    check()


# --- bounds on the work of one request (issue 16) ----------------------------------------


def test_an_over_long_depends_on_is_refused_before_any_item_is_read(api, cluster, settings):
    """180,000 items took 30 s (each validated before the length was checked) and ended
    in a worker timeout. Items that are all invalid prove the length comes first."""
    settings.DEPLOYMENT_MAX_DEPENDENCIES = 100
    body = {**_deployment_body(cluster), "depends_on": ["x"] * 180_000}

    response = api.post(DEPLOYMENTS, body, format="json")

    assert response.status_code == 400
    assert response.json() == {"depends_on": ["Ensure this field has no more than 100 elements."]}


def test_the_dependency_limit_is_a_setting(api, cluster, settings):
    settings.DEPLOYMENT_MAX_DEPENDENCIES = 2
    body = {**_deployment_body(cluster), "depends_on": [1, 2, 3]}

    response = api.post(DEPLOYMENTS, body, format="json")

    assert response.json() == {"depends_on": ["Ensure this field has no more than 2 elements."]}


# --- strict input (issue 16, finding 13) ---------------------------------------------------


@pytest.mark.parametrize("number", ["1e-999999999", "0.0001", "1E-4", "2.5e-3000"])
def test_json_numbers_are_read_exactly_not_through_floats(api, cluster, number):
    """`"cpu": 1e-999999999` was stored as 0 (the float underflowed)."""
    body = json.dumps(_deployment_body(cluster)).replace('"cpu": 1', f'"cpu": {number}')

    response = api.generic("POST", DEPLOYMENTS, body, content_type="application/json")

    _assert_names_field(response, ("resources", "cpu"))
    assert not Deployment.objects.exists()


def test_an_exact_decimal_is_stored_exactly(api, cluster):
    body = json.dumps(_deployment_body(cluster)).replace('"cpu": 1', '"cpu": 0.125')

    response = api.generic("POST", DEPLOYMENTS, body, content_type="application/json")

    assert response.status_code == 201, response.content
    assert Deployment.objects.get().cpu == 125


@pytest.mark.parametrize("endpoint", [CLUSTERS, DEPLOYMENTS, "/api/v1/auth/login"])
def test_a_body_over_the_upload_limit_is_a_json_400(api, settings, endpoint):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"name": "x" * 20_000})

    response = api.generic("POST", endpoint, body, content_type="application/json")

    assert response.status_code == 400
    assert "10000 bytes" in response.json()["detail"]


def test_an_organization_name_is_a_plain_string(api):
    misses = _sweep(
        lambda body: api.post("/api/v1/organizations", body, format="json"),
        {"name": "acme"},
        ("name",),
        NOT_A_NAME,
    )

    assert misses == []


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=30))
def test_a_name_is_refused_exactly_when_it_holds_a_character_that_does_not_show(name):
    """Property over any text: refused iff some character is a control, format,
    surrogate, private-use, unassigned or separator character."""
    hidden = any(
        unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"} for c in name
    )
    try:
        validate_display_text(name)
    except DjangoValidationError:
        assert hidden
    else:
        assert not hidden
