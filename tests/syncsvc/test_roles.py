"""The role groups carry their admin permissions: a merchandiser sees the sync state and may
queue a resync; only ops may change channels and their thresholds."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User

from syncsvc.permissions import roles_grant

pytestmark = pytest.mark.django_db


def _staff(role: str) -> User:
    roles_grant()
    user = User.objects.create_user(username=f"{role}-user", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions


def test_a_merchandiser_views_the_sync_state_and_may_queue_a_resync_but_not_edit_channels():
    user = _staff("merchandiser")

    assert user.has_perm("channels.view_syncattempt") and user.has_perm("inventory.view_variant")
    assert user.has_perm("channels.add_resyncjob")
    assert not user.has_perm("channels.change_channel") and not user.has_perm("channels.change_channelhealth")


def test_ops_edit_channels_thresholds_and_circuits():
    user = _staff("ops")

    assert all(user.has_perm(p) for p in ("channels.change_channel", "channels.change_channelhealth",
                                          "channels.change_channelcircuit", "channels.view_alert"))


def test_granting_twice_keeps_what_an_operator_added_by_hand():
    roles_grant()
    group = Group.objects.get(name="pim")
    extra = Permission.objects.get(
        codename="change_variant", content_type__app_label="inventory")
    group.permissions.add(extra)

    roles_grant()

    assert group.permissions.filter(pk=extra.pk).exists()
