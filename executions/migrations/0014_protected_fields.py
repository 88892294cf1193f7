from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('executions', '0013_retries_and_recovery'),
    ]

    operations = [
        migrations.AddField(
            model_name='execution',
            name='protect_inputs',
            field=models.JSONField(blank=True, default=list, editable=False, help_text="Keys of input_value shown masked (['*']: all of them)."),
        ),
        migrations.AddField(
            model_name='execution',
            name='protect_outputs',
            field=models.JSONField(blank=True, default=list, editable=False, help_text="Keys of output_value shown masked (['*']: all of them)."),
        ),
    ]
