//! Re-drives the parked dead letters whose cause was transient (database or
//! sidecar unavailable), each when its back-off is due
//! ([`ParkingLot::redrive_due`], docs/adr/0029).

use std::time::Duration;

use platform_consumer::parking_lot::{ParkingLot, Redrive};
use platform_server::BackgroundTasks;

/// Looks for due letters every `interval` until the service stops.
pub(crate) fn start<R: Redrive>(
    tasks: &mut BackgroundTasks,
    lot: ParkingLot<R>,
    interval: Duration,
) {
    tasks.every("parking-lot-redrive", interval, move || {
        let lot = lot.clone();
        async move { lot.redrive_due().await.map(|_| ()) }
    });
}
