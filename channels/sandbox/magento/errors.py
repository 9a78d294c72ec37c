"""Magento's REST error body: `{"message": "...%placeholder...", "parameters": {...}}`, with
`errors` for aggregated validation failures. Messages are Magento 2.4's own phrases, raw
(placeholders unreplaced), as its webapi error processor sends them."""

from __future__ import annotations

from typing import Any

from ..messages import HttpError, Response


class MagentoError(HttpError):
    """An error answered in Magento's REST shape."""

    def __init__(
        self,
        status: int,
        message: str,
        parameters: dict[str, Any] | list[Any] | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers=headers)
        self.parameters = parameters
        self.errors = errors

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        if self.parameters is not None:
            body["parameters"] = self.parameters
        return Response(self.status, body, dict(self.headers))


def no_route() -> MagentoError:
    return MagentoError(404, "Request does not match any route.")


def unauthorized(resource: str) -> MagentoError:
    return MagentoError(401, "The consumer isn't authorized to access %resources.", {"resources": resource})


def required_fields(names: list[str]) -> MagentoError:
    """`InputException::requiredField`: one message, or the aggregate with `errors`."""
    if len(names) == 1:
        return MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": names[0]})
    return MagentoError(
        400,
        "One or more input exceptions have occurred.",
        errors=[
            {"message": '"%fieldName" is required. Enter and try again.', "parameters": {"fieldName": name}}
            for name in names
        ],
    )


def product_not_found() -> MagentoError:
    return MagentoError(404, "The product that was requested doesn't exist. Verify the product and try again.")
