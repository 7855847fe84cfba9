//! Messaging: one object-safe [`Bus`] trait, a Kafka and an in-process implementation.
//!
//! # Model (Kafka's, kept by both implementations)
//! - A topic has partitions; a message's partition is chosen by a hash of its key (the
//!   symbol), so the messages of one symbol stay in order.
//! - [`Bus::subscribe`] joins a consumer group. The partitions of a topic are split among the
//!   group's consumers; every group receives every message.
//! - Delivery is at least once: a consumer [`Consumer::commit`]s a message after its work is
//!   stored; a consumer that stops before committing leaves the message to be delivered
//!   again (to its successor in the group). Idempotent processing (the envelope id and
//!   `Store::mark_processed`) makes the repeat harmless.
//!
//! # Typed messages and the dead-letter topic
//! [`publish`] writes an [`Envelope`] as JSON; [`MessageConsumer`] reads them back. A
//! message that cannot be decoded is published to `<topic>.dlq` as a [`DeadLetter`] (a JSON
//! object with the error text and the original bytes), committed, and skipped: one poison
//! message never blocks a partition. Both buses share this code.

mod kafka;
mod memory;

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use kafka::{KafkaBus, KafkaSettings};
pub use memory::MemoryBus;

use crate::messages::{Envelope, MessageError, Payload, topics};

/// A bus failure.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// librdkafka reported an error.
    #[error("kafka error during {operation}: {source}")]
    Kafka {
        operation: &'static str,
        source: rdkafka::error::KafkaError,
    },
    /// The message to publish is invalid (a NaN price, say); nothing was sent.
    #[error("cannot publish to {topic}: {source}")]
    Encode { topic: String, source: MessageError },
    /// A topic name Kafka would refuse.
    #[error("invalid topic name {topic:?}: use 1 to 249 ASCII letters, digits, '.', '_' or '-'")]
    InvalidTopic { topic: String },
    /// The commit was refused because the group is rebalancing and this consumer no longer
    /// owns the partition. Harmless: the partition's next owner receives the message again
    /// from the last commit, and processing is idempotent. Log it and go on.
    #[error(
        "commit of {topic}[{partition}]@{offset} lost to a group rebalance; the message will be delivered again"
    )]
    Rebalanced {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// The bus was shut down.
    #[error("the bus is closed")]
    Closed,
}

/// One received message, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub partition: i32,
    /// Position in the partition; committing it means "everything up to here is done".
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
}

/// A message bus; see the [module docs](self). Object-safe: held as `Arc<dyn Bus>`.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` to `topic` under `key` and returns once the broker has it
    /// (Kafka: acknowledged by all in-sync replicas).
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), BusError>;

    /// Joins consumer group `group` on `topic`. A new group starts at the topic's earliest
    /// retained message; a known group resumes after its last commit.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError>;

    /// Publishes `records` (`(key, payload)`) to `topic`, in order, and returns once the
    /// broker has all of them. The default publishes one after the other; the in-process
    /// bus appends them under one lock with one wake-up, Kafka sends them all before
    /// awaiting the acknowledgements (one round trip instead of one per record).
    ///
    /// # Errors
    /// The first failure; records before it may have been published (at least once).
    async fn publish_batch(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), BusError> {
        for (key, payload) in records {
            self.publish(topic, key, payload).await?;
        }
        Ok(())
    }
}

/// A member of a consumer group, reading one topic.
#[async_trait]
pub trait Consumer: Send {
    /// Waits for the next message of this consumer's partitions.
    async fn next(&mut self) -> Result<Delivery, BusError>;

    /// Commits `delivery`: this group will not receive it, or anything before it in its
    /// partition, again.
    ///
    /// # Errors
    /// [`BusError::Rebalanced`] when the partition moved to another member meanwhile (the
    /// message will be redelivered there; not a failure of the work), else a bus error.
    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError>;

    /// Waits for the next message, then takes up to `max - 1` more that are ready or arrive
    /// within `max_wait` (zero: only those already received). Messages of one partition
    /// keep their order.
    ///
    /// Receiving is cancel-safe on both buses (a message is taken from the consumer's
    /// queue only when it is returned), so the wait is a plain timeout.
    ///
    /// # Errors
    /// A bus error while waiting for the first message (a later one ends the batch early;
    /// it recurs on the next call).
    async fn next_batch(
        &mut self,
        max: usize,
        max_wait: std::time::Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let mut batch = vec![self.next().await?];
        let deadline = tokio::time::Instant::now() + max_wait;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Ok(delivery)) => batch.push(delivery),
                Ok(Err(_)) | Err(_) => break,
            }
        }
        Ok(batch)
    }

    /// Commits a processed batch: for each partition, the highest offset among
    /// `deliveries` (committing it covers everything before it). Call it only once every
    /// message of the batch is stored. The default commits partition by partition; Kafka
    /// sends one commit for all.
    ///
    /// # Errors
    /// As [`Consumer::commit`] (the first failure).
    async fn commit_batch(&mut self, deliveries: &[Delivery]) -> Result<(), BusError> {
        for delivery in highest_per_partition(deliveries) {
            self.commit(delivery).await?;
        }
        Ok(())
    }
}

/// The delivery with the highest offset of each (topic, partition) among `deliveries`,
/// in order of first appearance.
pub fn highest_per_partition(deliveries: &[Delivery]) -> Vec<&Delivery> {
    let mut highest: Vec<&Delivery> = Vec::new();
    for delivery in deliveries {
        match highest
            .iter_mut()
            .find(|d| d.topic == delivery.topic && d.partition == delivery.partition)
        {
            Some(slot) if slot.offset < delivery.offset => *slot = delivery,
            Some(_) => {}
            None => highest.push(delivery),
        }
    }
    highest
}

/// Checks a topic name with Kafka's rules (also applied by the memory bus, so a name that
/// works embedded works on Kafka).
///
/// # Errors
/// [`BusError::InvalidTopic`].
pub fn check_topic(topic: &str) -> Result<(), BusError> {
    let valid = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(BusError::InvalidTopic {
            topic: topic.to_owned(),
        })
    }
}

/// Validates `message`, serializes it and publishes it to `topic` under its key.
///
/// # Errors
/// [`BusError::Encode`] for an invalid message, else the bus's error.
pub async fn publish<P: Payload>(
    bus: &dyn Bus,
    topic: &str,
    message: &Envelope<P>,
) -> Result<(), BusError> {
    let bytes = message.to_json().map_err(|source| BusError::Encode {
        topic: topic.to_owned(),
        source,
    })?;
    bus.publish(topic, &message.key, &bytes).await
}

/// What lands on `<topic>.dlq` for a message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// Why decoding failed.
    pub error: String,
    /// The original bytes when they are UTF-8 text.
    pub payload_utf8: Option<String>,
    /// The original bytes as lower-case hex when they are not UTF-8.
    pub payload_hex: Option<String>,
    pub failed_at: DateTime<Utc>,
}

impl DeadLetter {
    /// Builds the dead letter of `delivery` failing with `error`.
    pub fn new(delivery: &Delivery, error: &MessageError) -> Self {
        let (payload_utf8, payload_hex) = match std::str::from_utf8(&delivery.payload) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(to_hex(&delivery.payload))),
        };
        Self {
            topic: delivery.topic.clone(),
            partition: delivery.partition,
            offset: delivery.offset,
            key: delivery.key.clone(),
            error: error.to_string(),
            payload_utf8,
            payload_hex,
            failed_at: Utc::now(),
        }
    }

    /// Returns the original bytes.
    pub fn payload(&self) -> Vec<u8> {
        if let Some(text) = &self.payload_utf8 {
            return text.as_bytes().to_vec();
        }
        let hex = self.payload_hex.as_deref().unwrap_or_default().as_bytes();
        hex.chunks(2)
            .filter_map(|pair| {
                let text = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(text, 16).ok()
            })
            .collect()
    }
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// A decoded message with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<P> {
    pub message: Envelope<P>,
    pub delivery: Delivery,
}

/// Publishes the dead letter of `delivery` to `topic` (not committed here).
async fn dead_letter(
    bus: &dyn Bus,
    topic: &str,
    delivery: &Delivery,
    error: &MessageError,
) -> Result<(), BusError> {
    let letter = DeadLetter::new(delivery, error);
    tracing::warn!(
        topic = %delivery.topic,
        partition = delivery.partition,
        offset = delivery.offset,
        error = %letter.error,
        "undecodable message sent to the dead-letter topic"
    );
    let bytes = serde_json::to_vec(&letter)
        .expect("a DeadLetter of strings and integers always serializes");
    let key = delivery.key.clone().unwrap_or_default();
    bus.publish(topic, &key, &bytes).await
}

/// Messages received together by [`MessageConsumer::next_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<P> {
    /// The messages that decoded, in delivery order.
    pub messages: Vec<Received<P>>,
    /// Every delivery of the batch, dead-lettered ones included (what is committed).
    deliveries: Vec<Delivery>,
}

/// A typed consumer: decodes envelopes, routes undecodable messages to the dead-letter topic.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use quantcore_service::bus::{self, Bus, MemoryBus, MessageConsumer};
/// use quantcore_service::messages::{AnomalyMessage, Envelope};
///
/// let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(4));
/// let mut consumer = MessageConsumer::<AnomalyMessage>::subscribe(bus.clone(), "anomalies", "api").await?;
/// bus.publish("anomalies", "ACME", b"{not json").await?; // poison: goes to anomalies.dlq
/// let sent = Envelope::new(AnomalyMessage {
///     symbol: "ACME".into(), timestamp: 1_704_207_600, score: 0.9, is_anomaly: true,
/// });
/// bus::publish(bus.as_ref(), "anomalies", &sent).await?;
/// let received = consumer.next().await?;
/// assert_eq!(received.message, sent);
/// consumer.commit(&received).await?;
/// # Ok(()) }
/// ```
pub struct MessageConsumer<P> {
    bus: Arc<dyn Bus>,
    inner: Box<dyn Consumer>,
    dead_letter_topic: String,
    _payload: PhantomData<fn() -> P>,
}

impl<P: Payload> MessageConsumer<P> {
    /// Joins `group` on `topic`.
    ///
    /// # Errors
    /// The bus's subscription error.
    pub async fn subscribe(bus: Arc<dyn Bus>, topic: &str, group: &str) -> Result<Self, BusError> {
        let inner = bus.subscribe(topic, group).await?;
        Ok(Self {
            bus,
            inner,
            dead_letter_topic: topics::dead_letter(topic),
            _payload: PhantomData,
        })
    }

    /// Returns the next message that decodes. Each one that does not is published to the
    /// dead-letter topic and committed first.
    ///
    /// # Errors
    /// A bus error (receiving, publishing the dead letter or committing it).
    pub async fn next(&mut self) -> Result<Received<P>, BusError> {
        loop {
            let delivery = self.inner.next().await?;
            match Envelope::<P>::from_json(&delivery.payload) {
                Ok(message) => return Ok(Received { message, delivery }),
                Err(error) => {
                    let letter = DeadLetter::new(&delivery, &error);
                    tracing::warn!(
                        topic = %delivery.topic,
                        partition = delivery.partition,
                        offset = delivery.offset,
                        error = %letter.error,
                        "undecodable message sent to the dead-letter topic"
                    );
                    let bytes = serde_json::to_vec(&letter)
                        .expect("a DeadLetter of strings and integers always serializes");
                    let key = delivery.key.clone().unwrap_or_default();
                    self.bus
                        .publish(&self.dead_letter_topic, &key, &bytes)
                        .await?;
                    match self.inner.commit(&delivery).await {
                        // The next owner of the partition dead-letters it again: a
                        // duplicate dead letter, nothing lost.
                        Ok(()) | Err(BusError::Rebalanced { .. }) => {}
                        Err(error) => return Err(error),
                    }
                }
            }
        }
    }

    /// Returns a batch of messages that decode: waits for the first delivery, then takes up to
    /// `max` in all as [`Consumer::next_batch`] does. Undecodable ones are dead-lettered
    /// as by [`MessageConsumer::next`] but committed only with the batch
    /// ([`MessageConsumer::commit_batch`]), since a commit covers every earlier offset of
    /// its partition. A batch of dead letters only is committed at once and the wait goes
    /// on, so the batch returned holds at least one message.
    ///
    /// # Errors
    /// A bus error (receiving, publishing a dead letter or committing).
    pub async fn next_batch(
        &mut self,
        max: usize,
        max_wait: std::time::Duration,
    ) -> Result<Batch<P>, BusError> {
        loop {
            let deliveries = self.inner.next_batch(max.max(1), max_wait).await?;
            let mut messages = Vec::with_capacity(deliveries.len());
            for delivery in &deliveries {
                match Envelope::<P>::from_json(&delivery.payload) {
                    Ok(message) => messages.push(Received {
                        message,
                        delivery: delivery.clone(),
                    }),
                    Err(error) => {
                        dead_letter(self.bus.as_ref(), &self.dead_letter_topic, delivery, &error)
                            .await?;
                    }
                }
            }
            let batch = Batch {
                messages,
                deliveries,
            };
            if !batch.messages.is_empty() {
                return Ok(batch);
            }
            self.commit_batch(&batch).await?;
        }
    }

    /// Commits every delivery of `batch` (its messages and its dead letters), once the
    /// batch's work is stored. A commit lost to a rebalance is not an error here (the
    /// partition's next owner gets the messages again; processing is idempotent).
    ///
    /// # Errors
    /// The bus's commit error.
    pub async fn commit_batch(&mut self, batch: &Batch<P>) -> Result<(), BusError> {
        match self.inner.commit_batch(&batch.deliveries).await {
            Ok(()) | Err(BusError::Rebalanced { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Commits `received` (after its work is stored).
    ///
    /// # Errors
    /// The bus's commit error.
    pub async fn commit(&mut self, received: &Received<P>) -> Result<(), BusError> {
        self.inner.commit(&received.delivery).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(check_topic("market_data.dlq").is_ok());
        assert!(check_topic("a-b_c.9").is_ok());
        assert!(check_topic("").is_err());
        assert!(check_topic("..").is_err());
        assert!(check_topic("with space").is_err());
        assert!(check_topic(&"x".repeat(250)).is_err());
    }

    #[test]
    fn dead_letters_keep_the_original_bytes() {
        let error = MessageError::EmptySymbol;
        for payload in [b"plain text".to_vec(), vec![0xff, 0x00, 0x10, 0xab]] {
            let delivery = Delivery {
                topic: "t".into(),
                partition: 2,
                offset: 7,
                key: Some("ACME".into()),
                payload: payload.clone(),
            };
            let letter = DeadLetter::new(&delivery, &error);
            assert_eq!(letter.error, "`symbol` must not be empty");
            assert_eq!(letter.payload(), payload);
            let json = serde_json::to_vec(&letter).unwrap();
            let back: DeadLetter = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, letter);
        }
        let letter = DeadLetter::new(
            &Delivery {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                key: None,
                payload: vec![0xff, 0x0a],
            },
            &error,
        );
        assert_eq!(letter.payload_hex.as_deref(), Some("ff0a"));
        assert_eq!(letter.payload_utf8, None);
    }
}
