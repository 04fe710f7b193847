//! The connection to RabbitMQ and the confirmed publisher, both of which
//! survive the broker going away.
//!
//! One connection per [`super::AmqpBus`]; when it breaks, the next user
//! reconnects (callers retry with [`Backoff`]). Publishing goes through one
//! channel in confirm mode: a publish returns only once the broker confirmed
//! it (so the message is in a durable queue, on disk if persistent), and is
//! retried on any failure until a deadline. A retry after a lost confirm can
//! duplicate a message; that is the at-least-once contract.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::time::Instant;

use crate::BusError;

/// The direct exchange every work-queue topic is bound to.
pub(super) const EXCHANGE: &str = "stratus";

/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The fanout exchange of a topic.
pub(super) fn fanout_exchange(topic: &str) -> String {
    format!("stratus.fanout.{topic}")
}

/// Where a message goes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target<'a> {
    /// The durable work queue of a topic (declared on first use, so that
    /// casts wait for a consumer).
    Queue(&'a str),
    /// Every subscriber of a topic.
    Fanout(&'a str),
    /// A caller's reply queue (default exchange; dropped if the caller left).
    Reply(&'a str),
}

/// Exponential backoff between reconnection attempts.
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    pub(super) fn new() -> Self {
        Self { next: Self::FIRST }
    }

    pub(super) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }
}

pub(super) struct Link {
    url: String,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    publisher: tokio::sync::Mutex<Option<Channel>>,
    /// Topology declared since the last failure ("q:topic", "f:topic"), so
    /// that a publish does not redeclare its queue every time.
    declared: Mutex<HashSet<String>>,
}

pub(super) fn transport(e: impl std::fmt::Display) -> BusError {
    BusError::Transport(e.to_string())
}

impl Link {
    pub(super) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            conn: tokio::sync::Mutex::new(None),
            publisher: tokio::sync::Mutex::new(None),
            declared: Mutex::new(HashSet::new()),
        }
    }

    /// The live connection, reconnecting once if it is broken.
    pub(super) async fn connection(&self) -> Result<Arc<Connection>, BusError> {
        let mut current = self.conn.lock().await;
        if let Some(c) = current.as_ref() {
            if c.status().connected() {
                return Ok(c.clone());
            }
        }
        let props = ConnectionProperties::default().with_connection_name("stratus".into());
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(&self.url, props))
            .await
            .map_err(|_| BusError::Transport("connecting to the broker timed out".to_owned()))?
            .map_err(transport)?;
        let conn = Arc::new(conn);
        self.forget_topology();
        *current = Some(conn.clone());
        tracing::info!("connected to the AMQP broker");
        Ok(conn)
    }

    pub(super) async fn channel(&self) -> Result<Channel, BusError> {
        self.connection()
            .await?
            .create_channel()
            .await
            .map_err(transport)
    }

    pub(super) fn forget_topology(&self) {
        self.declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn is_declared(&self, key: &str) -> bool {
        self.declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    fn mark_declared(&self, key: String) {
        self.declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
    }

    async fn publisher(&self) -> Result<Channel, BusError> {
        let mut current = self.publisher.lock().await;
        if let Some(ch) = current.as_ref() {
            if ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        let ch = self.channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(transport)?;
        *current = Some(ch.clone());
        Ok(ch)
    }

    async fn drop_publisher(&self) {
        *self.publisher.lock().await = None;
        self.forget_topology();
    }

    /// Publishes and waits for the broker's confirmation, retrying with
    /// backoff until `deadline`.
    pub(super) async fn publish(
        &self,
        target: Target<'_>,
        payload: &[u8],
        props: BasicProperties,
        deadline: Instant,
    ) -> Result<(), BusError> {
        let mut backoff = Backoff::new();
        loop {
            let err = match self.publish_once(target, payload, props.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            tracing::warn!(?target, error = %err, "publish failed; retrying");
            self.drop_publisher().await;
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(err);
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn publish_once(
        &self,
        target: Target<'_>,
        payload: &[u8],
        props: BasicProperties,
    ) -> Result<(), BusError> {
        let ch = self.publisher().await?;
        let (exchange, routing_key, mandatory) = match target {
            Target::Queue(topic) => {
                let key = format!("q:{topic}");
                if !self.is_declared(&key) {
                    declare_work_queue(&ch, topic).await?;
                    self.mark_declared(key);
                }
                (EXCHANGE.to_owned(), topic.to_owned(), true)
            }
            Target::Fanout(topic) => {
                let key = format!("f:{topic}");
                if !self.is_declared(&key) {
                    declare_fanout_exchange(&ch, topic).await?;
                    self.mark_declared(key);
                }
                (fanout_exchange(topic), String::new(), false)
            }
            Target::Reply(queue) => (String::new(), queue.to_owned(), false),
        };
        let confirm = ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                payload,
                props,
            )
            .await
            .map_err(transport)?
            .await
            .map_err(transport)?;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            // Mandatory and unroutable: the queue was deleted behind our
            // back; the retry declares it again.
            Confirmation::Ack(Some(returned)) => Err(BusError::Transport(format!(
                "message returned by the broker: {}",
                returned.reply_text
            ))),
            Confirmation::Nack(_) => Err(BusError::Transport(
                "the broker refused the message".to_owned(),
            )),
        }
    }
}

/// The durable queue of a work-queue topic, bound to the direct exchange.
/// Publishers and consumers both declare it, with the same arguments.
pub(super) async fn declare_work_queue(ch: &Channel, topic: &str) -> Result<(), BusError> {
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(transport)?;
    ch.queue_declare(
        topic.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(transport)?;
    ch.queue_bind(
        topic.into(),
        EXCHANGE.into(),
        topic.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(transport)
}

pub(super) async fn declare_fanout_exchange(ch: &Channel, topic: &str) -> Result<(), BusError> {
    ch.exchange_declare(
        fanout_exchange(topic).into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(transport)
}
