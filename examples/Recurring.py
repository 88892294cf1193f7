"""Helper: asks by message form for a flow and an interval, then creates the schedule.

Start it with `{"flow": "<name>"}` to preset the flow (the admin's "Recurring" button does).
The output `schedule` is the created schedule as the API shows it.
"""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    preset = this.get('input_value') or {}
    while True:
        answer = this.message(
            'New recurring schedule',
            'Run a flow again and again, every given number of seconds.',
            body={
                'type': 'object',
                'properties': {
                    'flow': {'label': 'Flow to run', 'element': 'string', 'type': 'string',
                             'default': preset.get('flow', ''), 'order': 1},
                    'interval_seconds': {'label': 'Every (seconds)', 'element': 'number',
                                         'type': 'number', 'order': 2},
                    'name': {'label': 'Schedule name (optional)', 'element': 'string',
                             'type': 'string', 'order': 3},
                    'submit': {'label': 'Create', 'element': 'submit', 'order': 4},
                },
                'required': ['flow', 'interval_seconds'],
            },
        )
        flow = answer['flow']
        seconds = int(answer['interval_seconds'])
        name = answer.get('name') or f'{flow} every {seconds} s'
        try:
            schedule = system.save_schedule({'name': name, 'flow': flow, 'interval_seconds': seconds,
                                      'mode': this.get('mode')})  # Try makes a Try schedule
        except ValueError as exc:
            this.log('the form was not usable', error=str(exc))
            preset = {'flow': flow}
            continue  # ask again, the error is in the log
        this.set_output('schedule', schedule)
        return this.success(f'schedule {name!r} runs {flow!r} every {seconds} s')
