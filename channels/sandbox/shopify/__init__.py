"""The `shopify` kind: Shopify's GraphQL Admin API, emulated over an in-memory shop.

    POST /shopify/{store}/admin/api/{version}/graphql.json   (X-Shopify-Access-Token)

Modules, each one idea:
    versions        which API versions exist and what each one changed for inventory
    graphql_schema  the official 2025-01 schema plus the later inventory fields, loaded once
    documents       parse, validate and coerce a request, with Shopify's error shapes
    errors          the `errors` entries Shopify sends (graphql-ruby wording and codes)
    cost            requested and actual query cost, by Shopify's published rules
    bucket          the leaky bucket those costs are charged against
    catalog         products, variants, inventory items, locations and levels
    search          the `query:` search syntax (`sku:A OR sku:B`)
    views           the catalog as GraphQL objects (what the field resolver reads)
    mutations       productVariantsBulkUpdate, inventorySetQuantities, inventoryAdjustQuantities
    idempotency     `@idempotent(key:)` replay and mismatch
    resolvers       the root fields and the graphql-core field/type resolvers
    api             one GraphQL request end to end: validate, cost, throttle, execute, refund
    webhooks        order and inventory webhooks, signed and delivered in the background
    store           the `Store` subclass: route, token check, config, sales, control views

The emulator shares no code with `channels/adapters/`; everything here is built from the
reference notes and the official schema.
"""
