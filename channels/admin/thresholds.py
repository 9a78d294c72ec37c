"""Admin for threshold rules: an inline on the channel (one row per aspect) and a list of
every channel's rules. Validation is the model's (`ThresholdRule.clean`, field validators):
a negative or misplaced value is refused next to its field."""
from __future__ import annotations

from django.contrib import admin

from ..models import ThresholdRule

_FIELDS = ("aspect", "min_units", "price_epsilon", "min_interval_s", "batch_every_s")


class ThresholdRuleInline(admin.TabularInline):
    model = ThresholdRule
    fields = _FIELDS
    extra = 0
    max_num = len(ThresholdRule.Aspect.values)
    verbose_name = "threshold rule"


@admin.register(ThresholdRule)
class ThresholdRuleAdmin(admin.ModelAdmin):
    list_display = ("channel", *_FIELDS, "updated_at")
    list_filter = ("aspect", "channel")
    list_select_related = ("channel",)
    fields = ("channel", *_FIELDS)
