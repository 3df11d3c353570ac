//! Reloads the signing key ring periodically: another instance may have
//! rotated the keys. A failed reload keeps the keys already loaded.

use std::sync::Arc;
use std::time::Duration;

use platform_server::BackgroundTasks;

use crate::keys::KeyRing;

/// Reloads every `interval` (the first time one interval after the start,
/// which has just loaded the ring) until the service stops.
pub fn start(tasks: &mut BackgroundTasks, keys: Arc<KeyRing>, interval: Duration) {
    tasks.every_after("key-ring-reloader", interval, move || {
        let keys = keys.clone();
        async move { keys.reload().await }
    });
}
