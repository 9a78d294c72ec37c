"""Channel records, pending sync marks and the per-SKU attempt log."""
from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
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
    # Threshold rules (channels/services/thresholds.py); nullable, so adding them rewrote nothing.
    # The newest urgent change: it bypasses the channel's minimum interval and thresholds.
    urgent_version = models.BigIntegerField(null=True, blank=True)
    # Held back by a rule since then, and why (`min_interval`, `min_units`); cleared on delivery.
    held_since = models.DateTimeField(null=True, blank=True)
    held_reason = models.CharField(max_length=16, null=True, blank=True)

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


class ThresholdRule(models.Model):
    """When a channel is sent a change of one aspect: small changes held or ignored, and at
    most one delivery per SKU per interval. An urgent change (the API's `urgent`, low stock)
    skips the rule; held changes go out in the next threshold batch whatever their size."""

    class Aspect(models.TextChoices):
        PRICE = "price"
        INVENTORY = "inventory"
        CONTENT = "content"

    channel = models.ForeignKey(Channel, related_name="threshold_rules", on_delete=models.CASCADE)
    aspect = models.CharField(max_length=16, choices=Aspect.choices)
    min_units = models.PositiveIntegerField(
        default=0,
        help_text="Inventory: hold a change of fewer units than this from what the channel was last sent, "
        "unless the new figure is at or under the low-stock level. 0: no hold.",
    )
    price_epsilon = models.DecimalField(
        max_digits=12, decimal_places=2, default=0, validators=[MinValueValidator(0)],
        help_text="Price: ignore a change smaller than this from the last price sent. 0: none ignored.",
    )
    min_interval_s = models.PositiveIntegerField(
        default=0, help_text="At most one delivery per SKU per this many seconds (at most 3600). 0: no limit."
    )
    batch_every_s = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(1)], help_text="Held changes go out at least this often."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel", "aspect"]
        constraints = [models.UniqueConstraint(fields=["channel", "aspect"], name="threshold_channel_aspect_uniq")]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.aspect}"

    def clean(self) -> None:
        errors = {}
        if self.min_units and self.aspect != self.Aspect.INVENTORY:
            errors["min_units"] = "applies to inventory only"
        if self.price_epsilon and self.aspect != self.Aspect.PRICE:
            errors["price_epsilon"] = "applies to price only"
        # Settled marks (which carry the last delivery time) are kept an hour.
        if self.min_interval_s > 3600:
            errors["min_interval_s"] = "at most 3600 seconds"
        if errors:
            raise ValidationError(errors)


# Attempts that are not a success, and failed attempts no later success resolved yet.
PROBLEM = ~models.Q(status="success")
OPEN_FAILURE = models.Q(resolved_at__isnull=True, status__in=["failure", "throttled"])


class SyncAttempt(models.Model):
    """One attempt to deliver one aspect of one SKU to one channel, with its hop timestamps."""

    class Status(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        THROTTLED = "throttled"
        IGNORED = "ignored"

    # No index of its own: the (channel, timestamp) index leads with it.
    channel = models.ForeignKey(Channel, related_name="attempts", on_delete=models.CASCADE, db_index=False)
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
    verified_at = models.DateTimeField(null=True, blank=True, help_text="When a read-back confirmed the live value.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.FloatField(null=True)
    timestamp = models.DateTimeField(db_index=True)
    # What a shadow channel would have sent for this SKU (the adapter's `preview`); null otherwise.
    payload = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        # The sync log is read newest first by time (keyset on timestamp, id) with one
        # equality filter or two, and a time range: each index ends with `timestamp`, so every
        # such query is one backward range scan that stops after a page. Problems (anything
        # not a success, ~3% of rows) get small partial indexes of their own; the flush's
        # "resolve earlier failures" update has a tiny one of open failures. See migration
        # 0006 and benchmarks/synclog.py.
        indexes = [
            models.Index(fields=["channel", "timestamp"], name="attempt_channel_time_idx"),
            models.Index(fields=["sku", "timestamp"], name="attempt_sku_time_idx"),
            models.Index(fields=["status", "timestamp"], name="attempt_problem_time_idx", condition=PROBLEM),
            models.Index(
                fields=["channel", "status", "timestamp"], name="attempt_channel_problem_idx", condition=PROBLEM
            ),
            models.Index(fields=["error_code", "timestamp"], name="attempt_error_time_idx", condition=~models.Q(error_code="")),
            models.Index(fields=["channel", "sku"], name="attempt_open_failure_idx", condition=OPEN_FAILURE),
            models.Index(fields=["timestamp"], name="attempt_open_failure_time_idx", condition=OPEN_FAILURE),
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
    # What the channel was last sent (threshold rules compare a change against it).
    sent_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    sent_compare_at_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    sent_available = models.IntegerField(null=True, blank=True)
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
            # The order poll's cursor: the newest order it stored itself (channels/services/polling.py).
            models.Index(fields=["channel", "topic", "triggered_at"], name="inbound_poll_cursor_idx"),
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


# --- sync health: thresholds, breaker, alerts, incidents, drift, resyncs ---------------------


class ChannelHealth(models.Model):
    """A channel's alert thresholds and reconciliation settings, edited by operators in the
    admin. Runtime state (the breaker, the reconciliation cursor) lives in other rows, so an
    admin save never overwrites what a worker just wrote."""

    channel = models.OneToOneField(Channel, primary_key=True, related_name="health", on_delete=models.CASCADE)
    expected_interval_s = models.PositiveIntegerField(
        default=60, help_text="Dead: no success in twice this while work is pending."
    )
    degraded_error_rate = models.FloatField(default=0.2, help_text="Degraded: failures over attempts above this …")
    degraded_window_s = models.PositiveIntegerField(default=600, help_text="… over this window …")
    degraded_min_attempts = models.PositiveIntegerField(default=5, help_text="… with at least this many attempts.")
    drift_price_tolerance = models.DecimalField(
        max_digits=12, decimal_places=4, default=0, help_text="Drift: a live price off by more than this."
    )
    drift_stock_tolerance = models.PositiveIntegerField(default=0, help_text="Drift: live stock off by more units than this.")
    inbound_silence_s = models.PositiveIntegerField(
        null=True, blank=True, help_text="Inbound silence: no order for this long. Empty: learned from the usual gap."
    )
    reconcile_cycle_s = models.PositiveIntegerField(default=86_400, help_text="Reconciliation reads every SKU once per cycle.")
    reconcile_resync = models.BooleanField(default=False, help_text="Queue a resync of the SKUs reconciliation finds drifted.")
    notify_webhook_url = models.URLField(max_length=500, blank=True, default="", help_text="Alerts are POSTed here (signed).")
    notify_emails = models.CharField(max_length=500, blank=True, default="", help_text="Comma-separated addresses.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "channel health thresholds"

    def __str__(self) -> str:
        return f"thresholds of {self.channel_id}"


class ChannelCircuit(models.Model):
    """The circuit breaker of one channel: closed (normal), open (dead: flushes stop, nothing
    is dropped, a probe is due at `probe_at`), half-open (one probe flush is in flight)."""

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open"

    channel = models.OneToOneField(Channel, primary_key=True, related_name="circuit", on_delete=models.CASCADE)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    probe_at = models.DateTimeField(null=True, blank=True)
    probes = models.PositiveIntegerField(default=0, help_text="Probes since it opened.")
    reason = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.channel_id}: {self.state}"


class Incident(models.Model):
    """Something went wrong for some SKUs on some channels: when it was detected, what caused
    it (when known), when it was recovered."""

    title = models.CharField(max_length=200)
    cause = models.TextField(blank=True, default="")
    channels = models.ManyToManyField(Channel, related_name="incidents", blank=True)
    skus = models.JSONField(default=list, blank=True)
    detected_at = models.DateTimeField()
    recovered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        indexes = [models.Index(fields=["recovered_at", "detected_at"], name="incident_open_idx")]

    def __str__(self) -> str:
        return self.title


class Alert(models.Model):
    """One condition on one channel, open until it clears by itself (recovery)."""

    class Kind(models.TextChoices):
        DEAD_CHANNEL = "dead_channel"
        DEGRADED_CHANNEL = "degraded_channel"
        DRIFT = "drift"
        INBOUND_SILENCE = "inbound_silence"
        SCHEMA_DRIFT = "schema_drift"  # PIM attributes a content-taking channel has no mapping for

    channel = models.ForeignKey(Channel, related_name="alerts", on_delete=models.CASCADE)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.TextField(help_text="What tripped it.")
    data = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_detail = models.TextField(blank=True, default="")
    notified_at = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey(Incident, related_name="alerts", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "kind"], condition=models.Q(cleared_at__isnull=True), name="alert_one_open_per_kind"
            )
        ]
        indexes = [models.Index(fields=["cleared_at", "opened_at"], name="alert_open_idx")]

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None

    def __str__(self) -> str:
        return f"{self.kind} on {self.channel_id}"


class Drift(models.Model):
    """A channel's live value that differs from the PIM's beyond the channel's tolerance,
    found by reconciliation (or by a resync's read-back); resolved when they agree again."""

    channel = models.ForeignKey(Channel, related_name="drifts", on_delete=models.CASCADE)
    variant_id = models.BigIntegerField(null=True)
    sku = models.CharField(max_length=100)
    aspect = models.CharField(max_length=16, help_text="price | inventory | listing")
    expected = models.CharField(max_length=100, blank=True, default="")
    live = models.CharField(max_length=100, blank=True, default="")
    detected_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "sku", "aspect"], condition=models.Q(resolved_at__isnull=True), name="drift_one_open"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.sku} {self.aspect}: {self.live} != {self.expected}"


class ReconcileCursor(models.Model):
    """Where a channel's reconciliation cycle is (SKUs in variant id order)."""

    channel = models.OneToOneField(Channel, primary_key=True, related_name="reconcile_cursor", on_delete=models.CASCADE)
    after_variant_id = models.BigIntegerField(default=0)
    cycle_started_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    checked_in_cycle = models.PositiveIntegerField(default=0)
    drifted_in_cycle = models.PositiveIntegerField(default=0)
    cycles = models.PositiveIntegerField(default=0)


class ResyncJob(models.Model):
    """An operator's (or reconciliation's) forced resync of some or all SKUs of a channel:
    sent at the channel's rate, then each SKU verified by reading its live value back."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"  # owed marks made; the flushes are delivering
        VERIFYING = "verifying"  # delivered; reading live values back
        DONE = "done"  # every SKU verified
        FAILED = "failed"  # finished, some SKUs not verified (see the items)
        CANCELLED = "cancelled"

    channel = models.ForeignKey(Channel, related_name="resync_jobs", on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    all_skus = models.BooleanField(default=False)
    aspects = models.JSONField(default=list, blank=True, help_text="Empty: every aspect the channel takes.")
    requested_by = models.CharField(max_length=150, blank=True, default="")
    reason = models.CharField(max_length=255, blank=True, default="")
    total = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    verified = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True, default="")
    incident = models.ForeignKey(Incident, related_name="resync_jobs", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["channel", "status"], name="resync_channel_status_idx")]

    def __str__(self) -> str:
        return f"resync {self.pk} of {self.channel_id}: {self.status}"


class ResyncItem(models.Model):
    """One SKU of a resync job and its outcome."""

    class State(models.TextChoices):
        PENDING = "pending"  # owed to the channel, not delivered yet
        DELIVERED = "delivered"  # the channel took it; not read back yet
        VERIFIED = "verified"  # the live value matches
        MISMATCH = "mismatch"  # delivered, but the live value differs
        FAILED = "failed"  # the channel refused it, or the SKU is gone

    job = models.ForeignKey(ResyncJob, related_name="items", on_delete=models.CASCADE)
    variant_id = models.BigIntegerField(null=True)
    sku = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    detail = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "sku"], name="resync_item_once")]
        indexes = [models.Index(fields=["job", "state"], name="resync_item_state_idx")]

    def __str__(self) -> str:
        return f"{self.job_id} {self.sku}: {self.state}"


# --- nightly catalog refresh ------------------------------------------------------------------


class CatalogRefresh(models.Model):
    """A refresh of a channel's catalog content (titles, descriptions, attributes) through its
    bulk path, in chunks of variants (by id) made up front; resumable: finished chunks are never
    redone, a started chunk is polled, not started again."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"  # every chunk finished, no SKU failed
        FAILED = "failed"  # finished, some SKUs failed (see the chunks)
        CANCELLED = "cancelled"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"

    channel = models.ForeignKey(Channel, related_name="catalog_refreshes", on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.CharField(max_length=150, blank=True, default="")
    total = models.PositiveIntegerField(default=0, help_text="SKUs planned.")
    done = models.PositiveIntegerField(default=0, help_text="SKUs the channel confirmed.")
    failed = models.PositiveIntegerField(default=0)
    chunk_size = models.PositiveIntegerField(default=0)
    bulk = models.BooleanField(default=True, help_text="Through the channel's bulk path (else plain pushes).")
    # The step that works on it holds this lease (a killed worker's lease simply runs out).
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel"], condition=models.Q(status__in=["queued", "running"]), name="catalog_refresh_one_active"
            )
        ]
        indexes = [models.Index(fields=["channel", "status"], name="catalog_refresh_status_idx")]

    def __str__(self) -> str:
        return f"catalog refresh {self.pk} of {self.channel_id}: {self.status}"


class CatalogRefreshChunk(models.Model):
    """The variants `first_variant_id..last_variant_id` of a refresh: one remote bulk job."""

    class Status(models.TextChoices):
        PENDING = "pending"
        STARTED = "started"  # the remote job runs; `remote` says which
        DONE = "done"
        FAILED = "failed"  # the remote job could not be run (its SKUs count as failed)

    refresh = models.ForeignKey(CatalogRefresh, related_name="chunks", on_delete=models.CASCADE)
    seq = models.PositiveIntegerField()
    first_variant_id = models.BigIntegerField()
    last_variant_id = models.BigIntegerField()
    size = models.PositiveIntegerField(default=0, help_text="Variants in the range when planned.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    remote = models.JSONField(default=dict, blank=True, help_text="The remote job's state (ids), as the adapter keeps it.")
    starts = models.PositiveIntegerField(default=0, help_text="Remote jobs started for it (1 unless a crash hit the start).")
    polls = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=dict, blank=True, help_text="SKU -> the channel's message (capped).")
    error = models.CharField(max_length=500, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["refresh", "seq"]
        constraints = [models.UniqueConstraint(fields=["refresh", "seq"], name="catalog_refresh_chunk_seq_uniq")]
        indexes = [models.Index(fields=["refresh", "status"], name="catalog_refresh_chunk_st_idx")]

    def __str__(self) -> str:
        return f"{self.refresh_id}#{self.seq}: {self.status}"


class AttributeMapping(models.Model):
    """A PIM attribute (a key of `Product.attributes` or `Variant.attributes`) sent to one
    channel field: a Shopify metafield `namespace.key` of a type, a WooCommerce attribute, an
    Amazon attribute (optionally for one product type), a Magento custom attribute code.
    Validated by `channels.services.mapping.mapping_validate`."""

    channel = models.ForeignKey(Channel, related_name="attribute_mappings", on_delete=models.CASCADE)
    pim_attribute = models.CharField(max_length=255)
    target = models.CharField(max_length=300)
    # Shopify: the metafield type (e.g. `single_line_text_field`); Amazon: the product type the
    # mapping is for (blank: every product type).
    target_type = models.CharField(max_length=100, blank=True, default="")
    product_type = models.CharField(max_length=100, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel_id", "pim_attribute"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "pim_attribute", "product_type"], name="attributemapping_channel_attribute_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pim_attribute} -> {self.target}"


class UnmappedAttribute(models.Model):
    """Schema drift: a PIM attribute a content-taking channel was about to drop for want of a
    mapping. Open while `resolved_at` is null."""

    channel = models.ForeignKey(Channel, related_name="unmapped_attributes", on_delete=models.CASCADE)
    attribute = models.CharField(max_length=255)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    example_sku = models.CharField(max_length=100, blank=True, default="")
    count = models.PositiveIntegerField(default=0, help_text="Items sent without it.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, blank=True, default="")  # mapped | disappeared

    class Meta:
        ordering = ["channel_id", "attribute"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "attribute"], name="unmappedattribute_channel_attribute_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}: {self.attribute}"
