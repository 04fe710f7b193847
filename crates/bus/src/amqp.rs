//! The RabbitMQ transport (AMQP 0-9-1 through lapin), laid out as
//! oslo.messaging lays out Nova's and Neutron's RPC:
//!
//! - work-queue topics: a durable queue per topic bound to the direct
//!   exchange `stratus`; persistent messages; publisher confirms; consumers
//!   set `basic_qos(prefetch = concurrency)` and acknowledge only after the
//!   handler returned (a stopped consumer closes its channel, which makes the
//!   broker requeue what it had not acknowledged);
//! - calls: the request carries `reply_to` (this bus's exclusive reply
//!   queue) and a `correlation_id`, and expires (message TTL) with the call's
//!   timeout so that nobody does work whose caller gave up;
//! - fanout: a fanout exchange per topic (`stratus.fanout.<topic>`) with an
//!   exclusive auto-delete queue per subscriber;
//! - the broker going away: every consumer loop and the reply loop reconnect
//!   with backoff, redeclare and resume; publishers retry until confirmed or
//!   their deadline. A message is acknowledged only after its handler
//!   finished, so nothing acknowledged is lost; work in flight when the
//!   connection broke is redelivered (duplicates are possible, losses not).

mod link;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::link::{transport, Backoff, Link, Target};
use crate::handler::{self, Handler};
use crate::{BusError, Consumer, Envelope, RemoteError, Reply};

/// How long a cast or fanout keeps retrying while the broker is away.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(120);
/// How long a worker keeps trying to send a reply (the caller's own
/// timeout bounds how long it is useful anyway).
const REPLY_DEADLINE: Duration = Duration::from_secs(10);
/// How long `serve`/`subscribe` wait for their first registration.
const FIRST_CONSUME_DEADLINE: Duration = Duration::from_secs(15);
/// Delay before requeueing a message whose handler panicked.
const PANIC_BACKOFF: Duration = Duration::from_millis(200);
/// AMQP `delivery_mode` for messages written to disk.
const PERSISTENT: u8 = 2;

/// What a call's reply message carries.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireReply {
    Ok(serde_json::Value),
    Error(RemoteError),
}

type Pending = Mutex<HashMap<String, oneshot::Sender<Reply>>>;

#[derive(Clone)]
pub(crate) struct AmqpBus {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    reply_queue: String,
    pending: Arc<Pending>,
    /// True while the reply queue is declared and consumed.
    reply_ready: watch::Receiver<bool>,
    /// Stops the reply loop when the last clone of the bus goes.
    token: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Forgets a pending call however the caller leaves (reply, timeout, drop).
struct PendingGuard<'a> {
    pending: &'a Pending,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn encode(env: &Envelope) -> Result<Vec<u8>, BusError> {
    serde_json::to_vec(env).map_err(|e| BusError::Codec(e.to_string()))
}

fn base_props(env: &Envelope) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_message_id(env.id.to_string().into())
        .with_delivery_mode(PERSISTENT)
}

impl AmqpBus {
    pub(crate) async fn connect(url: &str) -> Result<Self, BusError> {
        let link = Arc::new(Link::new(url));
        // Fail fast on a wrong URL or a broker that is not there at start.
        link.connection().await?;
        let reply_queue = format!("stratus.reply.{}", uuid::Uuid::new_v4());
        let pending: Arc<Pending> = Arc::default();
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let token = CancellationToken::new();
        tokio::spawn(reply_loop(
            link.clone(),
            reply_queue.clone(),
            pending.clone(),
            ready_tx,
            token.clone(),
        ));
        let ready = tokio::time::timeout(FIRST_CONSUME_DEADLINE, ready_rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok());
        if !ready {
            token.cancel();
            return Err(BusError::Transport(
                "could not set up the reply queue".to_owned(),
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                link,
                reply_queue,
                pending,
                reply_ready: ready_rx,
                token,
            }),
        })
    }

    pub(crate) async fn cast(&self, topic: &str, env: Envelope) -> Result<(), BusError> {
        let payload = encode(&env)?;
        self.inner
            .link
            .publish(
                Target::Queue(topic),
                &payload,
                base_props(&env),
                Instant::now() + PUBLISH_DEADLINE,
            )
            .await
    }

    pub(crate) async fn call(
        &self,
        topic: &str,
        env: Envelope,
        timeout: Duration,
    ) -> Result<Reply, BusError> {
        let deadline = Instant::now() + timeout;
        let payload = encode(&env)?;
        let correlation = env.id.to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(correlation.clone(), tx);
        let _guard = PendingGuard {
            pending: &self.inner.pending,
            id: correlation.clone(),
        };
        let ttl_ms = timeout.as_millis().max(1).to_string();
        let props = base_props(&env)
            .with_reply_to(self.inner.reply_queue.as_str().into())
            .with_correlation_id(correlation.into())
            .with_expiration(ttl_ms.into());
        let work = async {
            // After a reconnection the reply queue comes back shortly; a
            // reply sent before that would be lost.
            let mut ready = self.inner.reply_ready.clone();
            ready.wait_for(|r| *r).await.map_err(|_| BusError::Closed)?;
            self.inner
                .link
                .publish(Target::Queue(topic), &payload, props, deadline)
                .await?;
            rx.await.map_err(|_| BusError::Closed)
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(BusError::Timeout),
        }
    }

    pub(crate) async fn fanout(&self, topic: &str, env: Envelope) -> Result<(), BusError> {
        let payload = encode(&env)?;
        self.inner
            .link
            .publish(
                Target::Fanout(topic),
                &payload,
                base_props(&env),
                Instant::now() + PUBLISH_DEADLINE,
            )
            .await
    }

    pub(crate) async fn serve(
        &self,
        topic: &str,
        handler: Arc<dyn Handler>,
        concurrency: usize,
    ) -> Result<Consumer, BusError> {
        self.start(Kind::Work { concurrency }, topic, handler).await
    }

    pub(crate) async fn subscribe(
        &self,
        topic: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Consumer, BusError> {
        self.start(Kind::Fanout, topic, handler).await
    }

    async fn start(
        &self,
        kind: Kind,
        topic: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Consumer, BusError> {
        let token = CancellationToken::new();
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(consume_loop(
            self.inner.link.clone(),
            kind,
            topic.to_owned(),
            handler,
            token.clone(),
            first_tx,
        ));
        let consumer = Consumer::new(token, vec![task]);
        match tokio::time::timeout(FIRST_CONSUME_DEADLINE, first_rx).await {
            Ok(Ok(Ok(()))) => Ok(consumer),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(BusError::Closed),
            Err(_) => Err(BusError::Transport(format!(
                "could not start consuming {topic}"
            ))),
        }
    }

    /// Deletes a topic's work queue and fanout exchange (tests, cleanup).
    pub(crate) async fn delete_topic(&self, topic: &str) -> Result<(), BusError> {
        let ch = self.inner.link.channel().await?;
        ch.queue_delete(topic.into(), QueueDeleteOptions::default())
            .await
            .map_err(transport)?;
        ch.exchange_delete(
            link::fanout_exchange(topic).into(),
            ExchangeDeleteOptions::default(),
        )
        .await
        .map_err(transport)?;
        self.inner.link.forget_topology();
        let _ = ch.close(200, "done".into()).await;
        Ok(())
    }
}

/// Receives replies for this bus's calls; reconnects when the broker goes.
async fn reply_loop(
    link: Arc<Link>,
    queue: String,
    pending: Arc<Pending>,
    ready: watch::Sender<bool>,
    token: CancellationToken,
) {
    let mut backoff = Backoff::new();
    loop {
        let opened = tokio::select! {
            _ = token.cancelled() => return,
            r = open_reply_consumer(&link, &queue) => r,
        };
        match opened {
            Ok((ch, mut consumer)) => {
                backoff.reset();
                ready.send_replace(true);
                loop {
                    let next = tokio::select! {
                        _ = token.cancelled() => {
                            let _ = ch.close(200, "bus dropped".into()).await;
                            return;
                        }
                        d = consumer.next() => d,
                    };
                    match next {
                        Some(Ok(d)) => deliver_reply(&pending, &d),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "reply consumer lost; reconnecting");
                            break;
                        }
                        None => break,
                    }
                }
                ready.send_replace(false);
            }
            Err(e) => tracing::warn!(error = %e, "cannot open the reply queue; retrying"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

async fn open_reply_consumer(
    link: &Link,
    queue: &str,
) -> Result<(Channel, lapin::Consumer), BusError> {
    let ch = link.channel().await?;
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(transport)?;
    let consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(transport)?;
    Ok((ch, consumer))
}

fn deliver_reply(pending: &Pending, d: &Delivery) {
    let Some(id) = d.properties.correlation_id() else {
        return;
    };
    // No waiter: the call already timed out.
    let Some(tx) = lock(pending).remove(id.as_str()) else {
        return;
    };
    let reply = match serde_json::from_slice::<WireReply>(&d.data) {
        Ok(WireReply::Ok(v)) => Ok(v),
        Ok(WireReply::Error(e)) => Err(e),
        Err(e) => Err(RemoteError::new(
            "Internal",
            format!("undecodable reply: {e}"),
        )),
    };
    let _ = tx.send(reply);
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Work { concurrency: usize },
    Fanout,
}

/// Runs one consumer until stopped: (re)open the channel, consume, and when
/// the connection breaks start again with backoff.
async fn consume_loop(
    link: Arc<Link>,
    kind: Kind,
    topic: String,
    handler: Arc<dyn Handler>,
    token: CancellationToken,
    first: oneshot::Sender<Result<(), BusError>>,
) {
    let mut first = Some(first);
    let mut backoff = Backoff::new();
    loop {
        let opened = tokio::select! {
            _ = token.cancelled() => return,
            r = open_consumer(&link, kind, &topic) => r,
        };
        match opened {
            Ok((ch, consumer)) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                backoff.reset();
                let stopped = consume(&link, kind, &topic, &handler, consumer, &token).await;
                if stopped {
                    // Closing the channel makes the broker requeue whatever
                    // this consumer had not acknowledged.
                    let _ = ch.close(200, "consumer stopped".into()).await;
                    return;
                }
                tracing::warn!(topic, "bus consumer lost its channel; reconnecting");
            }
            Err(e) => {
                // A consumer that never started reports it to `serve`; one
                // that ran before keeps trying (the broker may come back).
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                tracing::warn!(topic, error = %e, "cannot resume bus consumer; retrying");
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

async fn open_consumer(
    link: &Link,
    kind: Kind,
    topic: &str,
) -> Result<(Channel, lapin::Consumer), BusError> {
    let ch = link.channel().await?;
    let (queue, prefetch) = match kind {
        Kind::Work { concurrency } => {
            link::declare_work_queue(&ch, topic).await?;
            (topic.to_owned(), concurrency)
        }
        Kind::Fanout => {
            link::declare_fanout_exchange(&ch, topic).await?;
            let q = ch
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(transport)?;
            let name = q.name().as_str().to_owned();
            ch.queue_bind(
                name.as_str().into(),
                link::fanout_exchange(topic).into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(transport)?;
            (name, 1)
        }
    };
    let prefetch = u16::try_from(prefetch).unwrap_or(u16::MAX);
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(transport)?;
    let consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(transport)?;
    Ok((ch, consumer))
}

/// Handles deliveries, `concurrency` at a time, until the channel breaks
/// (false) or the consumer is stopped (true). Either way, handlers still
/// running are aborted and their messages left unacknowledged, so the broker
/// hands them out again.
async fn consume(
    link: &Arc<Link>,
    kind: Kind,
    topic: &str,
    handler: &Arc<dyn Handler>,
    mut consumer: lapin::Consumer,
    token: &CancellationToken,
) -> bool {
    let limit = match kind {
        Kind::Work { concurrency } => concurrency,
        Kind::Fanout => 1,
    };
    let mut inflight = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => return true,
            Some(()) = inflight.next(), if !inflight.is_empty() => {}
            next = consumer.next(), if inflight.len() < limit => match next {
                Some(Ok(d)) => inflight.push(process(link, kind, topic, handler, d)),
                Some(Err(e)) => {
                    tracing::warn!(topic, error = %e, "bus consumer error");
                    return false;
                }
                None => return false,
            },
        }
    }
}

/// One delivery: decode, run the handler, reply to a call, then acknowledge.
async fn process(
    link: &Arc<Link>,
    kind: Kind,
    topic: &str,
    handler: &Arc<dyn Handler>,
    d: Delivery,
) {
    let env: Envelope = match serde_json::from_slice(&d.data) {
        Ok(env) => env,
        Err(e) => {
            // Redelivering a message nobody can read would loop forever.
            tracing::error!(topic, error = %e, "dropping undecodable bus message");
            let _ = d.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    let reply = match handler::run(topic, handler, env.clone()).await {
        Ok(reply) => reply,
        Err(handler::Panicked) if matches!(kind, Kind::Work { .. }) => {
            tokio::time::sleep(PANIC_BACKOFF).await;
            let opts = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            if let Err(e) = d.nack(opts).await {
                tracing::warn!(topic, error = %e, "nack failed; the broker will redeliver");
            }
            return;
        }
        // A fanout notification is not retried (as with the memory bus).
        Err(handler::Panicked) => {
            let _ = d.ack(BasicAckOptions::default()).await;
            return;
        }
    };
    match (d.properties.reply_to(), d.properties.correlation_id()) {
        (Some(reply_to), Some(correlation)) => {
            let wire = match reply {
                Ok(v) => WireReply::Ok(v),
                Err(e) => WireReply::Error(e),
            };
            match serde_json::to_vec(&wire) {
                Ok(payload) => {
                    let props = BasicProperties::default()
                        .with_content_type("application/json".into())
                        .with_correlation_id(correlation.clone());
                    let deadline = Instant::now() + REPLY_DEADLINE;
                    if let Err(e) = link
                        .publish(Target::Reply(reply_to.as_str()), &payload, props, deadline)
                        .await
                    {
                        tracing::warn!(topic, method = %env.method, error = %e, "reply lost");
                    }
                }
                Err(e) => tracing::error!(topic, error = %e, "cannot encode reply"),
            }
        }
        _ => handler::log_unanswered(topic, &env, &reply),
    }
    if let Err(e) = d.ack(BasicAckOptions::default()).await {
        // The channel broke after the handler finished; the broker will
        // redeliver (at-least-once: handlers are idempotent).
        tracing::warn!(topic, error = %e, "ack failed; message will be redelivered");
    }
}
