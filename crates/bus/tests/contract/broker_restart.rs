//! AMQP only: the broker restarts (`rabbitmqctl stop_app` / `start_app`)
//! while messages are queued, in flight and being sent. Every message cast
//! before, during and after must eventually be handled (duplicates are
//! allowed, losses are not), and calls work again afterwards.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use stratus_bus::{handler_fn, Envelope, ServeOptions};
use tokio::sync::mpsc;

use super::{ctx, Fixture, Kind, BROKER, PATIENCE};

fn rabbitmqctl(arg: &str) -> bool {
    std::process::Command::new("rabbitmqctl")
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts the broker application again however the test ends.
struct StartAppGuard;

impl Drop for StartAppGuard {
    fn drop(&mut self) {
        if !rabbitmqctl("start_app") {
            eprintln!("WARNING: `rabbitmqctl start_app` failed; start RabbitMQ by hand");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_survives_a_broker_restart_with_messages_in_flight() {
    let _alone = BROKER.write().await;
    let Some(f) = Fixture::new(Kind::Amqp).await else {
        return;
    };
    if !tokio::task::spawn_blocking(|| rabbitmqctl("await_startup"))
        .await
        .expect("join")
    {
        assert!(
            std::env::var("STRATUS_TEST_REQUIRE_AMQP").as_deref() != Ok("1"),
            "rabbitmqctl is required to test broker restarts"
        );
        eprintln!("SKIPPED: rabbitmqctl not usable; broker restart not tested");
        return;
    }
    let topic = f.topic("restart");
    let echo = f.topic("echo");

    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker = handler_fn(move |env: Envelope| {
        let tx = tx.clone();
        async move {
            // Slow enough that messages are in flight when the broker stops.
            // (20 casts take about 2 s to work through.)
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = tx.send(env.args["i"].as_i64().unwrap_or(-1));
            Ok(Value::Null)
        }
    });
    let consumer_bus = f.other_bus().await;
    let consumer = consumer_bus
        .serve(&topic, worker, ServeOptions::default())
        .await
        .expect("serve");
    let echo_consumer = consumer_bus
        .serve(
            &echo,
            handler_fn(|env: Envelope| async move { Ok(env.args) }),
            ServeOptions::default(),
        )
        .await
        .expect("serve");

    for i in 0..20 {
        f.bus
            .cast(&topic, "job", &ctx(), &json!({ "i": i }))
            .await
            .expect("cast before");
    }

    let guard = StartAppGuard;
    let stopped = tokio::task::spawn_blocking(|| rabbitmqctl("stop_app"))
        .await
        .expect("join");
    assert!(stopped, "rabbitmqctl stop_app failed");

    // Casts sent while the broker is away block until it is back.
    let bus = f.bus.clone();
    let during_topic = topic.clone();
    let during = tokio::spawn(async move {
        for i in 20..30 {
            bus.cast(&during_topic, "job", &ctx(), &json!({ "i": i }))
                .await?;
        }
        Ok::<_, stratus_bus::BusError>(())
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(guard); // start_app
    during
        .await
        .expect("join")
        .expect("cast while the broker was down");

    for i in 30..40 {
        f.bus
            .cast(&topic, "job", &ctx(), &json!({ "i": i }))
            .await
            .expect("cast after");
    }

    let mut seen = HashSet::new();
    let mut deliveries = 0;
    while seen.len() < 40 {
        match tokio::time::timeout(PATIENCE, rx.recv()).await {
            Ok(Some(i)) => {
                deliveries += 1;
                seen.insert(i);
            }
            _ => {
                let missing: Vec<i64> = (0..40).filter(|i| !seen.contains(i)).collect();
                panic!("messages lost across the broker restart: {missing:?}");
            }
        }
    }
    eprintln!("40 messages handled in {deliveries} deliveries");

    let reply: Value = f
        .bus
        .call_timeout(
            &echo,
            "echo",
            &ctx(),
            &json!({ "x": 1 }),
            Duration::from_secs(30),
        )
        .await
        .expect("call after the restart");
    assert_eq!(reply, json!({ "x": 1 }));

    consumer.stop().await;
    echo_consumer.stop().await;
    f.cleanup().await;
}
