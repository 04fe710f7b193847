//! The handler side of the bus: the [`Handler`] trait services implement,
//! a closure adapter, and how both transports run one handler invocation
//! (in its own task, so that a panic is caught and the message requeued
//! instead of taking the consumer down).
//!
//! Each invocation runs in a `bus` tracing span with the envelope's method,
//! version and request id, and in a `stratus_common::with_request_id` scope,
//! so that the calls the handler makes to other services and the casts it
//! sends carry the request id of the message. Each is counted and timed in
//! the process's metrics (by topic, method and outcome).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument;

use crate::{Envelope, RemoteError, Reply};

/// What a service gives [`crate::Bus::serve`] or [`crate::Bus::subscribe`].
/// Usually one handler per topic that matches on `msg.method`.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, msg: Envelope) -> Result<serde_json::Value, RemoteError>;
}

struct FnHandler<F>(F);

#[async_trait]
impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, RemoteError>> + Send + 'static,
{
    async fn handle(&self, msg: Envelope) -> Result<serde_json::Value, RemoteError> {
        (self.0)(msg).await
    }
}

/// A handler from an async closure (handy in tests and small workers).
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn Handler>
where
    F: Fn(Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, RemoteError>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

/// The handler did not return: it panicked. The message must go back.
#[derive(Debug)]
pub(crate) struct Panicked;

/// Runs one handler invocation in its own task. Dropping the returned future
/// (a consumer being stopped) aborts the invocation.
pub(crate) async fn run(
    topic: &str,
    handler: &Arc<dyn Handler>,
    env: Envelope,
) -> Result<Reply, Panicked> {
    let started = Instant::now();
    let handler = handler.clone();
    let method = env.method.clone();
    let span = tracing::info_span!(
        "bus",
        method = %env.method,
        version = %env.version,
        request_id = %env.context.request_id,
        message_id = %env.id,
    );
    let request_id = env.context.request_id.clone();
    let task = AbortOnDrop(tokio::spawn(
        stratus_common::with_request_id(request_id, async move { handler.handle(env).await })
            .instrument(span),
    ));
    let joined = task.join().await;
    let outcome = match &joined {
        Ok(Ok(_)) => "ok",
        Ok(Err(_)) => "error",
        Err(_) => "panic",
    };
    stratus_telemetry::metrics::bus_handled(topic, &method, outcome, started.elapsed());
    match joined {
        Ok(reply) => Ok(reply),
        Err(e) => {
            tracing::error!(%method, error = %e, "bus handler panicked");
            Err(Panicked)
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Logs what a handler returned for a message nobody waits on.
pub(crate) fn log_unanswered(topic: &str, env: &Envelope, reply: &Reply) {
    if let Err(e) = reply {
        tracing::warn!(
            topic,
            method = %env.method,
            message_id = %env.id,
            request_id = %env.context.request_id,
            kind = %e.kind,
            error = %e.message,
            "bus cast handler failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use stratus_common::RequestContext;

    use crate::{Bus, ServeOptions};

    #[tokio::test]
    async fn a_handler_runs_under_the_request_id_of_its_message() {
        let bus = Bus::in_memory();
        let consumer = bus
            .serve(
                "rid",
                super::handler_fn(|_env| async {
                    Ok(serde_json::json!(
                        stratus_common::current_request_id().map(|id| id.0)
                    ))
                }),
                ServeOptions::default(),
            )
            .await
            .expect("serve");
        let ctx = RequestContext::internal();
        let seen: Option<String> = bus
            .call("rid", "which", &ctx, &serde_json::json!({}))
            .await
            .expect("call");
        assert_eq!(seen, Some(ctx.request_id.0.clone()));
        consumer.stop().await;
    }

    #[tokio::test]
    async fn messages_are_counted_by_topic_method_and_kind() {
        let bus = Bus::in_memory();
        let consumer = bus
            .serve(
                "counted",
                super::handler_fn(|env| async move {
                    match env.method.as_str() {
                        "fail" => Err(crate::RemoteError::new("Boom", "no")),
                        _ => Ok(serde_json::json!(null)),
                    }
                }),
                ServeOptions::default(),
            )
            .await
            .expect("serve");
        let ctx = RequestContext::internal();
        let args = serde_json::json!({});
        let _: () = bus
            .call("counted", "ping", &ctx, &args)
            .await
            .expect("call");
        assert!(bus
            .call::<()>("counted", "fail", &ctx, &args)
            .await
            .is_err());
        bus.cast("counted", "ping", &ctx, &args)
            .await
            .expect("cast");
        // The cast is handled once the queue drains: a call behind it.
        let _: () = bus
            .call("counted", "sync", &ctx, &args)
            .await
            .expect("call");

        let text = stratus_telemetry::metrics::render(false)
            .await
            .expect("metrics on");
        for line in [
            "stratus_bus_messages_sent_total{topic=\"counted\",method=\"ping\",kind=\"call\"} 1",
            "stratus_bus_messages_sent_total{topic=\"counted\",method=\"ping\",kind=\"cast\"} 1",
            "stratus_bus_messages_handled_total{topic=\"counted\",method=\"ping\",outcome=\"ok\"} 2",
            "stratus_bus_messages_handled_total{topic=\"counted\",method=\"fail\",outcome=\"error\"} 1",
            "stratus_bus_call_duration_seconds_count{topic=\"counted\",method=\"fail\",outcome=\"error\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        consumer.stop().await;
    }
}
