"""The engine: executions, their runner, tasks and the one way in (services)."""
