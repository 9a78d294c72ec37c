"""The network faults (tests/chaos/network.py: a loopback proxy between the worker and one
channel) through the standard chaos scenario, as test_chaos.py runs the others, plus the
proof that each phase's fault hit the worker's calls. Their rows join the same table
(tests/chaos/conftest.py). Full form only (`make chaos`): the short form in `make test` keeps
to two faults."""
from __future__ import annotations

import os

import pytest

from tests.chaos.faults import FULL, SHORT
from tests.chaos.network import NETWORK_FAULTS
from tests.chaos.scenario import Scenario

FULL_RUN = os.environ.get("SYNCSVC_CHAOS") == "full"
pytestmark = [pytest.mark.stack,
              pytest.mark.skipif(not FULL_RUN, reason="network faults run in `make chaos` (SYNCSVC_CHAOS=full) only")]
DURATIONS = FULL if FULL_RUN else SHORT


@pytest.mark.timeout(900 if FULL_RUN else 300)
@pytest.mark.parametrize("fault_name", list(NETWORK_FAULTS))
def test_under_load_a_network_fault_loses_nothing_and_counts_every_sale_once(live, web_url, outcomes, fault_name):
    # given: three channels in sync, under a steady stream of changes and sales
    scenario = Scenario(live, web_url)
    fault = NETWORK_FAULTS[fault_name](DURATIONS)

    # when: the network to one channel fails, phase by phase, and heals
    try:
        outcome = scenario.run(fault_name, fault, lead_in_s=2.0 if not FULL_RUN else 5.0,
                               converge_timeout_s=180 if FULL_RUN else 90)
    finally:
        fault.close()
    outcomes.append(outcome)
    print(f"\n{fault_name}:\n  " + "\n  ".join(claim.line() for claim in outcome.proof))

    # then: every phase's fault hit a call (blackholed, reset, cut and delayed traffic counted)
    assert outcome.proof and not outcome.proof_failures(), f"the fault was not shown to bite: {outcome.proof_failures()}"
    assert not fault.unproven(), fault.unproven()
    counts = fault.counts()
    assert counts["blackhole"].bytes_dropped > 0 and counts["blackhole"].broken > 0, counts
    assert counts["reset"].broken > 0, counts
    assert counts["cut"].broken > 0 and counts["cut"].bytes_up > 0, counts
    assert fault.writes_cut > 0, "no write was applied with its answer cut off (the ambiguous case never happened)"
    assert counts["delay"].bytes_down > 0, counts
    # and the scenario's own checks, as for every fault
    assert outcome.tally.sales_accepted > 0 and outcome.tally.prices > 0 and outcome.in_flight > 0
    assert outcome.double_counted_sales == 0, outcome.divergences
    assert outcome.lost == 0 and outcome.converge_s is not None, outcome.divergences[:20]
