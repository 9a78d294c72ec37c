"""Marks left behind by a delete the ORM did not cascade are cleaned up, not retried forever.

The marks table has no database foreign keys (channels migration 0004: on PostgreSQL their
checks were a third of a bulk import), so a raw SQL delete can leave marks behind.
"""
from __future__ import annotations

import pytest
from django.db import connection

from channels.models import SyncMark
from channels.services.flush import flush_channel
from channels.tasks import sweep
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db


def _raw_delete(table: str, pk: int) -> None:
    with connection.cursor() as cursor:
        if table == "inventory_variant":
            cursor.execute("DELETE FROM inventory_change WHERE variant_id = %s", [pk])
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [pk])


def test_a_flush_drops_the_marks_of_a_variant_deleted_behind_the_orms_back():
    # given
    channel = ChannelFactory()
    product = product_with_variants(skus=["GONE-1"])
    variant = product.variants.get()
    assert SyncMark.objects.filter(channel=channel, variant_id=variant.pk).exists()
    _raw_delete("inventory_variant", variant.pk)

    # when
    flush_channel(channel_id=channel.pk)

    # then
    assert not SyncMark.objects.filter(variant_id=variant.pk).exists()


def test_the_sweep_drops_the_marks_of_a_channel_deleted_behind_the_orms_back():
    # given
    channel = ChannelFactory(enabled=False)
    kept = ChannelFactory(enabled=False)
    product_with_variants(skus=["KEEP-1"])
    _raw_delete("channels_channel", channel.pk)

    # when
    sweep()

    # then
    assert not SyncMark.objects.filter(channel_id=channel.pk).exists()
    assert SyncMark.objects.filter(channel=kept).exists()
