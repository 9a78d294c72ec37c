import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("channels", "0008_catalog_refresh")]

    operations = [
        # Shadow channels: what would have been sent, per attempt.
        migrations.AddField(
            model_name="syncattempt",
            name="payload",
            field=models.JSONField(blank=True, null=True),
        ),
        # Schema drift alerts.
        migrations.AlterField(
            model_name="alert",
            name="kind",
            field=models.CharField(
                choices=[
                    ("dead_channel", "Dead Channel"),
                    ("degraded_channel", "Degraded Channel"),
                    ("drift", "Drift"),
                    ("inbound_silence", "Inbound Silence"),
                    ("schema_drift", "Schema Drift"),
                ],
                max_length=20,
            ),
        ),
        migrations.CreateModel(
            name="AttributeMapping",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("pim_attribute", models.CharField(max_length=255)),
                ("target", models.CharField(max_length=300)),
                ("target_type", models.CharField(blank=True, default="", max_length=100)),
                ("product_type", models.CharField(blank=True, default="", max_length=100)),
                ("enabled", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "channel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="attribute_mappings",
                        to="channels.channel",
                    ),
                ),
            ],
            options={
                "ordering": ["channel_id", "pim_attribute"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("channel", "pim_attribute", "product_type"), name="attributemapping_channel_attribute_uniq"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="UnmappedAttribute",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("attribute", models.CharField(max_length=255)),
                ("first_seen_at", models.DateTimeField()),
                ("last_seen_at", models.DateTimeField()),
                ("example_sku", models.CharField(blank=True, default="", max_length=100)),
                ("count", models.PositiveIntegerField(default=0, help_text="Items sent without it.")),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                ("resolution", models.CharField(blank=True, default="", max_length=20)),
                (
                    "channel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="unmapped_attributes",
                        to="channels.channel",
                    ),
                ),
            ],
            options={
                "ordering": ["channel_id", "attribute"],
                "constraints": [
                    models.UniqueConstraint(fields=("channel", "attribute"), name="unmappedattribute_channel_attribute_uniq")
                ],
            },
        ),
    ]
