"""The run-failure alert: every failed run, in one message that names the source and the fix."""

from __future__ import annotations

import dagster as dg

from resources.alerts import AlertsResource, StepFailure, failure_message


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each failed run to BANKFLOW_ALERT_WEBHOOK_URL (Slack-compatible) and logs it:"
    " the failing source or step, the error, and what to do.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
    run = context.dagster_run
    failures = [step_failure(event) for event in context.get_step_failure_events()]
    text = failure_message(run.job_name, run.run_id, failures, alerts.run_url(run.run_id))
    context.log.error(text)
    if problem := alerts.send(text):
        context.log.warning(f"run failure alert not delivered: {problem}")


def step_failure(event: dg.DagsterEvent) -> StepFailure:
    data = event.step_failure_data
    # The extracts fail with a dg.Failure (pipelines/sources/landing.py) whose metadata names the
    # provider's error class and, where a person must act, the fix.
    if data.user_failure_data is not None:
        metadata = {
            key: getattr(value, "value", value) for key, value in data.user_failure_data.metadata.items()
        }
        return StepFailure(
            step=event.step_key or "",
            error_class=str(metadata.get("error", "Failure")),
            message=data.user_failure_data.description or "",
            fix=metadata.get("fix"),
        )
    # Any other exception, under the Dagster wrappers around it.
    error = data.error
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    message = error.message.strip().removeprefix(f"{error.cls_name}: ")
    return StepFailure(step=event.step_key or "", error_class=error.cls_name, message=message)
