"""GET /api/v1/alerts/ (open first, filters, 400 naming the field) and the state /status/ takes
from the breaker and the open alerts."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import Alert, ChannelCircuit
from channels.services.alerts import alert_clear, alert_raise
from tests.conftest import api_client
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerts():
    shop, mage = ChannelFactory(name="shop"), ChannelFactory(name="mage")
    old, _ = alert_raise(channel=mage, kind="dead_channel", detail="no success in 2 min", data={"owed": 3})
    alert_clear(channel=mage, kind="dead_channel", detail="recovered: 9 successful writes since ...")
    Alert.objects.filter(pk=old.pk).update(opened_at=timezone.now() - timedelta(days=2), cleared_at=timezone.now() - timedelta(days=1))
    degraded, _ = alert_raise(channel=shop, kind="degraded_channel", detail="40% of 50 attempts failed", data={"error_rate": 0.4})
    dead, _ = alert_raise(channel=mage, kind="dead_channel", detail="no success in 2 min, circuit open", data={"owed": 12})
    return {"old": old, "degraded": degraded, "dead": dead, "shop": shop, "mage": mage}


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize("role", ["ops", "merchandiser"])
def test_alerts_list_open_first_with_channel_what_tripped_it_and_when_it_cleared(alerts, role):
    # when
    response = api_client(role).get("/api/v1/alerts/")

    # then: open ones first (newest first), then the cleared
    assert _ids(response) == [alerts["dead"].pk, alerts["degraded"].pk, alerts["old"].pk]
    dead, _, old = response.json()["results"]
    assert dead["channel"] == {"id": alerts["mage"].pk, "name": "mage", "kind": "webhook"}
    assert dead["kind"] == "dead_channel" and dead["open"] is True and dead["cleared_at"] is None
    assert dead["detail"] == "no success in 2 min, circuit open" and dead["data"] == {"owed": 12}
    assert old["open"] is False and old["cleared_at"] and old["cleared_detail"].startswith("recovered: 9")
    assert response.json()["count"] == 3


def test_alerts_filters(alerts, ops):
    assert _ids(ops.get("/api/v1/alerts/?open=true")) == [alerts["dead"].pk, alerts["degraded"].pk]
    assert _ids(ops.get("/api/v1/alerts/?open=false")) == [alerts["old"].pk]
    assert _ids(ops.get("/api/v1/alerts/?channel=mage")) == [alerts["dead"].pk, alerts["old"].pk]
    assert _ids(ops.get(f"/api/v1/alerts/?channel={alerts['shop'].pk}")) == [alerts["degraded"].pk]
    assert _ids(ops.get("/api/v1/alerts/?kind=dead_channel&open=false")) == [alerts["old"].pk]
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    assert _ids(ops.get("/api/v1/alerts/", {"since": since})) == [alerts["dead"].pk, alerts["degraded"].pk]
    assert _ids(ops.get("/api/v1/alerts/?limit=1")) == [alerts["dead"].pk]


@pytest.mark.parametrize(
    ("query", "field"), [("open=maybe", "open"), ("kind=fire", "kind"), ("since=yesterday", "since")]
)
def test_bad_filter_input_is_400_naming_the_field(alerts, ops, query, field):
    # when
    response = ops.get(f"/api/v1/alerts/?{query}")

    # then
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == [field] and body["detail"].startswith(f"{field}: ")


def test_alerts_need_a_token(alerts, client):
    assert client.get("/api/v1/alerts/").status_code == 401


def test_status_state_comes_from_the_breaker_and_the_open_alerts(ops):
    # given
    dead, degraded, _healthy, paused = (ChannelFactory(name=n) for n in ("dead", "degraded", "healthy", "paused"))
    ChannelCircuit.objects.create(channel=dead, state="open", opened_at=timezone.now(), probe_at=timezone.now())
    alert_raise(channel=degraded, kind="degraded_channel", detail="40% failed", data={})
    paused.enabled = False
    paused.save()
    alert_raise(channel=paused, kind="dead_channel", detail="no success", data={})

    # when
    rows = {row["name"]: row for row in ops.get("/api/v1/status/").json()["channels"]}

    # then
    assert {name: row["state"] for name, row in rows.items()} == {
        "dead": "dead", "degraded": "degraded", "healthy": "healthy", "paused": "paused",
    }
    assert rows["dead"]["circuit"]["state"] == "open" and rows["dead"]["circuit"]["probe_at"]
    assert rows["healthy"]["circuit"] == {"state": "closed", "opened_at": None, "probe_at": None}
    assert rows["degraded"]["open_alerts"] == ["degraded_channel"] and rows["healthy"]["open_alerts"] == []
