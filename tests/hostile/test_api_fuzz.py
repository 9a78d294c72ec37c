"""The API against its own OpenAPI schema, fuzzed by schemathesis in-process (WSGI): for
every operation, generated valid and invalid requests with a real token that may write
everything (pim and ops), half of them aimed at rows that exist. Every answer is documented
in the schema, no answer is a 5xx, and a refused request (any 4xx) writes nothing.

Derandomized (a run is the same run every time, in CI too) and not shrunk (a failure is
reported as generated, which keeps the time bounded)."""
from __future__ import annotations

import hashlib
from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from syncsvc.wsgi import application
from tests.factories import ChannelFactory, product_with_variants
from tests.hostile.conftest import role_token

# Per operation and mode (valid, invalid data): 2 x 15 x 40 operations = 1,200 requests a run.
EXAMPLES = 15
MINIMUM_REQUESTS = 1000
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(db):
    # In-process WSGI calls would close the test's connection (and its transaction) at the end
    # of each request; keep it open, as Django's test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _seed() -> dict:
    """Rows the generated requests can find (made again before each operation: an earlier
    operation's DELETE may have taken them): a product with two variants, a channel with an
    attribute mapping, a resync job and a catalog refresh."""
    from django.utils import timezone

    from channels.models import AttributeMapping, CatalogRefresh, Channel, ResyncJob
    from inventory.models import Product

    if not Product.objects.filter(handle="fuzz").exists():
        product_with_variants(handle="fuzz", skus=["FUZZ-1", "FUZZ-2"], price="10.00", stock=5)
    channel = Channel.objects.filter(name="fuzz-channel").first() or ChannelFactory(
        name="fuzz-channel", kind="webhook", base_url="http://127.0.0.1:9/hook",
        credentials={"secret": "s", "webhook_secret": "w"})
    mapping = AttributeMapping.objects.filter(channel=channel).first() or AttributeMapping.objects.create(
        channel=channel, pim_attribute="colour", target="color")
    job = ResyncJob.objects.filter(channel=channel).first() or ResyncJob.objects.create(
        channel=channel, created_at=timezone.now())
    refresh = CatalogRefresh.objects.filter(channel=channel).first() or CatalogRefresh.objects.create(
        channel=channel, created_at=timezone.now())
    return {"handle": "fuzz", "sku": "FUZZ-1", "id": channel.pk, "mapping_id": mapping.pk, "job_id": job.pk,
            "refresh_id": refresh.pk, "event_type": "price.updated", "version": "1"}


def _aim(case, seeded: dict) -> None:
    """Half the cases (chosen by a hash of the case, so stable) name rows that exist."""
    if not case.path_parameters:
        return
    digest = hashlib.sha256(repr(sorted(case.path_parameters.items(), key=str)).encode()).digest()
    if digest[0] % 2:
        return
    for name in case.path_parameters:
        if name in seeded:
            case.path_parameters[name] = seeded[name]


def _describe(case, response) -> str:
    return (f"{case.method} {case.formatted_path} query={case.query!r} body={str(case.body)[:300]!r} "
            f"-> {response.status_code} {response.text[:300]!r}")


def test_every_generated_request_is_answered_as_documented_and_a_refusal_writes_nothing(api_schema, snapshot):
    # given
    headers = {"Authorization": f"Token {role_token('pim', 'ops')}"}
    failures: dict[str, str] = {}  # one example per operation, status and failure
    answered: Counter[tuple[str, int]] = Counter()
    calls = 0
    seeded: dict = {}

    def exercise(case) -> None:
        nonlocal calls
        _aim(case, seeded)
        # A savepoint per request: a 5xx that broke the transaction is rolled back to it, and
        # the run goes on to report every failure, not only the first.
        savepoint = transaction.savepoint()
        before = snapshot.take()
        response = case.call(headers=headers)
        calls += 1
        answered[case.operation.label, response.status_code] += 1
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        try:
            case.validate_response(response, checks=CHECKS)
        except (FailureGroup, Failure) as error:  # collect, go on
            titles = [getattr(e, "title", type(e).__name__) for e in getattr(error, "exceptions", [error])]
            failures.setdefault(f"{case.operation.label} {response.status_code}: {', '.join(titles)}",
                                _describe(case, response))
            return
        if 400 <= response.status_code < 500:
            changed = snapshot.changed(before, snapshot.take())
            if changed:
                failures.setdefault(f"{case.operation.label} {response.status_code}: a refusal wrote {changed}",
                                    _describe(case, response))

    # when
    for result in api_schema.get_all_operations():
        operation = result.ok()
        seeded.update(_seed())
        for mode in GenerationMode:
            run = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                           phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))(
                given(case=operation.as_strategy(generation_mode=mode))(exercise))
            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
                assert mode is GenerationMode.NEGATIVE, operation.label

    # then
    print("\n".join(f"{count:4} {status} {label}" for (label, status), count in sorted(answered.items())))
    assert calls >= MINIMUM_REQUESTS, calls
    # The requests reach the views' work, not only their refusals: most operations answer a 2xx.
    succeeded = {label for (label, status) in answered if status < 300}
    assert len(succeeded) >= len({label for label, _ in answered}) * 2 // 3, sorted(succeeded)
    assert not failures, f"{len(failures)} kinds of failure in {calls} requests:\n" + "\n".join(
        f"{kind}\n    e.g. {example}" for kind, example in failures.items())
