"""Starts ten children at once and sums their outputs when all have ended."""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    children = [this.flow('double', n=n, wait=False) for n in range(10)]
    this.wait_for(*children, return_when=system.return_when.ALL_SUCCEEDED)
    total = sum(child.get('output_value')['result'] for child in children)
    this.set_output('total', total)
    return this.success(f'sum of doubles: {total}')
