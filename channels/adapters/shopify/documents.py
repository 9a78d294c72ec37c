"""Every GraphQL document the Shopify adapter sends.

Each is validated in tests against Shopify's Admin 2025-01 schema, extended with what later
versions added for inventory compare-and-set (`InventoryQuantityInput.changeFromQuantity`,
the `@idempotent(key:)` directive). Payloads select only what the adapter reads: every object
selected is charged against the shop's cost bucket.

Two documents are built from a constant template rather than stored whole:
- the price mutation holds N aliased `productVariantsBulkUpdate` fields (one per product),
  so one HTTP round trip carries many products; each alias still spends a mutation's 10 points;
- the inventory mutation carries its idempotency key as a literal, as Shopify documents it.
"""
from __future__ import annotations

import uuid

# The one location to write stock at, when the channel's settings do not name it.
FIRST_LOCATION = """
query SyncsvcFirstLocation {
  locations(first: 1) {
    nodes { id }
  }
}
"""

# SKU -> ids, for prices (and the ids an inventory push will need later).
VARIANTS_BY_SKU = """
query SyncsvcVariantsBySku($first: Int!, $query: String!) {
  productVariants(first: $first, query: $query) {
    nodes {
      id
      sku
      product { id }
      inventoryItem { id }
    }
    pageInfo { hasNextPage }
  }
}
"""

# SKU -> ids, price and the `available` quantity at one location: for inventory pushes of
# SKUs not resolved yet (the compare-and-set read comes with the ids) and for `fetch`.
VARIANTS_BY_SKU_WITH_STOCK = """
query SyncsvcVariantsBySkuWithStock($first: Int!, $query: String!, $locationId: ID!) {
  productVariants(first: $first, query: $query) {
    nodes {
      id
      sku
      price
      product { id }
      inventoryItem {
        id
        inventoryLevel(locationId: $locationId) {
          quantities(names: ["available"]) { name quantity }
        }
      }
    }
    pageInfo { hasNextPage }
  }
}
"""

# Inventory item -> `available` at one location: the compare-and-set read for resolved SKUs.
INVENTORY_LEVELS = """
query SyncsvcInventoryLevels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) {
        quantities(names: ["available"]) { name quantity }
      }
    }
  }
}
"""

# One product's variant prices; `<n>` is the alias number. Partial updates are allowed so a
# bad variant fails alone (its userError names its index) instead of failing its siblings.
PRICE_UPDATE_FIELD = """
  p<n>: productVariantsBulkUpdate(productId: $product<n>, variants: $variants<n>, allowPartialUpdates: true) {
    userErrors { code field message }
  }"""
PRICE_UPDATE_VARIABLES = "$product<n>: ID!, $variants<n>: [ProductVariantsBulkInput!]!"

# Absolute quantities with compare-and-set (`changeFromQuantity` on each quantity) under an
# idempotency key; `<key>` is replaced by a UUID.
INVENTORY_SET = """
mutation SyncsvcSetInventory($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) @idempotent(key: "<key>") {
    userErrors { code field message }
  }
}
"""


def price_alias(n: int) -> str:
    return f"p{n}"


def prices_update(count: int) -> str:
    """The price mutation for `count` products: variables `$product<n>`, `$variants<n>`."""
    if count < 1:
        raise ValueError("a price mutation needs at least one product")
    variables = ", ".join(PRICE_UPDATE_VARIABLES.replace("<n>", str(n)) for n in range(count))
    fields = "".join(PRICE_UPDATE_FIELD.replace("<n>", str(n)) for n in range(count))
    return f"mutation SyncsvcPrices({variables}) {{{fields}\n}}\n"


def inventory_set(key: str) -> str:
    """The inventory mutation with its idempotency key in place."""
    # Only a canonical UUID goes into the document text: nothing a caller passes can break
    # out of the string literal.
    return INVENTORY_SET.replace("<key>", str(uuid.UUID(key)))


# --- the bulk path of the catalog refresh (`bulk.py`) ---------------------------------------

# SKU -> product id only, for the content refresh of SKUs not resolved yet: two objects per
# variant instead of three (the inventory item is not needed to write content).
PRODUCT_IDS_BY_SKU = """
query SyncsvcProductIdsBySku($first: Int!, $query: String!) {
  productVariants(first: $first, query: $query) {
    nodes {
      id
      sku
      product { id }
    }
    pageInfo { hasNextPage }
  }
}
"""

# Is a bulk mutation of this app running on the shop? (one at a time per shop)
CURRENT_BULK_MUTATION = """
query SyncsvcCurrentBulkMutation {
  currentBulkOperation(type: MUTATION) { id status }
}
"""

# Where to upload the JSONL of variables: a storage URL and the form fields to post with it.
STAGED_UPLOADS_CREATE = """
mutation SyncsvcStageBulkVariables($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url parameters { name value } }
    userErrors { field message }
  }
}
"""

# Run `mutation` once per line of the staged file.
BULK_RUN_MUTATION = """
mutation SyncsvcRunBulkMutation($mutation: String!, $stagedUploadPath: String!) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $stagedUploadPath) {
    bulkOperation { id status }
    userErrors { code field message }
  }
}
"""

# One line of a content refresh: a product's title, description, metafields (and media).
# Its result line carries only the user errors (and the id, to check the line's product).
BULK_CONTENT_UPDATE = """
mutation SyncsvcContentUpdate($product: ProductUpdateInput!, $media: [CreateMediaInput!]) {
  productUpdate(product: $product, media: $media) {
    product { id }
    userErrors { field message }
  }
}
"""

# Where a bulk operation stands.
BULK_OPERATION = """
query SyncsvcBulkOperation($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount url partialDataUrl }
  }
}
"""
