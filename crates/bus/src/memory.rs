//! The in-process transport: every service runs in this process.
//!
//! It behaves like the RabbitMQ setup of `amqp.rs` so that code tested on one
//! works on the other:
//! - a work queue per topic, created on first use and kept for the life of
//!   the bus, so casts sent before anyone serves the topic wait (a durable
//!   queue); competing consumers take turns; FIFO per topic;
//! - a message is removed only once its handler returned (the "ack"); a
//!   handler that panics or a consumer stopped mid-message puts it back at
//!   the head of the queue (the broker's requeue on nack or channel close);
//! - a call carries a deadline (the AMQP message TTL): a consumer skips a
//!   call whose caller already gave up, instead of doing stale work;
//! - fanout goes to the subscribers present at send time, each with its own
//!   queue (RabbitMQ's exclusive queue per subscriber on a fanout exchange).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::handler::{self, Handler};
use crate::{BusError, Consumer, Envelope, Reply};

/// How long a consumer waits before retrying a message whose handler
/// panicked, so that a message that always panics does not spin a core.
const PANIC_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Clone, Default)]
pub(crate) struct MemoryBus {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, Arc<WorkQueue>>,
    fanouts: HashMap<String, Vec<mpsc::UnboundedSender<Envelope>>>,
}

struct Delivery {
    env: Envelope,
    /// Where a call waits for its reply; `None` for a cast.
    reply: Option<oneshot::Sender<Reply>>,
    /// After this instant nobody waits for the reply any more.
    deadline: Option<Instant>,
}

impl Delivery {
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
            || self.reply.as_ref().is_some_and(|r| r.is_closed())
    }
}

#[derive(Default)]
struct WorkQueue {
    items: Mutex<VecDeque<Delivery>>,
    notify: Notify,
}

impl WorkQueue {
    fn items(&self) -> MutexGuard<'_, VecDeque<Delivery>> {
        // A poisoned lock only means a thread panicked while holding it; the
        // queue itself is still consistent (push/pop are single calls).
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_back(&self, d: Delivery) {
        self.items().push_back(d);
        self.notify.notify_waiters();
    }

    fn push_front(&self, d: Delivery) {
        self.items().push_front(d);
        self.notify.notify_waiters();
    }

    /// Waits for the next message. Cancel-safe: a message is only taken by
    /// the poll that returns it.
    async fn pop(&self) -> Delivery {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before looking, so a push between the look and the
            // await still wakes us.
            notified.as_mut().enable();
            if let Some(d) = self.items().pop_front() {
                return d;
            }
            notified.await;
        }
    }
}

/// Holds a message while its handler runs; unless acknowledged, dropping it
/// puts the message back at the head of the queue.
struct Unacked {
    queue: Arc<WorkQueue>,
    delivery: Option<Delivery>,
}

impl Unacked {
    fn ack(mut self) -> Option<Delivery> {
        self.delivery.take()
    }
}

impl Drop for Unacked {
    fn drop(&mut self) {
        if let Some(d) = self.delivery.take() {
            self.queue.push_front(d);
        }
    }
}

impl MemoryBus {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self, topic: &str) -> Arc<WorkQueue> {
        self.state()
            .queues
            .entry(topic.to_owned())
            .or_default()
            .clone()
    }

    pub(crate) fn cast(&self, topic: &str, env: Envelope) -> Result<(), BusError> {
        self.queue(topic).push_back(Delivery {
            env,
            reply: None,
            deadline: None,
        });
        Ok(())
    }

    pub(crate) async fn call(
        &self,
        topic: &str,
        env: Envelope,
        timeout: Duration,
    ) -> Result<Reply, BusError> {
        let (tx, rx) = oneshot::channel();
        self.queue(topic).push_back(Delivery {
            env,
            reply: Some(tx),
            deadline: Some(Instant::now() + timeout),
        });
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            // The sender went away without answering: the bus is gone.
            Ok(Err(_)) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout),
        }
    }

    pub(crate) fn fanout(&self, topic: &str, env: Envelope) -> Result<(), BusError> {
        let mut state = self.state();
        if let Some(subs) = state.fanouts.get_mut(topic) {
            // Subscribers that stopped have closed their receiver.
            subs.retain(|tx| tx.send(env.clone()).is_ok());
        }
        Ok(())
    }

    pub(crate) fn serve(
        &self,
        topic: &str,
        handler: Arc<dyn Handler>,
        concurrency: usize,
    ) -> Consumer {
        let queue = self.queue(topic);
        let token = CancellationToken::new();
        let tasks = (0..concurrency)
            .map(|_| {
                tokio::spawn(work_loop(
                    topic.to_owned(),
                    queue.clone(),
                    handler.clone(),
                    token.clone(),
                ))
            })
            .collect();
        Consumer::new(token, tasks)
    }

    pub(crate) fn delete_topic(&self, topic: &str) {
        let mut state = self.state();
        state.queues.remove(topic);
        state.fanouts.remove(topic);
    }

    pub(crate) fn subscribe(&self, topic: &str, handler: Arc<dyn Handler>) -> Consumer {
        let (tx, rx) = mpsc::unbounded_channel();
        self.state()
            .fanouts
            .entry(topic.to_owned())
            .or_default()
            .push(tx);
        let token = CancellationToken::new();
        let task = tokio::spawn(fanout_loop(topic.to_owned(), rx, handler, token.clone()));
        Consumer::new(token, vec![task])
    }
}

async fn work_loop(
    topic: String,
    queue: Arc<WorkQueue>,
    handler: Arc<dyn Handler>,
    token: CancellationToken,
) {
    loop {
        let delivery = tokio::select! {
            _ = token.cancelled() => return,
            d = queue.pop() => d,
        };
        if delivery.expired() {
            tracing::debug!(topic, method = %delivery.env.method, "dropping expired call");
            continue;
        }
        let env = delivery.env.clone();
        let unacked = Unacked {
            queue: queue.clone(),
            delivery: Some(delivery),
        };
        let outcome = tokio::select! {
            // Dropping `unacked` on the way out requeues the message.
            _ = token.cancelled() => return,
            r = handler::run(&topic, &handler, env) => r,
        };
        match outcome {
            Ok(reply) => {
                let Some(delivery) = unacked.ack() else {
                    continue;
                };
                match delivery.reply {
                    // The caller may have timed out; nothing to do then.
                    Some(tx) => {
                        let _ = tx.send(reply);
                    }
                    None => handler::log_unanswered(&topic, &delivery.env, &reply),
                }
            }
            Err(handler::Panicked) => {
                drop(unacked);
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(PANIC_BACKOFF) => {}
                }
            }
        }
    }
}

async fn fanout_loop(
    topic: String,
    mut rx: mpsc::UnboundedReceiver<Envelope>,
    handler: Arc<dyn Handler>,
    token: CancellationToken,
) {
    loop {
        let env = tokio::select! {
            _ = token.cancelled() => return,
            m = rx.recv() => match m {
                Some(env) => env,
                None => return,
            },
        };
        let outcome = tokio::select! {
            _ = token.cancelled() => return,
            r = handler::run(&topic, &handler, env.clone()) => r,
        };
        // Fanout messages are notifications: a failed or panicking handler
        // is logged and the message dropped (nobody else would get it).
        if let Ok(reply) = outcome {
            handler::log_unanswered(&topic, &env, &reply);
        }
    }
}
