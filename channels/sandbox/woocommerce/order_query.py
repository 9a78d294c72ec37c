"""The date filters and the sort of `GET /orders`, as `WC_REST_CRUD_Controller::prepare_objects_query`
turns them into a `WP_Query`.

- `after` / `before` compare with the order's `date_created`, `modified_after` /
  `modified_before` with its `date_modified`: each a `format: date-time` argument
  (`rest_parse_date`: `YYYY-MM-DDTHH:MM:SS`, an optional fraction, `Z` or `+HH[:MM]`; anything
  else is `rest_invalid_param`, detail `rest_invalid_date`), each strict (`WP_Date_Query` is
  not inclusive by default), to the second.
- `dates_are_gmt` (boolean, default false) compares with the `*_gmt` times; otherwise with the
  site's local ones. `WP_Date_Query` takes a time without an offset as it is and converts one
  with an offset to the site's timezone, whichever column it compares with. The sandbox site's
  timezone is UTC (see `catalog.wp_datetime`), so its local and GMT times are the same.
- `orderby` `date` sorts by `date_created` then id, `modified` by `date_modified` then id (the
  ` ID` WooCommerce adds for stable pages), anything else by id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .params import ParamErrors, boolean_value

SITE_TIMEZONE = UTC
DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:(Z)|([+-])(\d{2})(?::(\d{2}))?)?"
)
# argument -> (the order's time it bounds, which side)
DATE_ARGUMENTS = {
    "after": ("date_created", "after"),
    "before": ("date_created", "before"),
    "modified_after": ("date_modified", "after"),
    "modified_before": ("date_modified", "before"),
}
SORT_FIELDS = {"date": "date_created_gmt", "modified": "date_modified_gmt"}


@dataclass(frozen=True)
class Bound:
    field: str  # e.g. date_modified_gmt
    side: str  # after | before
    moment: datetime  # naive, to the second, as the column holds it

    def admits(self, order: dict[str, Any]) -> bool:
        value = order.get(self.field)
        if not value:
            return False
        at = datetime.fromisoformat(value)
        return at > self.moment if self.side == "after" else at < self.moment


@dataclass(frozen=True)
class OrderQuery:
    bounds: tuple[Bound, ...]
    orderby: str
    descending: bool

    def apply(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The orders the date filters admit, in the requested order."""
        kept = [order for order in orders if all(bound.admits(order) for bound in self.bounds)]
        field = SORT_FIELDS.get(self.orderby)
        return sorted(kept, key=lambda order: (order.get(field) or "", order["id"]) if field else order["id"],
                      reverse=self.descending)


def order_query(query: dict[str, str], errors: ParamErrors, *, orderby: str, order: str) -> OrderQuery:
    """The filters of a `GET /orders` query string; failures go to `errors`."""
    gmt = boolean_value(errors, "dates_are_gmt", query["dates_are_gmt"]) if "dates_are_gmt" in query else False
    bounds = []
    for name, (column, side) in DATE_ARGUMENTS.items():
        if name not in query:
            continue
        moment = wp_date_time(query[name])
        if moment is None:
            errors.add(name, "rest_invalid_date", "Invalid date.")
            continue
        bounds.append(Bound(f"{column}_gmt" if gmt else column, side, moment))
    return OrderQuery(tuple(bounds), orderby, order == "desc")


def wp_date_time(text: str) -> datetime | None:
    """A `date-time` argument as `WP_Date_Query` compares it (naive, to the second), or None
    when `rest_parse_date` would refuse it."""
    match = DATE_TIME.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, zulu, sign, offset_hours, offset_minutes = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:  # 2024-02-30: strtotime refuses it too
        return None
    if zulu is None and sign is None:
        return moment
    offset = timedelta(hours=int(offset_hours or 0), minutes=int(offset_minutes or 0))
    if offset >= timedelta(hours=24):
        return None
    zone = timezone(-offset if sign == "-" else offset)
    return moment.replace(tzinfo=zone).astimezone(SITE_TIMEZONE).replace(tzinfo=None)
