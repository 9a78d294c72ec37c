"""Marks without database-level foreign keys, and without the channel index the unique index
already leads with: on PostgreSQL the per-row FK checks at commit were 60,000 trigger queries
(~0.35 s) of a 10,000-row bulk import with 3 channels. Deletes still cascade through the ORM;
the flush drops marks of vanished variants, the sweep those of vanished channels."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('channels', '0003_inbound_orders'),
        ('inventory', '0002_variant_fillfactor'),
    ]

    operations = [
        migrations.AlterField(
            model_name='syncmark',
            name='channel',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='marks', to='channels.channel'),
        ),
        migrations.AlterField(
            model_name='syncmark',
            name='variant',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inventory.variant'),
        ),
    ]
