"""Channel records, pending sync marks and the per-SKU attempt log."""
from __future__ import annotations

import json

from django.db import models

from .crypto import fernet


class Channel(models.Model):
    class Kind(models.TextChoices):
        SHOPIFY = "shopify"
        WOOCOMMERCE = "woocommerce"
        MAGENTO = "magento"
        AMAZON = "amazon"
        WEBHOOK = "webhook"

    class Mode(models.TextChoices):
        LIVE = "live"
        SHADOW = "shadow"  # everything runs but the final call; what would be sent is logged

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    base_url = models.URLField(max_length=500)
    credentials_encrypted = models.TextField(blank=True, default="", editable=False)
    enabled = models.BooleanField(default=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.LIVE)
    safety_stock = models.PositiveIntegerField(default=0, help_text="Units held back from this channel.")
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    # Credentials are encrypted at rest with SYNCSVC_ENCRYPTION_KEY and never serialized out.
    @property
    def credentials(self) -> dict:
        if not self.credentials_encrypted:
            return {}
        return json.loads(fernet().decrypt(self.credentials_encrypted.encode()))

    @credentials.setter
    def credentials(self, value: dict) -> None:
        self.credentials_encrypted = fernet().encrypt(json.dumps(value).encode()).decode()

    def shown_available(self, sellable: int) -> int:
        """What this channel is shown of `on_hand - reserved` under its safety-stock policy
        (without the sized part, which needs the SKU: see `channels.safety.shown_quantities`)."""
        from .safety import policy_of

        return policy_of(self).shown(sellable)


class SyncMarkQuerySet(models.QuerySet):
    def pending(self):
        """Marks still owed (due now, later, or in flight); settled ones have no due time."""
        return self.filter(due_at__isnull=False)


class SyncMark(models.Model):
    """Work owed to a channel: one row per (channel, variant, aspect), coalesced.

    `version` is the latest Change id; a flush claims the mark (a lease), sends the current
    state and settles the mark (no due time, `delivered_at` set) only if `version` is still
    the one it claimed. Settled marks linger for a while so that a SKU changing again right
    after a send is recognised as hot and coalesced; a beat job prunes them.
    """

    # No database-level foreign keys (checked per inserted mark at commit: 60,000 trigger
    # queries in a 10,000-row import, a third of its time) and no channel index of its own (the
    # unique index leads with it). The ORM still cascades deletes; the flush drops marks of
    # vanished variants and the sweep those of vanished channels.
    channel = models.ForeignKey(Channel, related_name="marks", on_delete=models.CASCADE, db_constraint=False, db_index=False)
    variant = models.ForeignKey("inventory.Variant", related_name="+", on_delete=models.CASCADE, db_constraint=False)
    aspect = models.CharField(max_length=16)
    version = models.BigIntegerField()
    # Commit time of the oldest change not yet delivered (latency is measured from it).
    first_committed_at = models.DateTimeField()
    last_committed_at = models.DateTimeField()
    due_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, null=True, blank=True)
    claimed_version = models.BigIntegerField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True, default="")
    failed_at = models.DateTimeField(null=True, blank=True, help_text="Gave up: waits for a resync or a new change.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "variant", "aspect"], name="syncmark_channel_variant_aspect_uniq"),
        ]
        indexes = [
            models.Index(
                fields=["channel", "due_at"], name="syncmark_channel_due_idx", condition=models.Q(due_at__isnull=False)
            ),
            models.Index(fields=["delivered_at"], name="syncmark_settled_idx", condition=models.Q(due_at__isnull=True)),
        ]

    objects = SyncMarkQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.channel_id}/{self.variant_id}/{self.aspect}@{self.version}"


class SyncAttempt(models.Model):
    """One attempt to deliver one aspect of one SKU to one channel, with its hop timestamps."""

    class Status(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        THROTTLED = "throttled"
        IGNORED = "ignored"

    channel = models.ForeignKey(Channel, related_name="attempts", on_delete=models.CASCADE)
    variant_id = models.BigIntegerField(null=True)
    sku = models.CharField(max_length=100)
    event_type = models.CharField(max_length=16)
    status = models.CharField(max_length=12, choices=Status.choices)
    error_code = models.CharField(max_length=100, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    retry_count = models.PositiveIntegerField(default=0)
    version = models.BigIntegerField(help_text="The Change id whose state was sent.")
    committed_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True)
    started_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.FloatField(null=True)
    timestamp = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["channel", "timestamp"], name="attempt_channel_time_idx"),
            models.Index(fields=["sku", "timestamp"], name="attempt_sku_time_idx"),
            models.Index(fields=["channel", "status", "resolved_at"], name="attempt_unresolved_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.sku} {self.event_type} {self.status}"


class Listing(models.Model):
    """A SKU as a channel knows it: its ids there, whether it is listed, when last synced."""

    class Status(models.TextChoices):
        LISTED = "listed"
        UNLISTED = "unlisted"
        ERROR = "error"

    channel = models.ForeignKey(Channel, related_name="listings", on_delete=models.CASCADE)
    variant = models.ForeignKey("inventory.Variant", related_name="+", on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LISTED)
    external_ids = models.JSONField(default=dict, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "variant"], name="listing_channel_variant_uniq")]
        indexes = [models.Index(fields=["channel", "status"], name="listing_channel_status_idx")]

    def __str__(self) -> str:
        return f"{self.channel_id}/{self.variant_id}: {self.status}"


class InboundEvent(models.Model):
    """One webhook (or polled order) from a channel, stored raw as it came before it is
    applied, so the answer is fast and a crash loses nothing. `key` is the channel's event id:
    a duplicate delivery finds its row and changes nothing."""

    class Status(models.TextChoices):
        RECEIVED = "received"            # stored, not applied yet
        APPLIED = "applied"
        IGNORED = "ignored"              # a topic we do not write back, an echo of our write
        NEEDS_ATTENTION = "needs_attention"  # e.g. an unknown SKU: a person must look

    channel = models.ForeignKey(Channel, related_name="inbound_events", on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    topic = models.CharField(max_length=100)
    headers = models.JSONField(default=dict, help_text="The channel's own headers (signature excluded).")
    body = models.TextField()
    triggered_at = models.DateTimeField(null=True, blank=True, help_text="When the channel says it happened.")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=1, help_text="How often the channel delivered it.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    detail = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["channel", "key"], name="inbound_channel_key_uniq")]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbound_status_received_idx"),
            models.Index(fields=["channel", "received_at"], name="inbound_channel_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.topic} {self.key}"


class OrderLine(models.Model):
    """One line of a channel's order, and what the ledger holds for it.

    States only move forward (new -> reserved -> committed -> cancelled, or reserved ->
    expired), so webhooks arriving twice, late or out of order apply each movement once.
    """

    class State(models.TextChoices):
        NEW = "new"
        RESERVED = "reserved"      # units held (`reserved`), not sold yet
        COMMITTED = "committed"    # sold (`on_hand` down)
        EXPIRED = "expired"        # the hold ran out before payment: released
        CANCELLED = "cancelled"
        UNKNOWN_SKU = "unknown_sku"  # the SKU is not in the catalog: nothing moved, shown to a person

    channel = models.ForeignKey(Channel, related_name="order_lines", on_delete=models.CASCADE)
    order_id = models.CharField(max_length=100)
    line_id = models.CharField(max_length=100)
    sku = models.CharField(max_length=100, blank=True, default="")
    variant = models.ForeignKey("inventory.Variant", related_name="+", null=True, blank=True, on_delete=models.PROTECT)
    location = models.CharField(max_length=64, default="default")
    quantity = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.NEW)
    restocked = models.PositiveIntegerField(default=0, help_text="Units put back by refunds or a cancel.")
    reserved_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "order_id", "line_id"], name="orderline_channel_order_line_uniq"),
        ]
        indexes = [
            models.Index(fields=["reserved_at"], name="orderline_reserved_idx", condition=models.Q(state="reserved")),
            models.Index(fields=["channel", "state"], name="orderline_channel_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.order_id}/{self.line_id} {self.sku} x{self.quantity} {self.state}"
