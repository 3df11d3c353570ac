//! Gathering single deliveries into batches.

use platform_consumer::TopicResponse;
use platform_server::StopSignal;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Bookkeeper;

type Delivery = (Value, oneshot::Sender<TopicResponse>);

/// Groups single deliveries that arrive together into one database
/// transaction: while a batch is being booked, the next deliveries queue up
/// and are booked together. Each delivery is still answered only after its
/// batch has committed, so an acknowledged event is durable. At low load a
/// batch is one event and nothing waits.
#[derive(Debug, Clone)]
pub struct EventBatcher {
    queue: mpsc::Sender<Delivery>,
}

impl EventBatcher {
    /// The batcher and the loop that books its batches with `bookkeeper`
    /// (to run as a background task).
    pub fn new(bookkeeper: Bookkeeper, max_batch: usize) -> (Self, BatchLoop) {
        let (queue, receiver) = mpsc::channel(max_batch * 4);
        (
            Self { queue },
            BatchLoop {
                bookkeeper,
                receiver,
                max_batch,
            },
        )
    }

    /// Books one delivered event with the others that arrive meanwhile and
    /// returns Dapr's answer for it (RETRY once the loop has stopped).
    pub async fn submit(&self, event: Value) -> TopicResponse {
        let (answer, answered) = oneshot::channel();
        if self.queue.send((event, answer)).await.is_err() {
            return TopicResponse::Retry;
        }
        answered.await.unwrap_or(TopicResponse::Retry)
    }
}

/// The loop behind an [`EventBatcher`].
#[derive(Debug)]
pub struct BatchLoop {
    bookkeeper: Bookkeeper,
    receiver: mpsc::Receiver<Delivery>,
    max_batch: usize,
}

impl BatchLoop {
    /// Books batches until `stop` fires. Deliveries already queued are
    /// booked first: the server stops its background tasks only after the
    /// HTTP requests waiting for their answers have drained.
    pub async fn run(mut self, mut stop: StopSignal) {
        loop {
            let first = tokio::select! {
                biased;
                next = self.receiver.recv() => match next {
                    Some(first) => first,
                    None => return,
                },
                () = stop.stopped() => return,
            };
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match self.receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            metrics::histogram!("event_batch_size").record(batch.len() as f64);
            let (events, answers): (Vec<Value>, Vec<_>) = batch.into_iter().unzip();
            let outcomes = self.bookkeeper.book(events).await;
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(outcome);
            }
        }
    }
}
