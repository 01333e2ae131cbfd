from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0002_draft_alternatives_tokens'),
    ]

    operations = [
        migrations.AddField(
            model_name='draft',
            name='error_code',
            field=models.CharField(blank=True, choices=[('timed_out', 'Timed out'), ('engine_error', 'Engine error'), ('worker_lost', 'No worker finished it'), ('too_many_attempts', 'Too many attempts')], max_length=24),
        ),
    ]
