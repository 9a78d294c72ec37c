"""Fault injection under load: each fault, one at a time, over three sandbox channels carrying
price and stock changes and inbound sales; afterwards every channel shows what the PIM says,
nothing is lost, every sale is counted once, and the fault is shown to have taken effect (its
proof: evidence.py). `make chaos` runs every fault at full length (SYNCSVC_CHAOS=full) against
a private PostgreSQL and Redis it starts (private_services.py), which the server-restart
faults restart; `make test` runs the short form (two faults, a few seconds each).
The table goes to var/chaos-results.md (var/chaos-results-short.md for the short form)."""
from __future__ import annotations

import os

import pytest

from tests.chaos import private_services
from tests.chaos.faults import FAULTS, FULL, NEEDS_PRIVATE, SHORT, SHORT_FORM
from tests.chaos.scenario import Scenario

pytestmark = pytest.mark.stack
FULL_RUN = os.environ.get("SYNCSVC_CHAOS") == "full"
DURATIONS = FULL if FULL_RUN else SHORT
SELECTED = list(FAULTS) if FULL_RUN else list(SHORT_FORM)


def _skip_unless_private(fault_name: str) -> None:
    """A server-restart fault restarts only a server this run started for itself, never the
    machine's shared PostgreSQL or Redis."""
    from django.conf import settings
    from django.db import connection

    server = NEEDS_PRIVATE.get(fault_name)
    if server == "redis" and not (private_services.private_redis_in_use(settings.REDIS_URL)
                                  and private_services.private_redis_in_use(settings.CELERY_BROKER_URL)):
        pytest.skip("restarts Redis: only the private one `make chaos` starts (tests/chaos/private_services.py), "
                    "as REDIS_URL and the broker; this run uses another")
    if server == "postgres" and not private_services.private_postgres_in_use(connection.settings_dict.get("PORT")):
        pytest.skip("restarts PostgreSQL: only the private one `make chaos` starts (tests/chaos/private_services.py), "
                    "as DATABASE_URL; this run uses another")


@pytest.mark.timeout(900 if FULL_RUN else 120)
@pytest.mark.parametrize("fault_name", SELECTED)
def test_under_load_a_fault_loses_nothing_and_counts_every_sale_once(live, web_url, outcomes, fault_name):
    _skip_unless_private(fault_name)
    # given: three channels in sync, under a steady stream of changes and sales
    scenario = Scenario(live, web_url)

    # when: the fault strikes mid-stream and ends
    outcome = scenario.run(fault_name, FAULTS[fault_name](DURATIONS), lead_in_s=2.0 if not FULL_RUN else 5.0,
                           converge_timeout_s=180 if FULL_RUN else 60)
    outcomes.append(outcome)

    # then
    assert outcome.tally.sales_accepted > 0 and outcome.tally.prices > 0 and outcome.in_flight > 0
    assert outcome.proof and not outcome.proof_failures(), f"the fault was not shown to bite: {outcome.proof_failures()}"
    assert outcome.double_counted_sales == 0, outcome.divergences
    assert outcome.lost == 0 and outcome.converge_s is not None, outcome.divergences[:20]
