"""The network faults (tests/chaos/network.py) through the standard chaos scenario, as
test_chaos.py runs the others, plus the proof that each phase's fault hit the worker's calls.
Temporary: once `NETWORK_FAULTS` is registered into `FAULTS`, test_chaos.py runs them.
The table goes to var/chaos-results-network.md (-short for the short form)."""
from __future__ import annotations

import os

import pytest

from tests.chaos.faults import FULL, SHORT
from tests.chaos.network import NETWORK_FAULTS
from tests.chaos.scenario import RESULTS_DIR, Scenario, write_table

pytestmark = pytest.mark.stack
FULL_RUN = os.environ.get("SYNCSVC_CHAOS") == "full"
DURATIONS = FULL if FULL_RUN else SHORT


@pytest.fixture(scope="module")
def outcomes():
    collected = []
    yield collected
    if collected:
        name = "chaos-results-network.md" if FULL_RUN else "chaos-results-network-short.md"
        command = "pytest tests/chaos/test_network_chaos.py" + (" (SYNCSVC_CHAOS=full)" if FULL_RUN else "")
        print("\n" + write_table(collected, path=RESULTS_DIR / name, command=command))


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
