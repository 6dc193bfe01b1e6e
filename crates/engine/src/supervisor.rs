//! Keeps background loops (workers, the scheduler, the auto-draft poller)
//! alive: a loop that panics is logged, counted and started again after a
//! short backoff. Readiness asks [`Supervisor::failing`] for loops that
//! cannot be kept alive, so an orchestrator stops sending traffic to a
//! replica whose background work is broken instead of it failing silently.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const LOOP_RESTARTS: &str = "mailwright_background_loop_restarts_total";

/// A loop that panicked this often within [`CRASH_WINDOW`] is failing.
const CRASHES_TO_FAIL: usize = 3;
const CRASH_WINDOW: Duration = Duration::from_secs(60);
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(500);
const LONGEST_RESTART_DELAY: Duration = Duration::from_secs(30);

/// The loops of one process and their recent crashes.
#[derive(Clone, Default)]
pub struct Supervisor {
    crashes: Arc<Mutex<BTreeMap<String, Vec<Instant>>>>,
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// Run `make()` as a task named `name`, again after each panic, until it
    /// returns (it does when `shutdown` turns true).
    pub fn spawn<F, Fut>(
        &self,
        name: impl Into<String>,
        shutdown: watch::Receiver<bool>,
        make: F,
    ) -> JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let supervisor = self.clone();
        tokio::spawn(async move {
            let mut delay = FIRST_RESTART_DELAY;
            loop {
                let started = Instant::now();
                match tokio::spawn(make()).await {
                    Ok(()) => return,
                    Err(error) if error.is_panic() => {
                        metrics::counter!(LOOP_RESTARTS, "loop" => name.clone()).increment(1);
                        supervisor.record_crash(&name);
                        if started.elapsed() > CRASH_WINDOW {
                            delay = FIRST_RESTART_DELAY;
                        }
                        tracing::error!(
                            background_loop = %name,
                            restart_in_ms = delay.as_millis() as u64,
                            "a background loop panicked; restarting it"
                        );
                    }
                    // Cancelled: the runtime is shutting down.
                    Err(_) => return,
                }
                if *shutdown.borrow() {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(LONGEST_RESTART_DELAY);
            }
        })
    }

    fn record_crash(&self, name: &str) {
        let mut crashes = self.crashes.lock().unwrap_or_else(PoisonError::into_inner);
        let recent = crashes.entry(name.to_owned()).or_default();
        recent.push(Instant::now());
        recent.retain(|at| at.elapsed() <= CRASH_WINDOW);
    }

    /// Loops that panicked [`CRASHES_TO_FAIL`] times within the last minute.
    pub fn failing(&self) -> Vec<String> {
        let crashes = self.crashes.lock().unwrap_or_else(PoisonError::into_inner);
        crashes
            .iter()
            .filter(|(_, at)| {
                at.iter().filter(|at| at.elapsed() <= CRASH_WINDOW).count() >= CRASHES_TO_FAIL
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Call `tick` every `every` until `shutdown` turns true: the body of the
/// timed loops (scheduler, auto-draft poller, connection health). A tick
/// that fails (the database did not answer) is logged, naming `what`, and
/// the next one tries again.
pub async fn every<F, Fut, T>(
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
    what: &str,
    mut tick: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, store::StoreError>>,
{
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(error) = tick().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "{what} cannot reach the database; retrying"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_loop_that_panics_is_restarted_and_reported_failing_while_it_keeps_crashing() {
        let supervisor = Supervisor::new();
        let (_stop, stopped) = watch::channel(false);
        let starts = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&starts);
        let task = supervisor.spawn("flaky", stopped, move || {
            let starts = Arc::clone(&counted);
            async move {
                // Panics on its first three starts, then runs to the end.
                if starts.fetch_add(1, Ordering::SeqCst) < 3 {
                    panic!("a bug in a background loop");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the loop ends within 20 s")
            .unwrap();
        assert_eq!(
            starts.load(Ordering::SeqCst),
            4,
            "started again after each panic"
        );
        assert_eq!(supervisor.failing(), vec!["flaky".to_owned()]);
    }

    #[tokio::test]
    async fn a_loop_that_ends_is_not_restarted_or_failing() {
        let supervisor = Supervisor::new();
        let (_stop, stopped) = watch::channel(false);
        let starts = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&starts);
        supervisor
            .spawn("calm", stopped, move || {
                let starts = Arc::clone(&counted);
                async move {
                    starts.fetch_add(1, Ordering::SeqCst);
                }
            })
            .await
            .unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(supervisor.failing().is_empty());
    }
}
