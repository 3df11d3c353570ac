//! Background work — sweepers, relays, reconcilers, batchers — started and
//! stopped one way in every service.
//!
//! A service registers its loops on a [`BackgroundTasks`] at build time and
//! hands it to [`crate::Server::with_background`]. The server stops them
//! *after* the HTTP server has drained (a request in flight may still need a
//! relay or a batcher), gives them the shutdown grace to finish, aborts what
//! is left and logs one exit report per task. When the server's future is
//! dropped instead (a test aborting it, as a crash would), the tasks are
//! aborted with it.
//!
//! Loops watch their [`StopSignal`]; a loop that returns on its own (or
//! panics) is reported at once, not only at shutdown.

use std::fmt::Display;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{Id, JoinSet};

/// Tells a background loop that the service is stopping.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Whether stopping was requested.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stopping was requested (or the tasks' owner is gone).
    pub async fn stopped(&mut self) {
        // An error means the sender was dropped: treat it as a stop.
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps for `duration` unless stopping is requested first. Returns
    /// `true` when the loop should go on, `false` when it should end.
    pub async fn sleep(&mut self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => !self.is_stopped(),
            () = self.stopped() => false,
        }
    }
}

/// How a background task ended, as logged in its exit report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskExit {
    /// It returned after the stop signal.
    Stopped,
    /// It returned before anyone asked it to (a bug, or its input ended).
    ReturnedEarly,
    /// It panicked.
    Panicked,
    /// It did not end within the grace and was aborted.
    Aborted,
}

/// One task's exit report.
#[derive(Debug, Clone)]
pub struct TaskReport {
    pub name: &'static str,
    pub exit: TaskExit,
}

/// The background tasks of one service instance.
#[derive(Debug)]
pub struct BackgroundTasks {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Running tasks by tokio task id, so a panic is reported by name.
    names: Vec<(Id, &'static str)>,
}

impl Default for BackgroundTasks {
    fn default() -> Self {
        Self::new()
    }
}

impl BackgroundTasks {
    pub fn new() -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            stop,
            tasks: JoinSet::new(),
            names: Vec::new(),
        }
    }

    /// A stop signal for code that is not spawned here but must end with
    /// the tasks (e.g. a stream handed to a handler).
    pub fn signal(&self) -> StopSignal {
        StopSignal(self.stop.subscribe())
    }

    /// The names of the running tasks, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.names.iter().map(|(_, name)| *name).collect()
    }

    /// Spawns `task`, which must return once its [`StopSignal`] fires.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(StopSignal) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let future = task(self.signal());
        let handle = self.tasks.spawn(future);
        self.names.push((handle.id(), name));
        tracing::debug!(task = name, "background task started");
    }

    /// Runs `tick` now and then every `interval` until stopped. A failed
    /// tick is logged as a warning and tried again at the next interval.
    pub fn every<F, Fut, E>(&mut self, name: &'static str, interval: Duration, tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Display,
    {
        self.repeat(name, interval, true, tick);
    }

    /// Like [`Self::every`], but the first tick comes one `interval` after
    /// the start: for work the start-up has just done (a key ring it
    /// loaded) or that is only due once something has had time to go stale.
    pub fn every_after<F, Fut, E>(&mut self, name: &'static str, interval: Duration, tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Display,
    {
        self.repeat(name, interval, false, tick);
    }

    fn repeat<F, Fut, E>(
        &mut self,
        name: &'static str,
        interval: Duration,
        tick_at_start: bool,
        mut tick: F,
    ) where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Display,
    {
        self.spawn(name, move |mut stop| async move {
            if !tick_at_start && !stop.sleep(interval).await {
                return;
            }
            loop {
                if let Err(error) = tick().await {
                    tracing::warn!(task = name, %error, "background tick failed; will retry");
                }
                if !stop.sleep(interval).await {
                    return;
                }
            }
        });
    }

    /// Signals every task to stop, waits up to `grace` for them, aborts the
    /// rest and logs one report per task.
    pub async fn stop(mut self, grace: Duration) -> Vec<TaskReport> {
        let _ = self.stop.send(true);
        let mut reports = Vec::with_capacity(self.names.len());
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(None) => break,
                Ok(Some(Ok((id, ())))) => reports.push(self.ended(id, TaskExit::Stopped)),
                Ok(Some(Err(error))) => {
                    let exit = if error.is_panic() {
                        TaskExit::Panicked
                    } else {
                        TaskExit::Aborted
                    };
                    reports.push(self.ended(error.id(), exit));
                }
                Err(_) => {
                    self.tasks.abort_all();
                    for (_, name) in self.names.drain(..) {
                        reports.push(report(name, TaskExit::Aborted));
                    }
                    break;
                }
            }
        }
        reports
    }

    /// Waits for the first task that ends before a stop was requested and
    /// reports it; pending for ever while every task runs (or there is none).
    pub async fn first_early_exit(&mut self) -> TaskReport {
        match self.tasks.join_next_with_id().await {
            Some(Ok((id, ()))) => self.ended(id, TaskExit::ReturnedEarly),
            Some(Err(error)) => {
                let exit = if error.is_panic() {
                    TaskExit::Panicked
                } else {
                    TaskExit::Aborted
                };
                self.ended(error.id(), exit)
            }
            None => std::future::pending().await,
        }
    }

    fn ended(&mut self, id: Id, exit: TaskExit) -> TaskReport {
        let name = match self.names.iter().position(|(task, _)| *task == id) {
            Some(i) => self.names.remove(i).1,
            None => "unknown",
        };
        report(name, exit)
    }
}

fn report(name: &'static str, exit: TaskExit) -> TaskReport {
    match exit {
        TaskExit::Stopped => tracing::info!(task = name, exit = ?exit, "background task stopped"),
        _ => tracing::error!(task = name, exit = ?exit, "background task ended abnormally"),
    }
    TaskReport { name, exit }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A tick that counts its calls in `ticks`.
    fn counting(
        ticks: &Arc<AtomicUsize>,
    ) -> impl FnMut() -> std::future::Ready<Result<(), std::io::Error>> + Send + 'static {
        let ticks = Arc::clone(ticks);
        move || {
            ticks.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_ticks_until_stopped_and_reports_a_clean_stop() {
        let ticks = Arc::new(AtomicUsize::new(0));
        let mut tasks = BackgroundTasks::new();
        tasks.every("counter", Duration::from_secs(10), counting(&ticks));
        tokio::time::sleep(Duration::from_secs(25)).await;
        let reports = tasks.stop(Duration::from_secs(1)).await;
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            3,
            "ticks at 0 s, 10 s and 20 s"
        );
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].name, "counter");
        assert_eq!(reports[0].exit, TaskExit::Stopped);
    }

    #[tokio::test(start_paused = true)]
    async fn every_after_waits_one_interval_before_the_first_tick() {
        let ticks = Arc::new(AtomicUsize::new(0));
        let mut tasks = BackgroundTasks::new();
        tasks.every_after("counter", Duration::from_secs(10), counting(&ticks));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 0, "nothing at start");
        tokio::time::sleep(Duration::from_secs(20)).await;
        let reports = tasks.stop(Duration::from_secs(1)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 2, "ticks at 10 s and 20 s");
        assert_eq!(reports[0].exit, TaskExit::Stopped);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ignores_the_signal_is_aborted_after_the_grace() {
        let mut tasks = BackgroundTasks::new();
        tasks.spawn("stubborn", |_stop| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        tasks.spawn("polite", |mut stop| async move { stop.stopped().await });
        let reports = tasks.stop(Duration::from_secs(5)).await;
        let exit = |name: &str| reports.iter().find(|r| r.name == name).map(|r| r.exit);
        assert_eq!(exit("polite"), Some(TaskExit::Stopped));
        assert_eq!(exit("stubborn"), Some(TaskExit::Aborted));
    }

    #[tokio::test]
    async fn a_panicking_task_is_reported_as_such() {
        let mut tasks = BackgroundTasks::new();
        tasks.spawn("broken", |_stop| async { panic!("boom") });
        tasks.spawn("fine", |mut stop| async move { stop.stopped().await });
        let early = tasks.first_early_exit().await;
        assert_eq!(early.name, "broken");
        assert_eq!(early.exit, TaskExit::Panicked);
        assert_eq!(tasks.names(), ["fine"]);
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_ends_early_on_stop() {
        let tasks = BackgroundTasks::new();
        let mut signal = tasks.signal();
        let sleeper = tokio::spawn(async move { signal.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        let _ = tasks.stop.send(true);
        assert!(!sleeper.await.unwrap_or(true), "sleep says: stop");
    }
}
