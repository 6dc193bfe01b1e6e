//! A worker that cannot reach its job queue (here: its database pool is
//! closed) says so once, with the cause, and backs off; it does not log
//! "database error" twenty times a second.

mod common;

use std::time::Duration;

use common::logs::CapturedLogs;
use common::spawn_app;

#[tokio::test]
async fn a_worker_without_its_queue_logs_the_cause_once_and_backs_off() {
    let logs = CapturedLogs::install();
    let app = spawn_app().await;
    let worker = app.worker.clone();
    app.store.close().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(stopped));
    // A window to observe what is *not* logged: at the 100 ms poll without
    // backoff this would be about 20 warnings.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker stops")
        .unwrap();
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("cannot reach the job queue"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("closed"),
        "the cause, not only \"database error\": {}",
        warnings[0]
    );
}
