"""The control API under `/_sandbox/`: inspect stores, seed items, inject faults, configure.

None of this exists on a real channel; it is how tests, benchmarks and merchants drive and
observe the emulated stores.

    GET    /_sandbox/health
    POST   /_sandbox/reset
    DELETE /_sandbox/{kind}/{store}
    GET    /_sandbox/{kind}/{store}/items
    GET    /_sandbox/{kind}/{store}/items/{sku}
    PUT    /_sandbox/{kind}/{store}/items/{sku}
    GET    /_sandbox/{kind}/{store}/requests?since=<unix seconds | ISO 8601>
    GET    /_sandbox/{kind}/{store}/faults
    POST   /_sandbox/{kind}/{store}/faults
    GET    /_sandbox/{kind}/{store}/config
    POST   /_sandbox/{kind}/{store}/config
    POST   /_sandbox/{kind}/{store}/sales
    GET    /_sandbox/{kind}/{store}/orders/{order_id}
    POST   /_sandbox/{kind}/{store}/orders/{order_id}/cancel | refund | pay | fulfill  (order_book.py)
    *      /_sandbox/{kind}/{store}/{resource}   a kind's own views (`Store.control_resource`)
"""
from __future__ import annotations

from .clock import parse_instant
from .messages import HttpError, Request, Response
from .order_book import ACTIONS
from .store import Store
from .stores import Stores


def _allow(request: Request, *methods: str) -> None:
    if request.method not in methods:
        raise HttpError(405, f"{request.method} not allowed on {request.path}", headers={"Allow": ", ".join(methods)})


class Control:
    """Routes `/_sandbox/...` requests to the stores; `segments` follow `/_sandbox/`."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    def handle(self, request: Request, segments: list[str]) -> Response:
        if segments == ["health"]:
            _allow(request, "GET")
            return Response(200, {"ok": True})
        if segments == ["reset"]:
            _allow(request, "POST")
            self.stores.clear()
            return Response(200, {"reset": "all"})
        if len(segments) < 2 or not segments[0] or not segments[1]:
            raise HttpError(404, f"no control route {request.method} {request.path}")
        kind, name, *rest = segments
        if not rest:
            _allow(request, "DELETE")
            self.stores.drop(kind, name)
            return Response(200, {"reset": f"{kind}/{name}"})
        store = self.stores.get(kind, name)
        resource, *tail = rest
        if resource == "items" and not tail:
            _allow(request, "GET")
            return Response(200, {"items": store.items_view()})
        if resource == "items" and len(tail) == 1 and tail[0]:
            _allow(request, "GET", "PUT")
            if request.method == "PUT":
                return Response(200, store.put_item(tail[0], request.json_object()))
            return Response(200, store.item_view(tail[0]))
        if resource == "orders" and tail and tail[0]:
            return self._order(request, store, tail)
        if tail:
            raise HttpError(404, f"no control route {request.method} {request.path}")
        if resource == "requests":
            _allow(request, "GET")
            return Response(200, {"requests": store.requests_view(self._since(request))})
        if resource == "faults":
            _allow(request, "GET", "POST")
            if request.method == "POST":
                return Response(200, {"faults": store.set_faults(request.json_object())})
            return Response(200, {"faults": store.faults_view()})
        if resource == "config":
            _allow(request, "GET", "POST")
            if request.method == "POST":
                return Response(200, {"config": store.set_config(request.json_object())})
            return Response(200, {"config": store.config_view()})
        if resource == "sales":
            _allow(request, "POST")
            return store.record_sale(request.json_object())
        # Kind-specific views (e.g. a Shopify store's throttle stats) come after the shared ones.
        answer = store.control_resource(request, resource)
        if answer is not None:
            return answer
        raise HttpError(404, f"no control route {request.method} {request.path}")

    @staticmethod
    def _since(request: Request) -> float | None:
        since = request.query.get("since", "")
        if not since:
            return None
        try:
            return parse_instant(since)
        except ValueError:
            raise HttpError(400, f"since must be unix seconds or an ISO 8601 time, got {since!r}") from None

    @staticmethod
    def _order(request: Request, store: Store, tail: list[str]) -> Response:
        order_id = tail[0]
        if len(tail) == 1:
            _allow(request, "GET")
            return Response(200, store.order_view(order_id))
        if len(tail) == 2 and tail[1] in ACTIONS:
            _allow(request, "POST")
            handlers = {
                "cancel": store.cancel_order,
                "refund": store.refund_order,
                "pay": store.pay_order,
                "fulfill": store.fulfill_order,
            }
            return handlers[tail[1]](order_id, request.json_object())
        raise HttpError(404, f"no control route {request.method} {request.path}")
