from __future__ import annotations

from rest_framework import serializers

from ..adapters.registry import ADAPTERS, UnknownChannelKind, adapter_class
from ..contracts.pins import pins_errors, pins_recorded
from ..models import Channel, Listing, SyncAttempt
from ..routing import routing_settings_errors
from ..safety import settings_errors
from ..services.refresh_schedule import refresh_schedule_sync, refresh_settings_errors


class ChannelSerializer(serializers.ModelSerializer):
    """Credentials are write-only: they are stored encrypted and never read back."""

    credentials = serializers.DictField(child=serializers.CharField(), write_only=True, required=False)
    has_credentials = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = ["id", "name", "kind", "base_url", "credentials", "has_credentials", "enabled", "mode", "safety_stock", "settings"]

    def get_has_credentials(self, channel: Channel) -> bool:
        return bool(channel.credentials_encrypted)

    def validate_kind(self, kind: str) -> str:
        try:
            adapter_class(kind)
        except UnknownChannelKind:
            raise serializers.ValidationError(
                f"kind {kind!r} has no adapter in this version; available: {', '.join(sorted(ADAPTERS))}"
            ) from None
        if self.instance is not None and kind != self.instance.kind:
            raise serializers.ValidationError("a channel's kind cannot change; create a new channel")
        return kind

    def validate_settings(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object")
        for name in ("rate_per_s", "burst", "batch_size"):
            if name in value and not (isinstance(value[name], (int, float)) and value[name] > 0):
                raise serializers.ValidationError(f"{name} must be a positive number")
        errors = {**settings_errors(value), **refresh_settings_errors(value), **routing_settings_errors(value)}
        if errors:
            raise serializers.ValidationError({name: [message] for name, message in errors.items()})
        return value

    def validate(self, attrs):
        kind = attrs.get("kind") or getattr(self.instance, "kind", None)
        credentials = attrs.get("credentials")
        if credentials is None and self.instance is None:
            credentials = {}
        if credentials is not None and kind:
            missing = adapter_class(kind).validate_credentials(credentials)
            if missing:
                raise serializers.ValidationError({f"credentials.{name}": [msg] for name, msg in missing.items()})
        if "settings" in attrs or self.instance is None:
            # Event schema pins: validated, recorded at creation, kept across PATCHes (contracts/pins.py).
            previous = None if self.instance is None else self.instance.settings
            value = attrs.get("settings", previous or {})
            errors = pins_errors(value)
            if errors:
                raise serializers.ValidationError({name: [message] for name, message in errors.items()})
            attrs["settings"] = pins_recorded(kind=kind, settings=value, previous=previous)
        return attrs

    def create(self, validated_data):
        credentials = validated_data.pop("credentials", {})
        channel = Channel(**validated_data)
        channel.credentials = credentials
        channel.save()
        refresh_schedule_sync(channel=channel)
        return channel

    def update(self, channel, validated_data):
        credentials = validated_data.pop("credentials", None)
        for name, value in validated_data.items():
            setattr(channel, name, value)
        if credentials is not None:
            channel.credentials = credentials
        channel.save()
        if "settings" in validated_data:
            refresh_schedule_sync(channel=channel)
        return channel


class SyncAttemptSerializer(serializers.ModelSerializer):
    channel = serializers.CharField(source="channel.name")

    class Meta:
        model = SyncAttempt
        fields = [
            "id", "timestamp", "event_type", "sku", "channel", "status", "error_code", "error_message",
            "retry_count", "resolved_at", "latency_ms", "version", "committed_at", "enqueued_at",
            "started_at", "acknowledged_at", "verified_at",
        ]


class ListingSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="variant.sku")

    class Meta:
        model = Listing
        fields = ["sku", "status", "external_ids", "last_synced_at"]
