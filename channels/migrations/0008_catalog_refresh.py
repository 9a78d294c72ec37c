from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("channels", "0007_threshold_rules")]

    operations = []
