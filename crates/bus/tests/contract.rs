//! The bus contract, run against both transports: every test below is
//! generated once for the in-process bus and once for RabbitMQ.
//!
//! The AMQP half uses a unique topic prefix per test (so parallel runs do
//! not collide) and deletes its queues at the end. When no broker is
//! reachable it prints a skip message, unless `STRATUS_TEST_REQUIRE_AMQP=1`
//! (CI), in which case it fails.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use stratus_bus::{handler_fn, Bus, BusError, Envelope, RemoteError, ServeOptions};
use stratus_common::config::{BusConfig, BusTransport};
use stratus_common::context::RequestContext;
use tokio::sync::mpsc;

/// Upper bound for anything the tests wait for; reaching it is a failure,
/// never a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

/// AMQP tests share the broker; the one that restarts it runs alone, so
/// that the others do not see redeliveries they do not expect.
static BROKER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Memory,
    Amqp,
}

struct Fixture {
    kind: Kind,
    bus: Bus,
    prefix: String,
    topics: Mutex<Vec<String>>,
}

impl Fixture {
    async fn new(kind: Kind) -> Option<Fixture> {
        let bus = match kind {
            Kind::Memory => Bus::in_memory(),
            Kind::Amqp => amqp_bus().await?,
        };
        Some(Fixture {
            kind,
            bus,
            prefix: format!("test.{}", uuid::Uuid::new_v4().simple()),
            topics: Mutex::new(Vec::new()),
        })
    }

    /// A topic unique to this test, deleted by `cleanup`.
    fn topic(&self, name: &str) -> String {
        let t = format!("{}.{name}", self.prefix);
        self.topics.lock().expect("lock").push(t.clone());
        t
    }

    /// A second bus on the same transport (another process, for AMQP).
    async fn other_bus(&self) -> Bus {
        match self.kind {
            Kind::Memory => self.bus.clone(),
            Kind::Amqp => amqp_bus().await.expect("broker went away"),
        }
    }

    async fn cleanup(self) {
        let topics = std::mem::take(&mut *self.topics.lock().expect("lock"));
        for t in topics {
            self.bus.delete_topic(&t).await.expect("delete topic");
        }
    }
}

fn amqp_url() -> String {
    std::env::var("STRATUS_TEST_AMQP_URL").unwrap_or_else(|_| BusConfig::default().url)
}

async fn amqp_bus() -> Option<Bus> {
    let cfg = BusConfig {
        transport: BusTransport::Amqp,
        url: amqp_url(),
        call_timeout_secs: 30,
    };
    match Bus::connect(&cfg).await {
        Ok(bus) => Some(bus),
        Err(e) if std::env::var("STRATUS_TEST_REQUIRE_AMQP").as_deref() == Ok("1") => {
            panic!("RabbitMQ required (STRATUS_TEST_REQUIRE_AMQP=1) but unreachable: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: RabbitMQ not reachable at {} ({e})", amqp_url());
            None
        }
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        roles: vec!["member".to_owned()],
        ..RequestContext::internal()
    }
}

/// Waits for `n` items from `rx`, failing the test if they do not come.
async fn take<T>(rx: &mut mpsc::UnboundedReceiver<T>, n: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(PATIENCE, rx.recv()).await {
            Ok(Some(x)) => out.push(x),
            Ok(None) => panic!("channel closed after {} of {n} items", out.len()),
            Err(_) => panic!("only {} of {n} items arrived", out.len()),
        }
    }
    out
}

/// A handler that forwards every envelope it gets to a channel.
fn recorder(tx: mpsc::UnboundedSender<Envelope>) -> Arc<dyn stratus_bus::Handler> {
    handler_fn(move |env: Envelope| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(env);
            Ok(Value::Null)
        }
    })
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::Fixture::new(super::Kind::Memory).await.expect("memory bus");
                    super::$name(&f).await;
                    f.cleanup().await;
                }
            )*
        }
        mod amqp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    // The broker-restart test takes this exclusively.
                    let _shared = super::BROKER.read().await;
                    let Some(f) = super::Fixture::new(super::Kind::Amqp).await else {
                        return;
                    };
                    super::$name(&f).await;
                    f.cleanup().await;
                }
            )*
        }
    };
}

contract!(
    per_topic_order_is_kept,
    casts_wait_for_a_consumer,
    competing_consumers_share_a_topic,
    fanout_reaches_every_subscriber,
    call_returns_the_value_and_carries_the_context,
    call_times_out_when_the_handler_is_slow,
    remote_errors_come_back_typed,
    call_to_a_topic_nobody_serves_times_out,
    stopped_consumer_mid_message_hands_it_to_another,
    panicking_handler_gets_the_message_again,
    cast_handler_error_is_not_redelivered,
    reply_of_the_wrong_shape_is_a_codec_error,
    concurrency_runs_handlers_side_by_side,
);

async fn per_topic_order_is_kept(f: &Fixture) {
    let topic = f.topic("order");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = f
        .bus
        .serve(&topic, recorder(tx), ServeOptions::default())
        .await
        .expect("serve");
    for i in 0..30 {
        f.bus
            .cast(&topic, "step", &ctx(), &json!({ "i": i }))
            .await
            .expect("cast");
    }
    let got: Vec<i64> = take(&mut rx, 30)
        .await
        .iter()
        .map(|e| e.args["i"].as_i64().expect("i"))
        .collect();
    assert_eq!(got, (0..30).collect::<Vec<_>>());
    consumer.stop().await;
}

async fn casts_wait_for_a_consumer(f: &Fixture) {
    let topic = f.topic("durable");
    for i in 0..5 {
        f.bus
            .cast(&topic, "early", &ctx(), &json!({ "i": i }))
            .await
            .expect("cast");
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = f
        .other_bus()
        .await
        .serve(&topic, recorder(tx), ServeOptions::default())
        .await
        .expect("serve");
    for i in 5..10 {
        f.bus
            .cast(&topic, "late", &ctx(), &json!({ "i": i }))
            .await
            .expect("cast");
    }
    let got: Vec<i64> = take(&mut rx, 10)
        .await
        .iter()
        .map(|e| e.args["i"].as_i64().expect("i"))
        .collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    consumer.stop().await;
}

async fn competing_consumers_share_a_topic(f: &Fixture) {
    let topic = f.topic("work");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut consumers = Vec::new();
    for name in ["a", "b"] {
        let tx = tx.clone();
        let h = handler_fn(move |env: Envelope| {
            let tx = tx.clone();
            async move {
                // Slow enough that one consumer cannot take everything.
                tokio::time::sleep(Duration::from_millis(30)).await;
                let _ = tx.send((name, env.id));
                Ok(Value::Null)
            }
        });
        let bus = f.other_bus().await;
        consumers.push(
            bus.serve(&topic, h, ServeOptions::default())
                .await
                .expect("serve"),
        );
    }
    for i in 0..20 {
        f.bus
            .cast(&topic, "job", &ctx(), &json!({ "i": i }))
            .await
            .expect("cast");
    }
    let got = take(&mut rx, 20).await;
    let ids: HashSet<_> = got.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), 20, "each cast handled once");
    let mut per_consumer: HashMap<&str, usize> = HashMap::new();
    for (name, _) in &got {
        *per_consumer.entry(name).or_default() += 1;
    }
    assert_eq!(
        per_consumer.len(),
        2,
        "both consumers worked: {per_consumer:?}"
    );
    // Nothing more arrives: no message was delivered twice.
    for c in consumers {
        c.stop().await;
    }
    assert!(rx.try_recv().is_err());
}

async fn fanout_reaches_every_subscriber(f: &Fixture) {
    let topic = f.topic("fan");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subs = Vec::new();
    for i in 0..3 {
        let tx = tx.clone();
        let h = handler_fn(move |env: Envelope| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((i, env.method));
                Ok(Value::Null)
            }
        });
        subs.push(
            f.other_bus()
                .await
                .subscribe(&topic, h)
                .await
                .expect("subscribe"),
        );
    }
    f.bus
        .fanout(&topic, "port_update", &ctx(), &json!({}))
        .await
        .expect("fanout");
    let mut got = take(&mut rx, 3).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, "port_update".to_owned()),
            (1, "port_update".to_owned()),
            (2, "port_update".to_owned())
        ]
    );
    for s in subs {
        s.stop().await;
    }
}

async fn call_returns_the_value_and_carries_the_context(f: &Fixture) {
    let topic = f.topic("conductor");
    let h = handler_fn(|env: Envelope| async move {
        let args: HashMap<String, i64> = env.args()?;
        Ok(json!({
            "sum": args["a"] + args["b"],
            "method": env.method,
            "version": env.version,
            "request_id": env.context.request_id.to_string(),
            "roles": env.context.roles,
        }))
    });
    let consumer = f
        .other_bus()
        .await
        .serve(&topic, h, ServeOptions::default())
        .await
        .expect("serve");
    let c = ctx();
    let reply: Value = f
        .bus
        .call(&topic, "add", &c, &json!({ "a": 2, "b": 40 }))
        .await
        .expect("call");
    assert_eq!(reply["sum"], 42);
    assert_eq!(reply["method"], "add");
    assert_eq!(reply["version"], "1.0");
    assert_eq!(reply["request_id"], c.request_id.to_string());
    assert_eq!(reply["roles"], json!(["member"]));
    consumer.stop().await;
}

async fn call_times_out_when_the_handler_is_slow(f: &Fixture) {
    let topic = f.topic("slow");
    let h = handler_fn(|_env: Envelope| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(Value::Null)
    });
    let consumer = f
        .bus
        .serve(&topic, h, ServeOptions::default())
        .await
        .expect("serve");
    let r: Result<Value, _> = f
        .bus
        .call_timeout(
            &topic,
            "slow",
            &ctx(),
            &json!({}),
            Duration::from_millis(300),
        )
        .await;
    assert!(matches!(r, Err(BusError::Timeout)), "{r:?}");
    consumer.stop().await;
}

async fn remote_errors_come_back_typed(f: &Fixture) {
    let topic = f.topic("errors");
    let h = handler_fn(|env: Envelope| async move {
        Err(RemoteError::new(
            "NotFound",
            format!("instance {} not found", env.args["id"]),
        ))
    });
    let consumer = f
        .bus
        .serve(&topic, h, ServeOptions::default())
        .await
        .expect("serve");
    let r: Result<Value, _> = f
        .bus
        .call(&topic, "instance_get", &ctx(), &json!({ "id": 7 }))
        .await;
    match r {
        Err(BusError::Remote(e)) => {
            assert_eq!(e.kind, "NotFound");
            assert_eq!(e.message, "instance 7 not found");
        }
        other => panic!("expected a remote NotFound, got {other:?}"),
    }
    // Wrong argument shapes are the caller's fault and come back as such.
    let h2 = handler_fn(|env: Envelope| async move {
        let _: Vec<u8> = env.args()?;
        Ok(Value::Null)
    });
    let topic2 = f.topic("badargs");
    let consumer2 = f
        .bus
        .serve(&topic2, h2, ServeOptions::default())
        .await
        .expect("serve");
    let r: Result<Value, _> = f.bus.call(&topic2, "m", &ctx(), &json!({ "x": 1 })).await;
    assert!(
        matches!(&r, Err(BusError::Remote(e)) if e.kind == "BadRequest"),
        "{r:?}"
    );
    consumer.stop().await;
    consumer2.stop().await;
}

async fn call_to_a_topic_nobody_serves_times_out(f: &Fixture) {
    let topic = f.topic("nobody");
    let r: Result<Value, _> = f
        .bus
        .call_timeout(
            &topic,
            "ping",
            &ctx(),
            &json!({}),
            Duration::from_millis(300),
        )
        .await;
    assert!(matches!(r, Err(BusError::Timeout)), "{r:?}");
}

async fn stopped_consumer_mid_message_hands_it_to_another(f: &Fixture) {
    let topic = f.topic("handover");
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let finished = Arc::new(AtomicUsize::new(0));
    let fin = finished.clone();
    let stuck = handler_fn(move |env: Envelope| {
        let started_tx = started_tx.clone();
        let fin = fin.clone();
        async move {
            let _ = started_tx.send(env.id);
            // Never finishes on its own: only a stop ends it.
            std::future::pending::<()>().await;
            fin.fetch_add(1, Ordering::SeqCst);
            Ok(Value::Null)
        }
    });
    let first = f
        .bus
        .serve(&topic, stuck, ServeOptions::default())
        .await
        .expect("serve");
    f.bus
        .cast(&topic, "build", &ctx(), &json!({ "n": 1 }))
        .await
        .expect("cast");
    let taken = take(&mut started_rx, 1).await[0];

    let (tx, mut rx) = mpsc::unbounded_channel();
    let second = f
        .other_bus()
        .await
        .serve(&topic, recorder(tx), ServeOptions::default())
        .await
        .expect("serve");
    first.stop().await;
    let again = take(&mut rx, 1).await;
    assert_eq!(again[0].id, taken, "the same message is delivered again");
    assert_eq!(again[0].args, json!({ "n": 1 }));
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    second.stop().await;
}

async fn panicking_handler_gets_the_message_again(f: &Fixture) {
    let topic = f.topic("crash");
    let attempts = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let a = attempts.clone();
    let h = handler_fn(move |env: Envelope| {
        let a = a.clone();
        let tx = tx.clone();
        async move {
            if a.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("simulated crash in the handler");
            }
            let _ = tx.send(env.id);
            Ok(Value::Null)
        }
    });
    let consumer = f
        .bus
        .serve(&topic, h, ServeOptions::default())
        .await
        .expect("serve");
    f.bus
        .cast(&topic, "build", &ctx(), &json!({}))
        .await
        .expect("cast");
    take(&mut rx, 1).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    consumer.stop().await;
}

async fn cast_handler_error_is_not_redelivered(f: &Fixture) {
    let topic = f.topic("casterr");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let h = handler_fn(move |env: Envelope| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(env.args["i"].as_i64());
            if env.args["i"] == 0 {
                return Err(RemoteError::new("Conflict", "already done"));
            }
            Ok(Value::Null)
        }
    });
    let consumer = f
        .bus
        .serve(&topic, h, ServeOptions::default())
        .await
        .expect("serve");
    f.bus
        .cast(&topic, "m", &ctx(), &json!({ "i": 0 }))
        .await
        .expect("cast");
    f.bus
        .cast(&topic, "m", &ctx(), &json!({ "i": 1 }))
        .await
        .expect("cast");
    // FIFO with one consumer: had the failed message been requeued it would
    // come again before or right after the second one.
    let got = take(&mut rx, 2).await;
    assert_eq!(got, vec![Some(0), Some(1)]);
    f.bus
        .cast(&topic, "m", &ctx(), &json!({ "i": 2 }))
        .await
        .expect("cast");
    assert_eq!(take(&mut rx, 1).await, vec![Some(2)]);
    consumer.stop().await;
}

async fn reply_of_the_wrong_shape_is_a_codec_error(f: &Fixture) {
    let topic = f.topic("codec");
    let h = handler_fn(|_env: Envelope| async move { Ok(json!("not a number")) });
    let consumer = f
        .bus
        .serve(&topic, h, ServeOptions::default())
        .await
        .expect("serve");
    let r: Result<u32, _> = f.bus.call(&topic, "m", &ctx(), &json!({})).await;
    assert!(matches!(r, Err(BusError::Codec(_))), "{r:?}");
    consumer.stop().await;
}

async fn concurrency_runs_handlers_side_by_side(f: &Fixture) {
    let topic = f.topic("parallel");
    // Each handler waits for all four: only four handlers running at once
    // get past the barrier.
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let h = handler_fn(move |env: Envelope| {
        let barrier = barrier.clone();
        let tx = tx.clone();
        async move {
            barrier.wait().await;
            let _ = tx.send(env.id);
            Ok(Value::Null)
        }
    });
    let consumer = f
        .bus
        .serve(&topic, h, ServeOptions { concurrency: 4 })
        .await
        .expect("serve");
    for i in 0..4 {
        f.bus
            .cast(&topic, "m", &ctx(), &json!({ "i": i }))
            .await
            .expect("cast");
    }
    let ids: HashSet<_> = take(&mut rx, 4).await.into_iter().collect();
    assert_eq!(ids.len(), 4);
    consumer.stop().await;
}

#[path = "contract/broker_restart.rs"]
mod broker_restart;
