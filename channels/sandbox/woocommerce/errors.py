"""WordPress REST errors as WooCommerce answers them: `{"code", "message", "data": {"status"}}`.

Codes and messages are WooCommerce's own (`class-wc-rest-authentication.php`,
`class-wc-rest-controller.php`, `class-wc-rest-crud-controller.php`) and WordPress core's
(`rest_no_route`, `rest_invalid_param`, `rest_invalid_json`).
"""

from __future__ import annotations

from typing import Any

from ..messages import HttpError, Response


class WpError(HttpError):
    """An error answered in the WP REST shape; also used as a per-item error in batches."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, f"{code}: {message}", headers=headers)
        self.code = code
        self.wp_message = message
        self.data = data or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.wp_message, "data": {"status": self.status, **self.data}}

    def response(self) -> Response:
        return Response(self.status, self.body(), dict(self.headers))


def no_route() -> WpError:
    # WordPress answers an unknown path and a known path with the wrong method alike.
    return WpError(404, "rest_no_route", "No route was found matching the URL and request method.")


def invalid_json() -> WpError:
    return WpError(
        400,
        "rest_invalid_json",
        "Invalid JSON body passed.",
        data={"json_error_code": 4, "json_error_message": "Syntax error"},
    )


def invalid_id(post_type: str, status: int) -> WpError:
    """`woocommerce_rest_{post_type}_invalid_id`: 404 on read and delete, 400 on update."""
    return WpError(status, f"woocommerce_rest_{post_type}_invalid_id", "Invalid ID.")


def authentication_error(message: str, headers: dict[str, str] | None = None) -> WpError:
    return WpError(401, "woocommerce_rest_authentication_error", message, headers=headers)


# What an unauthenticated caller gets from each route's permission callback
# (`rest_authorization_required_code()` is 401 when nobody is logged in).
def cannot_list() -> WpError:
    return WpError(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")


def cannot_view() -> WpError:
    return WpError(401, "woocommerce_rest_cannot_view", "Sorry, you cannot view this resource.")


def cannot_edit() -> WpError:
    return WpError(401, "woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource.")


def cannot_create() -> WpError:
    return WpError(401, "woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.")


def cannot_batch() -> WpError:
    return WpError(
        401, "woocommerce_rest_cannot_batch", "Sorry, you are not allowed to batch manipulate this resource."
    )


def batch_too_large(limit: int) -> WpError:
    return WpError(
        413, "woocommerce_rest_request_entity_too_large", f"Unable to accept more than {limit} items for this request."
    )


def error_item(item_id: Any, error: WpError) -> dict[str, Any]:
    """A failed batch item, as `WC_REST_Controller::batch_items` writes it."""
    return {
        "id": item_id,
        "error": {"code": error.code, "message": error.wp_message, "data": {"status": error.status, **error.data}},
    }
