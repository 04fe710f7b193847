//! Waiting for Nova's external instance events (`network-vif-plugged`): a
//! build registers a waiter per port BEFORE it binds the port, so an event
//! the network service sends at once cannot be missed; the API's
//! `os-server-external-events` casts the event to the host, whose agent
//! wakes the waiter here. Unclaimed events are dropped, as in Nova.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// (instance id, event name, tag)
type Key = (String, String, String);

#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<Key, oneshot::Sender<String>>>,
}

/// One event's outcome as the waiter saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every event came with status `completed`.
    Completed,
    /// An event came with another status (`failed`): (tag, status).
    Failed(String, String),
    /// Not all events came in time: the tags still missing.
    TimedOut(Vec<String>),
}

/// The receiving end of one registered event.
pub struct Waiter {
    pub tag: String,
    rx: oneshot::Receiver<String>,
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, oneshot::Sender<String>>> {
        // A poisoned map only means a panicking holder; its data is still a
        // plain map of senders.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(&self, instance: &str, name: &str, tag: &str) -> Waiter {
        let (tx, rx) = oneshot::channel();
        self.lock()
            .insert((instance.to_owned(), name.to_owned(), tag.to_owned()), tx);
        Waiter {
            tag: tag.to_owned(),
            rx,
        }
    }

    /// Delivers an event; `false` when nobody waits for it.
    pub fn deliver(&self, instance: &str, name: &str, tag: &str, status: &str) -> bool {
        let tx = self
            .lock()
            .remove(&(instance.to_owned(), name.to_owned(), tag.to_owned()));
        match tx {
            Some(tx) => tx.send(status.to_owned()).is_ok(),
            None => false,
        }
    }

    /// Forgets every waiter of an instance (its build ended).
    pub fn clear(&self, instance: &str) {
        self.lock().retain(|(i, _, _), _| i != instance);
    }
}

/// Waits for all `waiters` until `timeout`.
pub async fn wait_all(waiters: Vec<Waiter>, timeout: Duration) -> Outcome {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut missing = Vec::new();
    for w in waiters {
        match tokio::time::timeout_at(deadline, w.rx).await {
            Ok(Ok(status)) if status == "completed" => {}
            Ok(Ok(status)) => return Outcome::Failed(w.tag, status),
            // Dropped (cleared) or timed out: the event never came.
            Ok(Err(_)) | Err(_) => missing.push(w.tag),
        }
    }
    if missing.is_empty() {
        Outcome::Completed
    } else {
        Outcome::TimedOut(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivered_before_waiting_is_not_lost() {
        let w = Waiters::default();
        let a = w.register("i", "network-vif-plugged", "p1");
        assert!(w.deliver("i", "network-vif-plugged", "p1", "completed"));
        assert!(!w.deliver("i", "network-vif-plugged", "p1", "completed"));
        assert_eq!(
            wait_all(vec![a], Duration::from_secs(5)).await,
            Outcome::Completed
        );
    }

    #[tokio::test]
    async fn missing_and_failed_events() {
        let w = Waiters::default();
        let a = w.register("i", "network-vif-plugged", "p1");
        assert_eq!(
            wait_all(vec![a], Duration::from_millis(1)).await,
            Outcome::TimedOut(vec!["p1".to_owned()])
        );
        let b = w.register("i", "network-vif-plugged", "p2");
        w.deliver("i", "network-vif-plugged", "p2", "failed");
        assert_eq!(
            wait_all(vec![b], Duration::from_secs(5)).await,
            Outcome::Failed("p2".to_owned(), "failed".to_owned())
        );
        let _c = w.register("j", "network-vif-plugged", "p3");
        w.clear("j");
        assert!(!w.deliver("j", "network-vif-plugged", "p3", "completed"));
    }
}
