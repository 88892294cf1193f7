"""Exceptions a flow may see."""

from __future__ import annotations


class FlowApiError(Exception):
    """Base class of the errors that flow_api raises."""


class DependencyFailedError(FlowApiError):
    """A child execution the flow waited for did not end in success.

    `.executions` holds the children that failed (flow_api.Execution objects).
    """

    def __init__(self, message: str, executions: list | None = None) -> None:
        super().__init__(message)
        self.executions = executions or []


class TimeoutExceededError(FlowApiError):
    """A wait with a `timeout` ran out before its executions ended."""


class ExecutionEnded(BaseException):
    """Raised by `this.success()` / `this.error()` to end the handler at once.

    A BaseException, so that a flow's `except Exception` does not swallow it.
    """

    def __init__(self, status: str, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message or ""


class ExecutionTerminated(BaseException):
    """The execution was cancelled or timed out; raised into the flow to stop it."""


class ExecutionParked(BaseException):
    """The engine parks this execution's wait: the handler stops here and runs again,
    replaying its earlier calls, when the answer (or child) it waits for arrives.

    A BaseException, so that a flow's `except Exception` does not swallow it.
    """
