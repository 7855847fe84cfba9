//! The Kafka bus, on librdkafka (rdkafka).
//!
//! # Producer
//! `acks=all` and `enable.idempotence=true`: a publish returns once every in-sync replica has
//! the message, and librdkafka's retries (transient broker errors, lost connections) never
//! write it twice or out of order. Retries go on, with `retry.backoff.ms` between them, until
//! `message.timeout.ms` ([`KafkaSettings::delivery_timeout`]) runs out; then the publish fails.
//! Messages are keyed by symbol, so librdkafka's partitioner keeps each symbol in one
//! partition.
//!
//! # Consumers
//! One librdkafka consumer per [`Bus::subscribe`], in the given group, with
//! `enable.auto.commit=false`: offsets are committed only by [`Consumer::commit`], synchronously,
//! after the caller stored its work. `auto.offset.reset=earliest`: a new group reads the topic
//! from its start. Dropping a consumer leaves the group, and the remaining members take over
//! its partitions from the committed offsets.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::{Bus, BusError, Consumer, Delivery, check_topic};

/// Connection and tuning settings of a [`KafkaBus`].
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// `client.id` of the producer and consumers. Default `quantcore-service`.
    pub client_id: String,
    /// `message.timeout.ms`: how long a publish may retry before it fails. Default 30 s.
    pub delivery_timeout: Duration,
    /// `session.timeout.ms`: how soon a silent consumer loses its partitions (heartbeats go
    /// every third of it). Default 10 s.
    pub session_timeout: Duration,
    /// Extra librdkafka properties, applied last (to producer and consumers).
    pub extra: Vec<(String, String)>,
}

impl KafkaSettings {
    /// Settings with the defaults for `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            client_id: "quantcore-service".into(),
            delivery_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(10),
            extra: Vec::new(),
        }
    }

    /// Adds one librdkafka property.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        config
    }

    fn apply_extra(&self, config: &mut ClientConfig) {
        for (key, value) in &self.extra {
            config.set(key, value);
        }
    }

    fn producer_config(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // Retry without a count limit: message.timeout.ms bounds the time instead.
            .set("retries", "2147483647")
            .set("retry.backoff.ms", "100")
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().to_string(),
            );
        self.apply_extra(&mut config);
        config
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // How long the broker may hold a fetch that finds no new message. Apache
            // Kafka answers as soon as one arrives (`fetch.min.bytes` 1), so this only sets
            // how often an idle consumer asks again; brokers that hold every fetch for the
            // whole wait (librdkafka's mock cluster, tansu) add it to each hop otherwise:
            // librdkafka's 500 ms made a bar's way to its order about 1 s on tansu.
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
            .set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            )
            // Kafka's rule of thumb: heartbeats at most a third of the session timeout.
            .set(
                "heartbeat.interval.ms",
                (self.session_timeout.as_millis() / 3).max(100).to_string(),
            );
        self.apply_extra(&mut config);
        config
    }
}

/// The consumers' `fetch.wait.max.ms` (see `consumer_config`); a `with` property
/// overrides it.
const FETCH_WAIT_MAX_MS: &str = "10";

/// The Kafka [`Bus`].
pub struct KafkaBus {
    settings: KafkaSettings,
    producer: FutureProducer,
}

fn kafka(operation: &'static str) -> impl FnOnce(KafkaError) -> BusError {
    move |source| BusError::Kafka { operation, source }
}

impl KafkaBus {
    /// Creates the producer (connections are made lazily, on first use).
    ///
    /// # Errors
    /// An invalid librdkafka property.
    pub fn new(settings: KafkaSettings) -> Result<Self, BusError> {
        let producer = settings
            .producer_config()
            .create()
            .map_err(kafka("create producer"))?;
        Ok(Self { settings, producer })
    }

    /// Returns the settings.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    /// Creates the topics that do not exist yet (Kafka admin API; existing ones are left
    /// as they are).
    ///
    /// # Errors
    /// A broker error other than "topic already exists".
    pub async fn ensure_topics(
        &self,
        topics: &[&str],
        partitions: i32,
        replication: i32,
    ) -> Result<(), BusError> {
        for topic in topics {
            check_topic(topic)?;
        }
        let admin: AdminClient<DefaultClientContext> = self
            .settings
            .base()
            .create()
            .map_err(kafka("create admin client"))?;
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|topic| NewTopic::new(topic, partitions, TopicReplication::Fixed(replication)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(kafka("create topics"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(BusError::Kafka {
                        operation: "create topics",
                        source: KafkaError::AdminOp(code),
                    });
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), BusError> {
        check_topic(topic)?;
        let record = FutureRecord::to(topic).key(key).payload(payload);
        self.producer
            .send(record, Timeout::After(self.settings.delivery_timeout))
            .await
            .map(|_| ())
            .map_err(|(source, _message)| BusError::Kafka {
                operation: "publish",
                source,
            })
    }

    /// Enqueues every record, then awaits the acknowledgements (a full local queue first
    /// drains what is in flight).
    async fn publish_batch(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), BusError> {
        check_topic(topic)?;
        let failed = |source| BusError::Kafka {
            operation: "publish",
            source,
        };
        let mut pending = Vec::with_capacity(records.len());
        for (key, payload) in records {
            let record = FutureRecord::to(topic)
                .key(key.as_str())
                .payload(payload.as_slice());
            match self.producer.send_result(record) {
                Ok(delivery) => pending.push(delivery),
                Err((_, record)) => {
                    for delivery in pending.drain(..) {
                        acknowledged(delivery).await.map_err(failed)?;
                    }
                    self.producer
                        .send(record, Timeout::After(self.settings.delivery_timeout))
                        .await
                        .map_err(|(source, _message)| failed(source))?;
                }
            }
        }
        for delivery in pending {
            acknowledged(delivery).await.map_err(failed)?;
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        check_topic(topic)?;
        let consumer: StreamConsumer = self
            .settings
            .consumer_config(group)
            .create()
            .map_err(kafka("create consumer"))?;
        consumer.subscribe(&[topic]).map_err(kafka("subscribe"))?;
        Ok(Box::new(KafkaConsumer {
            consumer: Arc::new(consumer),
        }))
    }
}

/// Waits for the broker's answer to one enqueued record.
async fn acknowledged(delivery: rdkafka::producer::DeliveryFuture) -> Result<(), KafkaError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _message))) => Err(error),
        // The producer was dropped before answering.
        Err(_canceled) => Err(KafkaError::Canceled),
    }
}

struct KafkaConsumer {
    consumer: Arc<StreamConsumer>,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            match self.consumer.recv().await {
                Ok(message) => {
                    return Ok(Delivery {
                        topic: message.topic().to_owned(),
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message
                            .key()
                            .map(|key| String::from_utf8_lossy(key).into_owned()),
                        payload: message.payload().unwrap_or_default().to_vec(),
                    });
                }
                // Per-partition consumption errors (a topic not created yet, a leader
                // moving) are transient: librdkafka keeps fetching; so do we.
                Err(KafkaError::MessageConsumption(code)) => {
                    tracing::warn!(error = %code, "kafka consumption error, retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(source) => {
                    return Err(BusError::Kafka {
                        operation: "receive",
                        source,
                    });
                }
            }
        }
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        self.commit_batch(std::slice::from_ref(delivery)).await
    }

    /// One synchronous commit of every partition's highest offset in `deliveries`.
    async fn commit_batch(&mut self, deliveries: &[Delivery]) -> Result<(), BusError> {
        let highest = super::highest_per_partition(deliveries);
        let Some(&delivery) = highest.first() else {
            return Ok(());
        };
        let delivery = delivery.clone();
        let mut offsets = TopicPartitionList::new();
        for d in highest {
            offsets
                .add_partition_offset(&d.topic, d.partition, Offset::Offset(d.offset + 1))
                .map_err(kafka("commit"))?;
        }
        let consumer = self.consumer.clone();
        // A synchronous commit blocks until the coordinator answers: off the async threads.
        let result =
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
                .await
                .map_err(|_| BusError::Closed)?;
        match result {
            Ok(()) => Ok(()),
            Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId,
            )) => Err(BusError::Rebalanced {
                topic: delivery.topic.clone(),
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err(source) => Err(BusError::Kafka {
                operation: "commit",
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_is_idempotent_and_waits_for_all_replicas() {
        let settings = KafkaSettings::new("a:9092,b:9092").with("linger.ms", "2");
        let config = settings.producer_config();
        assert_eq!(config.get("bootstrap.servers"), Some("a:9092,b:9092"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("message.timeout.ms"), Some("30000"));
        assert_eq!(config.get("linger.ms"), Some("2"), "extra properties apply");
        // librdkafka accepts the combination.
        KafkaBus::new(settings).unwrap();
    }

    #[test]
    fn consumers_commit_by_hand() {
        let settings = KafkaSettings {
            session_timeout: Duration::from_secs(9),
            ..KafkaSettings::new("a:9092")
        };
        let config = settings.consumer_config("quantcore-trade");
        assert_eq!(config.get("group.id"), Some("quantcore-trade"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(config.get("session.timeout.ms"), Some("9000"));
        assert_eq!(config.get("heartbeat.interval.ms"), Some("3000"));
        assert_eq!(config.get("fetch.wait.max.ms"), Some("10"));
        let slower = KafkaSettings::new("a:9092").with("fetch.wait.max.ms", "250");
        assert_eq!(
            slower.consumer_config("g").get("fetch.wait.max.ms"),
            Some("250"),
            "a property given overrides the default"
        );
    }
}
