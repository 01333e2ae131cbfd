from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0003_draft_error_code'),
    ]

    operations = [
        migrations.AddField(
            model_name='draft',
            name='task_id',
            field=models.CharField(blank=True, help_text='The Celery task that claimed it last (its redelivery may claim it again).', max_length=64),
        ),
        migrations.AlterField(
            model_name='draft',
            name='attempts',
            field=models.PositiveSmallIntegerField(default=0, help_text='How many times a worker started it.'),
        ),
    ]
