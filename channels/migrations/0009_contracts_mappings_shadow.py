from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("channels", "0008_catalog_refresh")]

    operations = []
