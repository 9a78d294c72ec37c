"""The merchandisers' dashboard in a real headless browser, against the live stack (gunicorn,
Celery worker and beat, the sandbox): a channel whose store starts answering 503 turns red, and
the dashboard's "Resync failed SKUs" brings it back once the store recovers."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from channels.models import ChannelCircuit, ChannelHealth, SyncMark
from channels.services.alerts import health_of
from tests.factories import product_with_variants, sandbox_channel
from tests.support.sandbox import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.browser]

KIND = "woocommerce"  # a kind whose live values can be read back, so the resync is verified
SKU = "DASH-1"
PASSWORD = "dashboard-pw-1"
SECONDS = 1000  # Playwright's timeouts are in milliseconds


def _merchandiser() -> User:
    user = User.objects.create_user(username="merch", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="merchandiser")[0])
    return user


def _log_in(page, web_url: str, user: User) -> None:
    page.goto(f"{web_url}/admin/login/?next=/admin/dashboard/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/dashboard/$"))


def test_a_channel_answering_503_turns_red_and_the_dashboard_resync_brings_it_back(live, web_url, store_name, pim, page):
    from playwright.sync_api import expect

    # given: a WooCommerce channel in sync, with small thresholds, and a merchandiser logged in
    live.sandbox.put_item(KIND, store_name, SKU, price="10.00", available=0)
    channel = sandbox_channel(live, KIND, store_name, name="dash-woo")
    # Dead after 2 s without a success while work is owed. This test is about dead and back:
    # the degraded rule (an error rate over a window, which still counts the outage's failures
    # for a while after the recovery) is kept out of it with an unreachable minimum of attempts.
    health_of(channel)
    ChannelHealth.objects.filter(channel=channel).update(expected_interval_s=1, degraded_min_attempts=10_000)
    product_with_variants(handle="dash", skus=[SKU], price="10.00")
    wait_until(lambda: live.sandbox.item(KIND, store_name, SKU)["price"] == "10.00", timeout=20, message="seed price")
    wait_until(lambda: not SyncMark.objects.pending().filter(channel=channel).exists(), timeout=20, message="seed settled")
    _log_in(page, web_url, _merchandiser())
    card = page.locator(f'[data-channel-name="{channel.name}"]')
    badge = card.locator(".dash-badge")
    expect(badge).to_have_attribute("data-state", "healthy", timeout=30 * SECONDS)
    # the admin's own stylesheet is served by gunicorn too (whitenoise)
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).display") != "inline"

    # when: the store answers 503 and the PIM changes the price
    live.sandbox.fault(KIND, store_name, status=503, seconds=600)
    assert pim.patch(f"/api/v1/variants/{SKU}/", {"price": "12.50"}, format="json").status_code == 200

    # then: the dashboard turns the channel red by itself, with the failure and its code
    expect(badge).to_have_attribute("data-state", "dead", timeout=90 * SECONDS)
    failure = card.locator(f'[data-list="failures"] tr[data-sku="{SKU}"]').first
    expect(failure).to_contain_text("503", timeout=30 * SECONDS)
    expect(card.locator('[data-list="alerts"] li[data-kind="dead_channel"]')).to_be_visible(timeout=60 * SECONDS)

    # given: the operator acts before the breaker's next probe (so only the resync can bring
    # it back), once the store is up again
    wait_until(
        lambda: ChannelCircuit.objects.filter(channel=channel, state=ChannelCircuit.State.OPEN).update(
            probe_at=timezone.now() + timedelta(hours=1)
        ),
        timeout=60, message="the circuit never opened",
    )
    live.sandbox.fault(KIND, store_name, clear=True)

    # when
    card.locator('[data-action="resync"]').click()

    # then: the job is queued, runs and is verified; the channel is green; the store has the price
    expect(page.locator(".messagelist")).to_contain_text("resync", timeout=10 * SECONDS)
    card = page.locator(f'[data-channel-name="{channel.name}"]')
    job = card.locator('[data-list="jobs"] li').first
    expect(job).to_have_attribute("data-status", "done", timeout=90 * SECONDS)
    expect(job).to_contain_text("1/1")
    expect(card.locator(".dash-badge")).to_have_attribute("data-state", "healthy", timeout=90 * SECONDS)
    expect(card.locator('[data-list="alerts"] li[data-kind="dead_channel"]')).to_have_count(0, timeout=60 * SECONDS)
    assert live.sandbox.item(KIND, store_name, SKU)["price"] == "12.50"
