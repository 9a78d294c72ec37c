from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("channels", "0006_synclog_indexes")]

    operations = []
