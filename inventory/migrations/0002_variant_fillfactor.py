"""Leave room in the variant table's pages so price updates are HOT.

A bulk price import rewrites every row it touches; with full pages each new row version goes
to another page and adds an entry to each of the table's four indexes. At fillfactor 45 a
page keeps room for a second version of all its rows, so the update stays on the page (a
heap-only tuple: no index entries; the old version is pruned by the next one). Rows written
before this migration move to roomy pages as they are updated (or at once with
`VACUUM FULL inventory_variant`). PostgreSQL only: SQLite has no fillfactor.
"""
from django.db import migrations

FILLFACTOR = 45


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE inventory_variant SET (fillfactor = {FILLFACTOR})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE inventory_variant RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False)]
