"""A parent that waits for a child, reads its outputs and keeps a counter in a setting."""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    child = this.flow('double', n=21)                       # waits; raises if the child fails
    result = child.get('output_value')['result']
    runs = system.setting('parent_and_child.runs')
    runs.save(value=(runs.get('value') or 0) + 1)           # settings hold any JSON
    this.log('child answered', result=result, runs=runs.get('value'))
    return this.success(f'the child said {result}')
