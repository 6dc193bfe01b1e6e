//! Background work: token vault and refresh, auto-draft pipeline, workflow runner, workers and scheduler. Empty until the "Connect Gmail" and "Workflows" issues fill it.
