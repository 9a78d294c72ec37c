"""Threshold rules per channel and aspect; what each channel was last sent (on its listings);
held and urgent state on the marks. Every new column on the hot tables is nullable (PostgreSQL
adds it without rewriting the table) and none is indexed."""
import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("channels", "0006_synclog_indexes")]

    operations = [
        migrations.CreateModel(
            name="ThresholdRule",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "aspect",
                    models.CharField(
                        choices=[("price", "Price"), ("inventory", "Inventory"), ("content", "Content")], max_length=16
                    ),
                ),
                (
                    "min_units",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="Inventory: hold a change of fewer units than this from what the channel was last "
                        "sent, unless the new figure is at or under the low-stock level. 0: no hold.",
                    ),
                ),
                (
                    "price_epsilon",
                    models.DecimalField(
                        decimal_places=2,
                        default=0,
                        help_text="Price: ignore a change smaller than this from the last price sent. 0: none ignored.",
                        max_digits=12,
                        validators=[django.core.validators.MinValueValidator(0)],
                    ),
                ),
                (
                    "min_interval_s",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="At most one delivery per SKU per this many seconds (at most 3600). 0: no limit.",
                    ),
                ),
                (
                    "batch_every_s",
                    models.PositiveIntegerField(
                        default=300,
                        help_text="Held changes go out at least this often.",
                        validators=[django.core.validators.MinValueValidator(1)],
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "channel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="threshold_rules",
                        to="channels.channel",
                    ),
                ),
            ],
            options={
                "ordering": ["channel", "aspect"],
                "constraints": [
                    models.UniqueConstraint(fields=("channel", "aspect"), name="threshold_channel_aspect_uniq")
                ],
            },
        ),
        migrations.AddField(
            model_name="listing",
            name="sent_price",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name="listing",
            name="sent_compare_at_price",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True),
        ),
        migrations.AddField(model_name="listing", name="sent_available", field=models.IntegerField(blank=True, null=True)),
        migrations.AddField(model_name="syncmark", name="urgent_version", field=models.BigIntegerField(blank=True, null=True)),
        migrations.AddField(model_name="syncmark", name="held_since", field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(
            model_name="syncmark", name="held_reason", field=models.CharField(blank=True, max_length=16, null=True)
        ),
    ]
