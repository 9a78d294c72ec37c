"""Nightly catalog refresh: refreshes and their chunks."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('channels', '0007_threshold_rules'),
    ]

    operations = [
        migrations.CreateModel(
            name='CatalogRefresh',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=10)),
                ('trigger', models.CharField(choices=[('schedule', 'Schedule'), ('manual', 'Manual')], default='manual', max_length=10)),
                ('requested_by', models.CharField(blank=True, default='', max_length=150)),
                ('total', models.PositiveIntegerField(default=0, help_text='SKUs planned.')),
                ('done', models.PositiveIntegerField(default=0, help_text='SKUs the channel confirmed.')),
                ('failed', models.PositiveIntegerField(default=0)),
                ('chunk_size', models.PositiveIntegerField(default=0)),
                ('bulk', models.BooleanField(default=True, help_text="Through the channel's bulk path (else plain pushes).")),
                ('claimed_by', models.CharField(blank=True, default='', max_length=64)),
                ('lease_until', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('detail', models.TextField(blank=True, default='')),
                ('channel', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='catalog_refreshes', to='channels.channel')),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='CatalogRefreshChunk',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('seq', models.PositiveIntegerField()),
                ('first_variant_id', models.BigIntegerField()),
                ('last_variant_id', models.BigIntegerField()),
                ('size', models.PositiveIntegerField(default=0, help_text='Variants in the range when planned.')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('started', 'Started'), ('done', 'Done'), ('failed', 'Failed')], default='pending', max_length=10)),
                ('remote', models.JSONField(blank=True, default=dict, help_text="The remote job's state (ids), as the adapter keeps it.")),
                ('starts', models.PositiveIntegerField(default=0, help_text='Remote jobs started for it (1 unless a crash hit the start).')),
                ('polls', models.PositiveIntegerField(default=0)),
                ('ok', models.PositiveIntegerField(default=0)),
                ('failed', models.PositiveIntegerField(default=0)),
                ('failures', models.JSONField(blank=True, default=dict, help_text="SKU -> the channel's message (capped).")),
                ('error', models.CharField(blank=True, default='', max_length=500)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('next_poll_at', models.DateTimeField(blank=True, null=True)),
                ('refresh', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='chunks', to='channels.catalogrefresh')),
            ],
            options={
                'ordering': ['refresh', 'seq'],
            },
        ),
        migrations.AddIndex(
            model_name='catalogrefresh',
            index=models.Index(fields=['channel', 'status'], name='catalog_refresh_status_idx'),
        ),
        migrations.AddConstraint(
            model_name='catalogrefresh',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['queued', 'running'])), fields=('channel',), name='catalog_refresh_one_active'),
        ),
        migrations.AddIndex(
            model_name='catalogrefreshchunk',
            index=models.Index(fields=['refresh', 'status'], name='catalog_refresh_chunk_st_idx'),
        ),
        migrations.AddConstraint(
            model_name='catalogrefreshchunk',
            constraint=models.UniqueConstraint(fields=('refresh', 'seq'), name='catalog_refresh_chunk_seq_uniq'),
        ),
    ]
