"""Hostile deliveries to `POST /webhooks/{channel_id}/`: each answered with its code, and
nothing written (no event, no order line, no movement) unless the answer is 200.

In-process (Django's test client, the real view and database) for speed; processing is the
service the inbound worker task runs (`inbound_batch_process`), called directly. A body longer
than declared and a chunked body need a real HTTP server: those go to gunicorn (`web_url`).
The happy paths and the three-deliveries case over real HTTP are in
tests/channels/inbound/test_webhooks.py."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from django.test import Client

from channels.models import InboundEvent, OrderLine
from channels.services.inbound import inbound_batch_process
from inventory.models import StockMovement
from tests.factories import ChannelFactory, product_with_variants
from tests.support.reference import reference_file

SECRET = "whsec-hostile"
LIMIT = 1024 * 1024  # SYNCSVC_INBOUND_MAX_BYTES' default


def _sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _order(sku: str = "HOS-1", order_id: int = 820982911946154508, quantity: int = 1) -> dict:
    order = json.loads(reference_file("samples/shopify-orders-create.rest-example.json").read_text())["order"]
    order.update(id=order_id, financial_status="paid", fulfillment_status=None)
    order["line_items"] = [dict(order["line_items"][0], sku=sku, quantity=quantity, fulfillment_status=None)]
    return order


def _shopify_headers(topic: str = "orders/create", event_id: str | None = None, **extra) -> dict:
    headers = {"HTTP_X_SHOPIFY_TOPIC": topic, "HTTP_X_SHOPIFY_EVENT_ID": event_id or str(uuid.uuid4()),
               "HTTP_X_SHOPIFY_SHOP_DOMAIN": "hostile.myshopify.com", "HTTP_X_SHOPIFY_API_VERSION": "2026-10"}
    return {**headers, **extra}


@pytest.fixture
def shop(db):
    product_with_variants(handle="hos", skus=["HOS-1"], stock=5)
    return ChannelFactory(name="hostile-shop", kind="shopify", base_url="http://127.0.0.1:9/shopify/x",
                          credentials={"access_token": "t", "webhook_secret": SECRET})


@pytest.fixture
def post(shop):
    client = Client(raise_request_exception=False)

    def send(body: bytes, *, signature: str | None = None, content_type: str = "application/json",
             channel=None, **headers):
        headers = headers or _shopify_headers()
        if signature is None:
            signature = _sign(body)
        if signature:
            headers["HTTP_X_SHOPIFY_HMAC_SHA256"] = signature
        return client.post(f"/webhooks/{(channel or shop).pk}/", body, content_type=content_type, **headers)

    return send


def _nothing_stored():
    return not InboundEvent.objects.exists() and not OrderLine.objects.exists() and \
        not StockMovement.objects.exclude(reason="receipt").exists()


def _sales(sku: str = "HOS-1") -> int:
    return StockMovement.objects.filter(variant__sku=sku, reason="sale").count()


# --- bad signatures -------------------------------------------------------------------------

BODY = json.dumps(_order()).encode()
SIGNATURES = {
    "missing": "",
    "wrong secret": _sign(BODY, "not-the-secret"),
    "another body's": _sign(BODY + b" "),
    "not base64": "%%%not-base64%%%",
    "hex instead of base64": hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),
    "truncated": _sign(BODY)[:20],
    "non-ASCII": "é" * 44,
}


@pytest.mark.parametrize("signature", SIGNATURES.values(), ids=SIGNATURES.keys())
def test_a_bad_signature_of_each_kind_is_401_and_stores_nothing(post, signature):
    response = post(BODY, signature=signature)

    assert response.status_code == 401, response.content
    assert "signature" in response.json()["detail"]
    assert _nothing_stored()


def test_a_channel_without_a_webhook_secret_refuses_every_delivery(post, db):
    # given: a channel whose credentials carry no webhook_secret (nothing to check against)
    bare = ChannelFactory(name="bare", kind="shopify", credentials={"access_token": "t"})

    # when: signed with the empty key, which an attacker can compute
    response = post(BODY, signature=_sign(BODY, ""), channel=bare)

    # then
    assert response.status_code == 401 and "webhook_secret" in response.json()["detail"]
    assert _nothing_stored()


@pytest.mark.parametrize("kind, header", [("woocommerce", "HTTP_X_WC_WEBHOOK_SIGNATURE"),
                                          ("amazon", "HTTP_X_SANDBOX_SIGNATURE")])
def test_woocommerce_and_amazon_forgeries_are_401(db, kind, header):
    channel = ChannelFactory(name=f"hostile-{kind}", kind=kind, credentials={"webhook_secret": SECRET})
    body = reference_file({"woocommerce": "samples/woocommerce-order-created.json",
                           "amazon": "samples/amazon-order-change.example.json"}[kind]).read_bytes()

    response = Client().post(f"/webhooks/{channel.pk}/", body, content_type="application/json",
                             HTTP_X_WC_WEBHOOK_TOPIC="order.created", **{header: _sign(body, "forged")})

    assert response.status_code == 401
    assert _nothing_stored()


# --- replays --------------------------------------------------------------------------------

def test_the_same_event_delivered_again_is_a_duplicate_with_no_second_effect(post):
    # given
    headers = _shopify_headers(event_id="evt-replayed")

    # when: delivered three times, then processed
    answers = [post(BODY, **dict(headers)) for _ in range(3)]
    inbound_batch_process()

    # then
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    assert InboundEvent.objects.get().deliveries == 3
    assert _sales() == 1


def test_a_replayed_body_under_a_new_event_id_moves_stock_once(post):
    # given: Shopify signs the body only, so a captured delivery can be replayed with any
    # X-Shopify-Event-Id; the order line, unique per channel, order and line, is the guard
    post(BODY)
    inbound_batch_process()

    # when
    replay = post(BODY)
    inbound_batch_process()

    # then: stored (a new event id), applied as what it is: news of a line already sold
    assert replay.status_code == 200 and not replay.json()["duplicate"]
    assert InboundEvent.objects.count() == 2
    assert _sales() == 1 and OrderLine.objects.count() == 1


def test_a_stale_triggered_at_is_stored_and_cannot_undo_newer_news(post):
    # given: the order was cancelled (news from now)
    cancelled = dict(_order(), cancelled_at="2026-01-02T00:00:00Z")
    post(BODY, **_shopify_headers("orders/create", HTTP_X_SHOPIFY_TRIGGERED_AT="2026-01-01T00:00:00Z"))
    post(json.dumps(cancelled).encode(), **_shopify_headers("orders/cancelled", HTTP_X_SHOPIFY_TRIGGERED_AT="2026-01-02T00:00:00Z"))
    inbound_batch_process()
    assert _sales() == 1 and StockMovement.objects.filter(reason="return").count() == 1

    # when: the creation is replayed under a new event id, dated years back
    stale = post(BODY, **_shopify_headers("orders/create", HTTP_X_SHOPIFY_TRIGGERED_AT="2001-01-01T00:00:00Z"))
    inbound_batch_process()

    # then: stored (Shopify does not sign the timestamp: it cannot be a reason to refuse), noted
    # stale, and the cancelled line is not sold again
    assert stale.status_code == 200
    event = InboundEvent.objects.get(pk=stale.json()["id"])
    assert "stale" in event.detail
    assert _sales() == 1 and OrderLine.objects.get().state == OrderLine.State.CANCELLED


@pytest.mark.parametrize("triggered_at", ["2026-01-01T00:00:00+23:59", "0001-01-01T00:00:00+05:00", "2026-01-01T00:00:00",
                                          "9999-12-31T23:59:59-05:00", "yesterday"])
def test_a_triggered_at_postgresql_cannot_hold_is_read_as_utc_or_as_unknown(post, triggered_at):
    # Python reads offsets up to 23:59 and PostgreSQL refuses those past 15:59; near year 1 or
    # 9999 an offset leaves the range: the time is kept in UTC, or dropped, never a 500
    response = post(BODY, **_shopify_headers(HTTP_X_SHOPIFY_TRIGGERED_AT=triggered_at))

    assert response.status_code == 200, response.content[:300]
    assert InboundEvent.objects.count() == 1


# --- malformed bodies -----------------------------------------------------------------------

MALFORMED = {
    "truncated": BODY[: len(BODY) // 2],
    "empty": b"",
    "invalid UTF-8": b'{"id": 1, "line_items": [], "note": "\xff\xfe"}',
    "a raw NUL byte": BODY[:10] + b"\x00" + BODY[10:],
    "an escaped NUL in a value": json.dumps(_order(sku="HOS-1\u0000")).encode(),
    "an escaped NUL in a key": json.dumps(dict(_order(), **{"k\u0000": 1})).encode(),
    "nested 10,000 levels": b'{"id": 1, "line_items": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "not an object": b"[1, 2, 3]",
    "NaN quantity": BODY.replace(b'"quantity": 1', b'"quantity": NaN'),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_signed_but_malformed_body_is_400_and_stores_nothing(post, body):
    response = post(body)  # signed with the right secret: only the body is wrong

    assert response.status_code == 400, response.content[:300]
    assert response.json()["detail"]
    assert _nothing_stored()


def test_a_nul_in_a_header_is_400(post):
    response = post(BODY, **_shopify_headers(event_id="evt\x00id"))

    assert response.status_code == 400 and "X-Shopify-Event-Id" in response.json()["detail"]
    assert _nothing_stored()


# --- size and type --------------------------------------------------------------------------

def test_a_declared_length_over_the_limit_is_413_before_reading(post):
    response = post(BODY, CONTENT_LENGTH=str(LIMIT + 1), **_shopify_headers())

    assert response.status_code == 413
    assert _nothing_stored()


def test_a_body_over_the_limit_is_413(post):
    body = b'{"id": 1, "pad": "' + b"x" * LIMIT + b'"}'

    response = post(body)

    assert response.status_code == 413
    assert _nothing_stored()


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x",
                                          "application/octet-stream"])
def test_a_body_that_is_not_json_by_its_type_is_415(post, content_type):
    response = post(BODY, content_type=content_type)

    assert response.status_code == 415
    assert _nothing_stored()


# --- over real HTTP: what only a server sees --------------------------------------------------

def _raw(url: str, request: bytes) -> bytes:
    """Send bytes as they are on a socket to the server; the first answer's status line."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        try:
            connection.sendall(request)
        except (BrokenPipeError, ConnectionResetError):  # the server answered and closed early
            pass
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def _head(path: str, length_line: bytes, signature: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Shopify-Topic: orders/create\r\nX-Shopify-Event-Id: {uuid.uuid4()}\r\n"
            f"X-Shopify-Hmac-Sha256: {signature}\r\nConnection: close\r\n").encode() + length_line + b"\r\n"


@pytest.mark.stack
def test_over_http_a_chunked_body_is_read_whole_413_past_the_limit_and_a_body_longer_than_declared_is_cut(live, web_url):
    # given
    product_with_variants(handle="hos", skus=["HOS-1"], stock=5)
    channel = ChannelFactory(name="hostile-http", kind="shopify", credentials={"access_token": "t", "webhook_secret": SECRET})
    path = f"/webhooks/{channel.pk}/"
    big = b'{"id": 1, "pad": "' + b"x" * (LIMIT + 10) + b'"}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (big[i:i + 65536] for i in range(0, len(big), 65536)))

    # when: no Content-Length, chunked; then a small declared length with the signed order after it
    chunked = _raw(web_url, _head(path, b"Transfer-Encoding: chunked\r\n", _sign(big)) + chunks + b"0\r\n\r\n")
    longer = _raw(web_url, _head(path, f"Content-Length: {len(BODY) // 2}\r\n".encode(), _sign(BODY)) + BODY)
    # and a chunked delivery within the limit is read whole (not as an empty body)
    small = _raw(web_url, _head(path, b"Transfer-Encoding: chunked\r\n", _sign(BODY))
                 + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY))

    # then: the server reads no more than declared (the rest is not this request's body), so the
    # signature, made over the whole body, does not match what it read
    assert b" 413 " in chunked + b" ", chunked
    assert b" 401 " in longer + b" ", longer
    assert b" 200 " in small + b" ", small
    assert InboundEvent.objects.filter(channel=channel).count() == 1  # the small chunked one only
