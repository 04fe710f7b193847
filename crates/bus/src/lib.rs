//! stratus-bus: how compute and network talk to their workers.
//!
//! Three patterns, as in Nova's and Neutron's RPC layer (oslo.messaging):
//!
//! - [`Bus::cast`]: one-way; exactly one consumer of the topic gets it (a
//!   work queue with competing consumers), delivered at least once, so
//!   handlers must be idempotent.
//! - [`Bus::call`]: request/reply with a timeout; a handler's
//!   [`RemoteError`] comes back to the caller typed as [`BusError::Remote`].
//! - [`Bus::fanout`]: every current subscriber of the topic gets it.
//!
//! Every message is an [`Envelope`] that carries the caller's
//! [`RequestContext`], so work done by a worker is attributed to the user who
//! asked for it.
//!
//! Two transports, chosen by [`BusConfig::transport`]: in-process channels
//! (`stratus up`, tests) and RabbitMQ over AMQP 0-9-1 (one service per
//! process on many hosts). Both give the same guarantees; the contract test
//! suite in `tests/contract.rs` runs against both.

mod amqp;
mod handler;
mod memory;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stratus_common::config::{BusConfig, BusTransport};
use stratus_common::context::RequestContext;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Re-exported so that services implement [`Handler`] without naming the
/// crate themselves: `#[stratus_bus::async_trait] impl Handler for ...`.
pub use async_trait::async_trait;
pub use handler::{handler_fn, Handler};

/// The envelope version every message gets unless the sender says otherwise.
pub const DEFAULT_VERSION: &str = "1.0";

/// One message on the bus, as a handler receives it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// Unique per message (not per delivery: a redelivered message keeps its
    /// id, which lets handlers spot duplicates).
    pub id: uuid::Uuid,
    pub method: String,
    /// `major.minor` of the method's argument shape, as Nova versions its
    /// RPC APIs.
    pub version: String,
    pub context: RequestContext,
    pub args: serde_json::Value,
    /// When it was sent (cast, call or fanout), so that a receiver can
    /// tell how long it waited in the queue; `None` from older senders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Envelope {
    /// A new message with a fresh id and the default version.
    pub fn new(method: &str, context: &RequestContext, args: serde_json::Value) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            method: method.to_owned(),
            version: DEFAULT_VERSION.to_owned(),
            context: context.clone(),
            args,
            sent_at: None,
        }
    }

    /// The arguments decoded into the handler's own type; a shape mismatch
    /// is the sender's mistake, reported back as a `BadRequest`.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, RemoteError> {
        serde_json::from_value(self.args.clone()).map_err(|e| {
            RemoteError::new(
                "BadRequest",
                format!("invalid arguments for {}: {e}", self.method),
            )
        })
    }
}

/// An error raised by a remote handler and carried back to the caller.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    /// The service's error variant name, e.g. `NotFound`, `Conflict`.
    pub kind: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No reply within the call's timeout (nobody serves the topic, or the
    /// handler was too slow).
    #[error("timed out waiting for a reply")]
    Timeout,
    /// The remote handler answered with an error.
    #[error("remote error: {0}")]
    Remote(RemoteError),
    /// The broker could not be reached or refused the operation.
    #[error("bus transport error: {0}")]
    Transport(String),
    /// Arguments or reply could not be (de)serialised.
    #[error("bus codec error: {0}")]
    Codec(String),
    /// The bus was shut down.
    #[error("bus closed")]
    Closed,
}

/// How a work-queue consumer runs its handler.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Messages handled at once by this consumer. 1 keeps the topic's order.
    pub concurrency: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { concurrency: 1 }
    }
}

/// A running consumer. [`Consumer::stop`] stops it and waits; dropping it
/// also stops it (without waiting). A message whose handler had not finished
/// is put back on the queue for another consumer.
pub struct Consumer {
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Consumer {
    pub(crate) fn new(token: CancellationToken, tasks: Vec<JoinHandle<()>>) -> Self {
        Self { token, tasks }
    }

    /// Stops consuming and waits until in-flight messages were handed back.
    pub async fn stop(mut self) {
        self.token.cancel();
        for task in std::mem::take(&mut self.tasks) {
            // A worker that panicked has nothing left to give back.
            let _ = task.await;
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("workers", &self.tasks.len())
            .field("stopped", &self.token.is_cancelled())
            .finish()
    }
}

#[derive(Clone)]
enum Transport {
    Memory(memory::MemoryBus),
    Amqp(amqp::AmqpBus),
}

/// A handle on the bus; cheap to clone, clones share the transport.
#[derive(Clone)]
pub struct Bus {
    transport: Transport,
    call_timeout: Duration,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.transport {
            Transport::Memory(_) => "memory",
            Transport::Amqp(_) => "amqp",
        };
        f.debug_struct("Bus")
            .field("transport", &kind)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl Bus {
    /// A new in-process bus. Only clones of this value see its messages.
    pub fn in_memory() -> Bus {
        Bus {
            transport: Transport::Memory(memory::MemoryBus::new()),
            call_timeout: Duration::from_secs(BusConfig::default().call_timeout_secs),
        }
    }

    /// The bus the configuration names. With the memory transport every
    /// call makes a separate bus: create one and clone it into every service
    /// of the process. With AMQP the broker must be reachable now (later
    /// outages are survived: consumers reconnect, publishers retry).
    pub async fn connect(cfg: &BusConfig) -> Result<Bus, BusError> {
        let call_timeout = Duration::from_secs(cfg.call_timeout_secs.max(1));
        let transport = match cfg.transport {
            BusTransport::Memory => Transport::Memory(memory::MemoryBus::new()),
            BusTransport::Amqp => Transport::Amqp(amqp::AmqpBus::connect(&cfg.url).await?),
        };
        Ok(Bus {
            transport,
            call_timeout,
        })
    }

    /// The same bus with another default call timeout.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Bus {
        self.call_timeout = timeout;
        self
    }

    /// The timeout [`Bus::call`] uses.
    pub fn default_call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// One-way message to one consumer of `topic`; kept until one serves it.
    pub async fn cast(
        &self,
        topic: &str,
        method: &str,
        ctx: &RequestContext,
        args: &impl Serialize,
    ) -> Result<(), BusError> {
        self.cast_envelope(topic, Envelope::new(method, ctx, encode(args)?))
            .await
    }

    /// Like [`Bus::cast`] with an envelope the caller built (for example
    /// with another version).
    pub async fn cast_envelope(&self, topic: &str, mut env: Envelope) -> Result<(), BusError> {
        validate_topic(topic)?;
        env.sent_at = Some(chrono::Utc::now());
        match &self.transport {
            Transport::Memory(m) => m.cast(topic, env),
            Transport::Amqp(a) => a.cast(topic, env).await,
        }
    }

    /// Request/reply with the bus's call timeout.
    pub async fn call<R: DeserializeOwned>(
        &self,
        topic: &str,
        method: &str,
        ctx: &RequestContext,
        args: &impl Serialize,
    ) -> Result<R, BusError> {
        self.call_timeout(topic, method, ctx, args, self.call_timeout)
            .await
    }

    /// Request/reply with an explicit timeout.
    pub async fn call_timeout<R: DeserializeOwned>(
        &self,
        topic: &str,
        method: &str,
        ctx: &RequestContext,
        args: &impl Serialize,
        timeout: Duration,
    ) -> Result<R, BusError> {
        let env = Envelope::new(method, ctx, encode(args)?);
        let reply = self.call_envelope(topic, env, timeout).await?;
        serde_json::from_value(reply)
            .map_err(|e| BusError::Codec(format!("reply to {method} on {topic}: {e}")))
    }

    /// Request/reply with an envelope the caller built; the raw JSON reply.
    pub async fn call_envelope(
        &self,
        topic: &str,
        mut env: Envelope,
        timeout: Duration,
    ) -> Result<serde_json::Value, BusError> {
        validate_topic(topic)?;
        env.sent_at = Some(chrono::Utc::now());
        let reply = match &self.transport {
            Transport::Memory(m) => m.call(topic, env, timeout).await?,
            Transport::Amqp(a) => a.call(topic, env, timeout).await?,
        };
        reply.map_err(BusError::Remote)
    }

    /// One-way message to every current subscriber of `topic`.
    pub async fn fanout(
        &self,
        topic: &str,
        method: &str,
        ctx: &RequestContext,
        args: &impl Serialize,
    ) -> Result<(), BusError> {
        validate_topic(topic)?;
        let mut env = Envelope::new(method, ctx, encode(args)?);
        env.sent_at = Some(chrono::Utc::now());
        match &self.transport {
            Transport::Memory(m) => m.fanout(topic, env),
            Transport::Amqp(a) => a.fanout(topic, env).await,
        }
    }

    /// Consume the work queue `topic`. Each message is acknowledged only
    /// after the handler returned; a handler error is final (logged, and
    /// sent back to a caller), a panic or a stop puts the message back (a
    /// handler that always panics on a message retries it forever, with a
    /// short pause: it is a bug to fix, not an input to drop silently).
    /// Returns once the consumer is registered.
    pub async fn serve(
        &self,
        topic: &str,
        handler: Arc<dyn Handler>,
        opts: ServeOptions,
    ) -> Result<Consumer, BusError> {
        validate_topic(topic)?;
        let concurrency = opts.concurrency.max(1);
        match &self.transport {
            Transport::Memory(m) => Ok(m.serve(topic, handler, concurrency)),
            Transport::Amqp(a) => a.serve(topic, handler, concurrency).await,
        }
    }

    /// Receive every fanout message on `topic` sent from now on.
    pub async fn subscribe(
        &self,
        topic: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Consumer, BusError> {
        validate_topic(topic)?;
        match &self.transport {
            Transport::Memory(m) => Ok(m.subscribe(topic, handler)),
            Transport::Amqp(a) => a.subscribe(topic, handler).await,
        }
    }
}

impl Bus {
    /// Deletes a topic's work queue (with any waiting messages) and its
    /// fanout exchange. For tests and operators cleaning up after a host
    /// that is gone for good.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), BusError> {
        validate_topic(topic)?;
        match &self.transport {
            Transport::Memory(m) => {
                m.delete_topic(topic);
                Ok(())
            }
            Transport::Amqp(a) => a.delete_topic(topic).await,
        }
    }
}

/// Longest topic accepted: AMQP names are at most 255 bytes and the fanout
/// exchange adds a prefix.
const MAX_TOPIC_LEN: usize = 200;

/// Topics come from code and host names; one the broker would refuse is
/// rejected here, the same way on both transports, rather than retried.
fn validate_topic(topic: &str) -> Result<(), BusError> {
    let ok = !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LEN
        && !topic.starts_with("amq.")
        && !topic.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(BusError::Transport(format!("invalid bus topic {topic:?}")))
    }
}

fn encode(args: &impl Serialize) -> Result<serde_json::Value, BusError> {
    serde_json::to_value(args).map_err(|e| BusError::Codec(format!("arguments: {e}")))
}

/// The reply a call gets: the handler's value or its error.
pub(crate) type Reply = Result<serde_json::Value, RemoteError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_args_decode_or_report_bad_request() {
        let env = Envelope::new(
            "instance_get",
            &RequestContext::internal(),
            serde_json::json!({"id": 3}),
        );
        assert_eq!(env.version, DEFAULT_VERSION);
        #[derive(Deserialize)]
        struct Args {
            id: u32,
        }
        assert_eq!(env.args::<Args>().map(|a| a.id), Ok(3));
        let err = env.args::<Vec<String>>().err().map(|e| e.kind);
        assert_eq!(err.as_deref(), Some("BadRequest"));
    }

    #[tokio::test]
    async fn topics_the_broker_would_refuse_are_rejected() {
        let bus = Bus::in_memory();
        let ctx = RequestContext::internal();
        for bad in ["", "amq.topic", &"x".repeat(MAX_TOPIC_LEN + 1)] {
            let r = bus.cast(bad, "m", &ctx, &()).await;
            assert!(matches!(r, Err(BusError::Transport(_))), "{bad:?}: {r:?}");
        }
        assert!(bus.cast("compute.host-1", "m", &ctx, &()).await.is_ok());
    }

    #[tokio::test]
    async fn a_message_carries_when_it_was_sent() {
        let bus = Bus::in_memory();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let h = handler_fn(move |env: Envelope| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(env.sent_at);
                Ok(serde_json::Value::Null)
            }
        });
        let _c = bus
            .serve("t", h, ServeOptions::default())
            .await
            .expect("serve");
        let before = chrono::Utc::now();
        let ctx = RequestContext::internal();
        bus.cast("t", "m", &ctx, &()).await.expect("cast");
        let sent = rx.recv().await.flatten().expect("sent_at");
        assert!(sent >= before && sent <= chrono::Utc::now());
        // Older senders' envelopes have none.
        let old: Envelope = serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::new_v4(), "method": "m", "version": "1.0",
            "context": ctx, "args": null}))
        .expect("old envelope");
        assert_eq!(old.sent_at, None);
    }

    #[test]
    fn envelopes_round_trip_through_json() {
        let env = Envelope::new("m", &RequestContext::internal(), serde_json::json!([1, 2]));
        let text = serde_json::to_string(&env).map_err(|e| e.to_string());
        let back: Result<Envelope, String> =
            text.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
        assert_eq!(back, Ok(env));
    }
}
