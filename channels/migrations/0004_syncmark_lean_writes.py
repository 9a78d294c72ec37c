"""Make the mark upsert of a bulk import cheaper on PostgreSQL (issue 2's ingest target).

Measured on the 10,000-row bulk price import (30,000 marks in the same transaction), from
1.0 s to about 0.65 s:
- The two foreign-key constraints of `channels_syncmark` (to the channel and to the variant)
  cost one trigger query per inserted mark each, run at commit: 60,000 queries, ~0.35 s.
  Marks are written only by the fan-out, for variants its transaction has just locked and
  changed and for channels it has just read, so the check finds what the writer knows exists.
  Deletes still cascade: Django's ORM deletes a channel's or a variant's marks itself
  (`on_delete=CASCADE`), and the flush drops a mark whose variant is gone, the prune one whose
  channel is gone (a raw SQL delete, or a delete racing a fan-out, which before this failed
  the writer's whole transaction at commit).
- The single-column index on `channel_id` duplicates the leading column of the unique
  (channel, variant, aspect) index; each insert updated both (~50 ms per import).
The models keep `ForeignKey` (Django's cascades and joins); only the database objects go.
SQLite is left as it is (no cost to save there).
"""
from django.db import migrations

TABLE = "channels_syncmark"


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", [TABLE]
        )
        constraints = [row[0] for row in cursor.fetchall()]
        # The index Django made for the channel FK: exactly (channel_id), not unique.
        cursor.execute(
            """
            SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             WHERE x.indrelid = %s::regclass AND NOT x.indisunique AND x.indnatts = 1 AND x.indpred IS NULL
               AND x.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'channel_id')
            """,
            [TABLE, TABLE],
        )
        indexes = [row[0] for row in cursor.fetchall()]
    for name in constraints:
        schema_editor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
    for name in indexes:
        schema_editor.execute(f'DROP INDEX "{name}"')


def _restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT syncmark_channel_fk FOREIGN KEY (channel_id) "
        "REFERENCES channels_channel (id) DEFERRABLE INITIALLY DEFERRED"
    )
    schema_editor.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT syncmark_variant_fk FOREIGN KEY (variant_id) "
        "REFERENCES inventory_variant (id) DEFERRABLE INITIALLY DEFERRED"
    )
    schema_editor.execute(f"CREATE INDEX syncmark_channel_id_idx ON {TABLE} (channel_id)")


class Migration(migrations.Migration):
    dependencies = [("channels", "0003_inbound_orders")]

    operations = [migrations.RunPython(_drop, _restore, elidable=False)]
