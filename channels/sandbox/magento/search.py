"""`searchCriteria` query parameters, parsed and applied as Magento's collection processors do.

    searchCriteria[filter_groups][0][filters][0][field]=sku
    searchCriteria[filter_groups][0][filters][0][value]=A,B
    searchCriteria[filter_groups][0][filters][0][condition_type]=in
    searchCriteria[sort_orders][0][field]=updated_at&...[direction]=DESC
    searchCriteria[pageSize]=50&searchCriteria[currentPage]=2

Keys are accepted in snake_case or camelCase, as Magento's REST input accepts both. Filters in
one group are OR-ed, groups AND-ed; `condition_type` defaults to `eq`. A `currentPage` past the
last page answers the last page again (the collection clamps it), so a client must stop on
`total_count`, not on an empty page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from .errors import MagentoError, required_fields

KEY = re.compile(r"searchCriteria((?:\[[^\]]*\])*)")
PART = re.compile(r"\[([^\]]*)\]")
CONDITIONS = (
    "eq",
    "neq",
    "like",
    "nlike",
    "in",
    "nin",
    "gt",
    "gteq",
    "lt",
    "lteq",
    "from",
    "to",
    "null",
    "notnull",
    "finset",
)
ALIASES = {
    "filterGroups": "filter_groups",
    "sortOrders": "sort_orders",
    "pageSize": "page_size",
    "currentPage": "current_page",
    "conditionType": "condition_type",
}


@dataclass(frozen=True)
class Filter:
    field: str
    value: str
    condition_type: str = "eq"


@dataclass
class SearchCriteria:
    filter_groups: list[list[Filter]] = field(default_factory=list)
    sort_orders: list[tuple[str, str]] = field(default_factory=list)
    page_size: int | None = None
    current_page: int | None = None

    def echo(self) -> dict[str, Any]:
        """The `search_criteria` Magento puts back in the answer."""
        echoed: dict[str, Any] = {
            "filter_groups": [
                {"filters": [{"field": f.field, "value": f.value, "condition_type": f.condition_type} for f in group]}
                for group in self.filter_groups
            ]
        }
        if self.sort_orders:
            echoed["sort_orders"] = [{"field": name, "direction": direction} for name, direction in self.sort_orders]
        if self.page_size is not None:
            echoed["page_size"] = self.page_size
        if self.current_page is not None:
            echoed["current_page"] = self.current_page
        return echoed


def _integer(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise MagentoError(
            400,
            f'Error occurred during "{name}" processing. The "{value}" value\'s type is invalid.'
            ' The "int" type was expected. Verify and try again.',
        ) from None


def parse(query_string: str) -> SearchCriteria:
    """The search criteria of a query string; 400 when `searchCriteria` is absent."""
    tree: dict[str, Any] = {}
    present = False
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        match = KEY.fullmatch(key)
        if not match:
            continue
        present = True
        parts = [ALIASES.get(part, part) for part in PART.findall(match.group(1))]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            if parts:
                node[parts[-1]] = value
    if not present:
        raise required_fields(["searchCriteria"])
    criteria = SearchCriteria()
    for _, group in sorted(_indexed(tree.get("filter_groups"))):
        filters = []
        for _, raw in sorted(_indexed(group.get("filters") if isinstance(group, dict) else None)):
            if not isinstance(raw, dict) or "field" not in raw:
                continue
            condition = raw.get("condition_type") or "eq"
            filters.append(Filter(raw["field"], raw.get("value", ""), condition))
        criteria.filter_groups.append(filters)
    for _, raw in sorted(_indexed(tree.get("sort_orders"))):
        if isinstance(raw, dict) and raw.get("field"):
            criteria.sort_orders.append((raw["field"], (raw.get("direction") or "ASC").upper()))
    if tree.get("page_size") not in (None, ""):
        criteria.page_size = _integer(tree["page_size"], "pageSize")
    if tree.get("current_page") not in (None, ""):
        criteria.current_page = _integer(tree["current_page"], "currentPage")
    return criteria


def _indexed(node: Any) -> list[tuple[int, Any]]:
    if not isinstance(node, dict):
        return []
    return [(int(index) if index.isdigit() else 0, child) for index, child in node.items()]


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _comparable(left: Any, right: str) -> tuple[Any, Any]:
    """Numbers as numbers and Magento dates as dates, as MySQL compares them; else text."""
    try:
        return float(left), float(right)
    except (TypeError, ValueError):
        pass
    left_instant, right_instant = _instant(left), _instant(right)
    if left_instant is not None and right_instant is not None:
        return left_instant, right_instant
    return str(left), right


def _like(value: Any, pattern: str) -> bool:
    regex = "".join(".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, str(value), flags=re.IGNORECASE | re.DOTALL) is not None


def matches(row: dict[str, Any], condition: Filter) -> bool:
    value = row.get(condition.field)
    kind, wanted = condition.condition_type, condition.value
    if kind == "null":
        return value is None
    if kind == "notnull":
        return value is not None
    if value is None:
        return False
    if kind in ("in", "nin"):
        found = any(
            _comparable(value, item.strip())[0] == _comparable(value, item.strip())[1] for item in wanted.split(",")
        )
        return found if kind == "in" else not found
    if kind == "finset":
        return wanted in str(value).split(",")
    if kind in ("like", "nlike"):
        return _like(value, wanted) == (kind == "like")
    left, right = _comparable(value, wanted)
    try:
        return bool(
            {
                "eq": left == right,
                "neq": left != right,
                "gt": left > right,
                "gteq": left >= right,
                "from": left >= right,
                "lt": left < right,
                "lteq": left <= right,
                "to": left <= right,
            }[kind]
        )
    except KeyError:
        raise MagentoError(400, f'Invalid condition type "{kind}"') from None
    except TypeError:
        return False


def apply(criteria: SearchCriteria, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The page of rows that match, and how many match in all."""
    found = [
        row for row in rows if all(any(matches(row, f) for f in group) for group in criteria.filter_groups if group)
    ]
    for name, direction in reversed(criteria.sort_orders):
        found.sort(
            key=lambda row: (row.get(name) is not None, row.get(name) if row.get(name) is not None else ""),
            reverse=direction == "DESC",
        )
    total = len(found)
    if not criteria.page_size:
        return found, total
    last_page = max(1, -(-total // criteria.page_size))
    page = min(max(1, criteria.current_page or 1), last_page)
    start = (page - 1) * criteria.page_size
    return found[start : start + criteria.page_size], total
