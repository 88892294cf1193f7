"""Shows what happens when things fail: a failing child is caught, then this flow fails."""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    try:
        this.script('def handler(system, this):\n    raise ValueError("bad input")\n')
    except flow_api.DependencyFailedError as error:
        this.log("the child failed, as planned", level="WARNING", error=str(error))
    if this.get('input_value').get('fail', False):
        raise RuntimeError('asked to fail')  # ENDED_ERROR, naming this line
    return this.success('recovered from a failing child')
