//! What every handler shares.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::settings::Settings;
use crate::store::{Config, Event, Store};
use crate::webhook::Webhooks;

#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Mutex<Store>,
    settings: Settings,
    webhooks: Webhooks,
    stopping: watch::Receiver<bool>,
}

impl AppState {
    pub fn new(settings: Settings, stopping: watch::Receiver<bool>) -> Self {
        let webhooks = Webhooks::new(&settings.webhook_secret);
        Self {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::new(Config::from_settings(&settings))),
                settings,
                webhooks,
                stopping,
            }),
        }
    }

    /// Runs `f` under the store's lock (never held across an `.await`).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        // A panic under the lock cannot leave the maps half-updated in a way
        // that matters for a sandbox; keep serving.
        let mut store = self
            .inner
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut store)
    }

    pub fn config(&self) -> Config {
        self.with_store(|s| s.config.clone())
    }

    /// Back to the start-up state: no objects, start-up config, zero stats.
    pub fn reset(&self) {
        let config = Config::from_settings(&self.inner.settings);
        self.with_store(|s| *s = Store::new(config));
    }

    /// Sends events to the configured webhook URL, if any (in the background).
    pub fn send_events(&self, events: Vec<Arc<Event>>) {
        if events.is_empty() {
            return;
        }
        let Some(url) = self.with_store(|s| s.config.webhook_url.clone()) else {
            return;
        };
        for event in events {
            self.inner.webhooks.send(self, url.clone(), event);
        }
    }

    pub fn webhooks(&self) -> &Webhooks {
        &self.inner.webhooks
    }

    /// Sleeps for `duration`, or less if the server is shutting down (so
    /// that a held-back answer never delays a graceful shutdown).
    pub async fn sleep_unless_stopping(&self, duration: Duration) {
        sandbox_kit::sleep_unless_stopping(&self.inner.stopping, duration).await;
    }
}
