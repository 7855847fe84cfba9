//! Graceful shutdown: a [`Shutdown`] signal and a [`DrainingBus`] that stops the consumers.
//!
//! The roles loop on *receive, work, store, commit*. After [`Shutdown::trigger`], a consumer
//! of the [`DrainingBus`] answers its next `next()` (or the one it is waiting in) with
//! [`BusError::Closed`] instead of a message, so each role ends right after committing the
//! message it was working on: in-flight work finishes and is committed, nothing new starts.
//! Publishing still works, so the work in flight can publish its output. Uncommitted
//! messages stay on the bus for the next start (Kafka); processing is idempotent.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::bus::{Bus, BusError, Consumer, Delivery};

/// A one-way stop signal shared by the tasks of a process.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Not triggered yet.
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::channel(false).0),
        }
    }

    /// Triggers the stop (idempotent).
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// True once triggered.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Resolves once triggered (at once when it already is).
    pub fn triggered(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            // An error means the sender is gone: nothing can trigger any more; stop too.
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    }
}

/// A [`Bus`] whose consumers stop at [`Shutdown::trigger`]; see the [module docs](self).
pub struct DrainingBus {
    inner: Arc<dyn Bus>,
    shutdown: Shutdown,
}

impl DrainingBus {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Bus>, shutdown: Shutdown) -> Self {
        Self { inner, shutdown }
    }
}

#[async_trait]
impl Bus for DrainingBus {
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), BusError> {
        self.inner.publish(topic, key, payload).await
    }

    async fn publish_batch(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), BusError> {
        self.inner.publish_batch(topic, records).await
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        if self.shutdown.is_triggered() {
            return Err(BusError::Closed);
        }
        Ok(Box::new(DrainingConsumer {
            inner: self.inner.subscribe(topic, group).await?,
            shutdown: self.shutdown.clone(),
        }))
    }
}

struct DrainingConsumer {
    inner: Box<dyn Consumer>,
    shutdown: Shutdown,
}

#[async_trait]
impl Consumer for DrainingConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        if self.shutdown.is_triggered() {
            return Err(BusError::Closed);
        }
        // Both inner consumers' `next` are cancel-safe: a message is handed out only when
        // the future completes.
        tokio::select! {
            biased;
            () = self.shutdown.triggered() => Err(BusError::Closed),
            delivery = self.inner.next() => delivery,
        }
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        self.inner.commit(delivery).await
    }

    async fn commit_batch(&mut self, deliveries: &[Delivery]) -> Result<(), BusError> {
        self.inner.commit_batch(deliveries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;

    #[tokio::test]
    async fn consumers_stop_after_the_trigger_and_publishing_goes_on() {
        let shutdown = Shutdown::new();
        let memory: Arc<dyn Bus> = Arc::new(MemoryBus::new(1));
        let bus = DrainingBus::new(memory.clone(), shutdown.clone());
        let mut consumer = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", "k", b"one").await.unwrap();
        let first = consumer.next().await.unwrap();
        assert_eq!(first.payload, b"one");
        // A consumer waiting for a message is woken by the trigger.
        let waiting = tokio::spawn(async move {
            let result = consumer.next().await;
            (consumer, result)
        });
        tokio::task::yield_now().await;
        shutdown.trigger();
        let (mut consumer, result) = waiting.await.unwrap();
        assert!(matches!(result, Err(BusError::Closed)));
        // The in-flight message still commits; publishing still works.
        consumer.commit(&first).await.unwrap();
        bus.publish("t", "k", b"two").await.unwrap();
        assert!(matches!(consumer.next().await, Err(BusError::Closed)));
        // The message published after the trigger waits for the next start.
        let mut successor = memory.subscribe("t", "g").await.unwrap();
        drop(consumer);
        assert_eq!(successor.next().await.unwrap().payload, b"two");
    }
}
