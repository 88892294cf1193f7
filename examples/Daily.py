"""Helper: asks by message form for a flow, a time of day and a time zone, then creates
a daily schedule (a cron expression in that time zone, so it follows daylight saving).

Start it with `{"flow": "<name>"}` to preset the flow (the admin's "Daily" button does).
"""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    preset = this.get('input_value') or {}
    while True:
        answer = this.message(
            'New daily schedule',
            'Run a flow once a day at a time of day, in a time zone.',
            body={
                'type': 'object',
                'properties': {
                    'flow': {'label': 'Flow to run', 'element': 'string', 'type': 'string',
                             'default': preset.get('flow', ''), 'order': 1},
                    'time': {'label': 'Time of day', 'element': 'time', 'order': 2},
                    # format timezone: the form refuses an unknown zone next to this field.
                    'timezone': {'label': 'Time zone (e.g. Europe/Vienna)', 'element': 'string',
                                 'type': 'string', 'format': 'timezone',
                                 'default': preset.get('timezone', 'UTC'), 'order': 3},
                    'name': {'label': 'Schedule name (optional)', 'element': 'string',
                             'type': 'string', 'order': 4},
                    'submit': {'label': 'Create', 'element': 'submit', 'order': 5},
                },
                'required': ['flow', 'time'],
            },
        )
        flow = answer['flow']
        hour, minute = answer['time'].split(':')[:2]
        zone = answer.get('timezone') or 'UTC'
        name = answer.get('name') or f'{flow} daily at {int(hour):02d}:{int(minute):02d} {zone}'
        try:
            schedule = system.save_schedule({
                'name': name, 'flow': flow, 'cron': f'{int(minute)} {int(hour)} * * *',
                'timezone': zone, 'mode': this.get('mode'),  # Try makes a Try schedule
            })
        except ValueError as exc:
            this.log('the form was not usable', error=str(exc))
            preset = {'flow': flow, 'timezone': zone}
            continue
        this.set_output('schedule', schedule)
        return this.success(f'schedule {name!r} runs {flow!r} daily at {hour}:{minute} {zone}')
