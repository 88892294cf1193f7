"""A child flow: doubles `n`. Called by `fan_out` and `parent_and_child`."""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    return {'result': inputs.get('n', 0) * 2}
