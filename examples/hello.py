"""The smallest flow: greets whoever `name` says, and logs it."""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    name = this.get('input_value').get('name', 'world')
    this.log('greeting', name=name)
    this.set_output('greeting', f'Hello, {name}!')
    return this.success(f'greeted {name}')
