//! Reading a finished statement back: its parts, in order, from the
//! `statements-storage` binding, one part in memory at a time.

use std::collections::HashMap;

use futures::Stream;
use platform_dapr::Sidecar;
use uuid::Uuid;

use super::{STORAGE_BINDING, part_name};

/// The CSV of statement `id`, part by part (`parts` as recorded when it
/// became ready). A part that cannot be read ends the stream with an error.
pub fn parts(
    sidecar: Sidecar,
    id: Uuid,
    parts: i32,
) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures::stream::unfold(1, move |n| {
        let sidecar = sidecar.clone();
        async move {
            if n > parts {
                return None;
            }
            let metadata = HashMap::from([("fileName".to_owned(), part_name(id, n))]);
            let part = sidecar
                .invoke_binding(STORAGE_BINDING, "get", Vec::new(), metadata)
                .await;
            Some((part.map_err(std::io::Error::other), n + 1))
        }
    })
}
