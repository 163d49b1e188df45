"""Every worker that fails is written to the log file, with its traceback.

Workers run with exit_on_error=False (a failed read must not end the app), and
Textual then keeps the error on the worker and tells only the node that ran it
(Worker.StateChanged does not bubble). `LogsWorkerFailures` is mixed into the
app, every pane (SessionPane) and the screens that run workers, and all of
them log through the one function here, to the `sparktui` logger that
`services.logs.log_to_file` sends to the log file.
"""

from __future__ import annotations

import logging

from textual.worker import Worker, WorkerState

log = logging.getLogger("sparktui.workers")


def log_worker_failure(worker: Worker) -> None:
    error = worker.error
    if error is None:
        return
    log.error("worker %r of %s failed: %s: %s", worker.name, worker.node,
              type(error).__name__, error, exc_info=(type(error), error, error.__traceback__))


class LogsWorkerFailures:
    """Mixin for a Textual node: its failed workers reach the log file."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            log_worker_failure(event.worker)
