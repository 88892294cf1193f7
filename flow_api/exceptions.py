"""Exceptions a flow may see."""

from __future__ import annotations


class FlowApiError(Exception):
    """Base class of the errors that flow_api raises (Cloudomation: CloudomationException)."""


# Cloudomation's names for the base class (EngineException is the Engine's), so
# `except flow_api.CloudomationException` and `except flow_api.EngineException` work.
CloudomationException = FlowApiError
EngineException = FlowApiError


class InternalError(FlowApiError):
    """The engine failed at something that is not the flow's fault."""


class PermissionDenied(FlowApiError):
    """The execution's user may not do this."""


class ResourceNotFoundError(FlowApiError):
    """A flow, connection, setting, execution or other record of that name or id does not exist."""


class MissingInputError(FlowApiError):
    """A required input was not given."""


class InvalidInputError(FlowApiError, ValueError):
    """An input was given with a value that is not allowed (also a ValueError, which is
    what the engine's own checks raise, e.g. `system.save_schedule`'s)."""


class SchemaValidationError(InvalidInputError):
    """A value that does not match its schema (Cloudomation's name). Nothing here raises it
    (flows have no input or output schemas); it exists so that flows catching it load, and
    `except InvalidInputError` catches it as in Cloudomation."""


class LimitExceededError(FlowApiError):
    """Starting a child would pass a limit of its execution tree (how deep it may nest,
    AUTOMATION_MAX_DEPTH, or how many executions it may hold, AUTOMATION_MAX_DESCENDANTS);
    the message names the setting and its value."""


class ExtraInputError(FlowApiError):
    """An input was given that the called thing does not take."""


class DependencyFailedError(FlowApiError):
    """A child execution the flow waited for did not end in success.

    `.executions` holds the children that failed (flow_api.Execution objects).
    """

    def __init__(self, message: str, executions: list | None = None) -> None:
        super().__init__(message)
        self.executions = executions or []


class TimeoutExceededError(FlowApiError):
    """A wait with a `timeout` ran out before what it waited for happened."""


class DependencyTimeoutError(TimeoutExceededError):
    """A wait for child executions (`wait_for`, `child.wait`) ran out of time."""


class MessageResponseTimeoutError(TimeoutExceededError):
    """A message form was not answered within its `timeout`."""


class LockTimeoutError(TimeoutExceededError):
    """A lock was not acquired within its `timeout`."""


class LifecycleSignal(BaseException):
    """What ends a handler from inside flow_api: ExecutionEnded (`this.success()` /
    `this.error()`) and ExecutionTerminated (a cancel or timeout).

    A BaseException, so that a flow's `except Exception` (or `except
    CloudomationException`) does not swallow it.
    """


class ExecutionEnded(LifecycleSignal):
    """Raised by `this.success()` / `this.error()` / `this.end()` to end the handler at once."""

    def __init__(self, status: str, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message or ""


class ExecutionSuccess(ExecutionEnded):
    """`this.success(...)` (or `this.end('success', ...)`) ends the handler."""


class ExecutionError(ExecutionEnded):
    """`this.error(...)` (or `this.end('error', ...)`) ends the handler."""


class ExecutionTerminated(LifecycleSignal):
    """The execution was cancelled or timed out; raised into the flow to stop it."""


# Cloudomation's name of the signal a cancel raises (here a timeout raises it too).
ExecutionCancel = ExecutionTerminated


class ExecutionParked(BaseException):
    """The engine parks this execution's wait: the handler stops here and runs again,
    replaying its earlier calls, when the answer (or child) it waits for arrives.

    A BaseException, so that a flow's `except Exception` does not swallow it.
    """
