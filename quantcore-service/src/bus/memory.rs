//! The in-process bus: Kafka's model in memory, for the embedded default and tests.
//!
//! - Each topic has a fixed number of partitions, each an append-only log with offsets.
//!   Topics are created on first use (as Kafka's auto-create does).
//! - The partition of a message is `fnv1a_32(key) % partitions` (FNV-1a: small, stable
//!   across runs and platforms; Kafka clients use their own hash, which only changes which
//!   partition a symbol lands in, not the guarantees).
//! - A consumer group keeps its committed offset per partition. Its members split the
//!   partitions: member `i` of `n` (in join order) reads partitions `p` with `p % n == i`.
//!   A join or leave is a rebalance: every member restarts its partitions at the committed
//!   offsets, so uncommitted messages are delivered again, as on Kafka.
//! - A new group starts at the earliest retained message.
//! - Retention is by size, as Kafka's `retention.bytes`: a partition keeps at most
//!   `retention` records, the oldest go first, whatever the groups committed (a group that
//!   joins later still reads what is retained). A consumer that falls behind the retained
//!   records skips to the oldest one left. So a long embedded run does not grow without bound.
//!
//! Waiting uses a `tokio::sync::watch` channel whose counter moves on every publish, commit
//! and rebalance.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Bus, BusError, Consumer, Delivery, check_topic};

/// Records kept per partition at most, by default.
const DEFAULT_RETENTION: usize = 10_000;

/// The in-process [`Bus`]; cheap to clone (clones share the topics).
#[derive(Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    partitions: usize,
    retention: usize,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Vec<PartitionLog>>,
    /// Keyed by (group, topic).
    groups: HashMap<(String, String), Group>,
    next_member: u64,
}

#[derive(Default)]
struct PartitionLog {
    /// Offset of `records[0]`.
    base_offset: i64,
    records: VecDeque<Record>,
}

impl PartitionLog {
    fn end_offset(&self) -> i64 {
        self.base_offset + self.records.len() as i64
    }
}

struct Record {
    key: String,
    payload: Arc<[u8]>,
}

#[derive(Default)]
struct Group {
    /// Member ids in join order.
    members: Vec<u64>,
    generation: u64,
    committed: HashMap<usize, i64>,
}

/// FNV-1a, 32 bits.
fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

impl MemoryBus {
    /// Creates a bus whose topics have `partitions` partitions (at least 1).
    pub fn new(partitions: usize) -> Self {
        Self::with_retention(partitions, DEFAULT_RETENTION)
    }

    /// Creates a bus keeping at most `retention` records per partition (at least 1).
    pub fn with_retention(partitions: usize, retention: usize) -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed,
                partitions: partitions.max(1),
                retention: retention.max(1),
            }),
        }
    }

    /// Returns the partition `key` goes to.
    pub fn partition_of(&self, key: &str) -> usize {
        fnv1a_32(key.as_bytes()) as usize % self.shared.partitions
    }

    /// Returns the number of records retained in `topic` (all partitions).
    pub fn retained(&self, topic: &str) -> usize {
        self.shared
            .lock()
            .topics
            .get(topic)
            .map_or(0, |logs| logs.iter().map(|log| log.records.len()).sum())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind (no invariant spans an
        // await or a user callback), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|version| *version += 1);
    }

    fn topic<'a>(&self, state: &'a mut State, topic: &str) -> &'a mut Vec<PartitionLog> {
        state.topics.entry(topic.to_owned()).or_insert_with(|| {
            (0..self.partitions)
                .map(|_| PartitionLog::default())
                .collect()
        })
    }

    /// Drops the oldest records of `partition` beyond the retention limit.
    fn trim(&self, state: &mut State, topic: &str, partition: usize) {
        let Some(log) = state
            .topics
            .get_mut(topic)
            .and_then(|logs| logs.get_mut(partition))
        else {
            return;
        };
        while log.records.len() > self.retention {
            log.records.pop_front();
            log.base_offset += 1;
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), BusError> {
        check_topic(topic)?;
        let partition = self.partition_of(key);
        {
            let mut state = self.shared.lock();
            self.shared.topic(&mut state, topic)[partition]
                .records
                .push_back(Record {
                    key: key.to_owned(),
                    payload: Arc::from(payload),
                });
            self.shared.trim(&mut state, topic, partition);
        }
        self.shared.notify();
        Ok(())
    }

    async fn publish_batch(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), BusError> {
        check_topic(topic)?;
        {
            let mut state = self.shared.lock();
            for (key, payload) in records {
                let partition = self.partition_of(key);
                self.shared.topic(&mut state, topic)[partition]
                    .records
                    .push_back(Record {
                        key: key.clone(),
                        payload: Arc::from(payload.as_slice()),
                    });
                self.shared.trim(&mut state, topic, partition);
            }
        }
        self.shared.notify();
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        check_topic(topic)?;
        let member = {
            let mut state = self.shared.lock();
            self.shared.topic(&mut state, topic);
            let member = state.next_member;
            state.next_member += 1;
            let entry = state
                .groups
                .entry((group.to_owned(), topic.to_owned()))
                .or_default();
            entry.members.push(member);
            entry.generation += 1;
            member
        };
        self.shared.notify();
        Ok(Box::new(MemoryConsumer {
            shared: self.shared.clone(),
            changed: self.shared.changed.subscribe(),
            group: group.to_owned(),
            topic: topic.to_owned(),
            member,
            generation: 0,
            positions: Vec::new(),
            cursor: 0,
        }))
    }
}

struct MemoryConsumer {
    shared: Arc<Shared>,
    changed: watch::Receiver<u64>,
    group: String,
    topic: String,
    member: u64,
    /// The group generation `positions` belongs to.
    generation: u64,
    /// Assigned partitions and the next offset to read in each.
    positions: Vec<(usize, i64)>,
    /// Round-robin start among `positions`, so one busy partition cannot starve the others.
    cursor: usize,
}

impl MemoryConsumer {
    /// Takes the next record of the assigned partitions, rebalancing first when the group
    /// changed.
    fn poll(&mut self) -> Option<Delivery> {
        let mut state = self.shared.lock();
        let State { topics, groups, .. } = &mut *state;
        let group = groups.get(&(self.group.clone(), self.topic.clone()))?;
        if group.generation != self.generation {
            let index = group.members.iter().position(|&m| m == self.member)?;
            let members = group.members.len();
            self.positions = (0..self.shared.partitions)
                .filter(|partition| partition % members == index)
                .map(|partition| {
                    (
                        partition,
                        group.committed.get(&partition).copied().unwrap_or(0),
                    )
                })
                .collect();
            self.generation = group.generation;
            self.cursor = 0;
        }
        let logs = topics.get(&self.topic)?;
        let assigned = self.positions.len();
        for step in 0..assigned {
            let slot = (self.cursor + step) % assigned;
            let (partition, next) = &mut self.positions[slot];
            let log = &logs[*partition];
            // Records below the base were dropped by retention: skip ahead, as Kafka's
            // auto.offset.reset=earliest does.
            *next = (*next).max(log.base_offset);
            if *next < log.end_offset() {
                let record = &log.records[(*next - log.base_offset) as usize];
                let delivery = Delivery {
                    topic: self.topic.clone(),
                    partition: *partition as i32,
                    offset: *next,
                    key: Some(record.key.clone()),
                    payload: record.payload.to_vec(),
                };
                *next += 1;
                self.cursor = (slot + 1) % assigned;
                return Some(delivery);
            }
        }
        None
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            // Mark the current version seen before looking, so a publish between the look
            // and the wait still wakes us.
            self.changed.borrow_and_update();
            if let Some(delivery) = self.poll() {
                return Ok(delivery);
            }
            self.changed.changed().await.map_err(|_| BusError::Closed)?;
        }
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        let rebalanced = || BusError::Rebalanced {
            topic: delivery.topic.clone(),
            partition: delivery.partition,
            offset: delivery.offset,
        };
        let partition = usize::try_from(delivery.partition).map_err(|_| rebalanced())?;
        let mut state = self.shared.lock();
        let group = state
            .groups
            .get_mut(&(self.group.clone(), delivery.topic.clone()))
            .ok_or_else(rebalanced)?;
        // As on Kafka, only the partition's current owner may commit.
        let owner = group
            .members
            .iter()
            .position(|&member| member == self.member)
            .is_some_and(|index| partition % group.members.len() == index);
        if delivery.topic != self.topic || !owner {
            return Err(rebalanced());
        }
        group.committed.insert(partition, delivery.offset + 1);
        Ok(())
    }
}

impl Drop for MemoryConsumer {
    /// Leaves the group: the others take over this member's partitions from the committed
    /// offsets.
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            if let Some(group) = state
                .groups
                .get_mut(&(self.group.clone(), self.topic.clone()))
            {
                group.members.retain(|&member| member != self.member);
                group.generation += 1;
            }
        }
        self.shared.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference (http://www.isthe.com/chongo/tech/comp/fnv/): "" and "a".
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }

    #[tokio::test]
    async fn members_of_a_group_split_the_keys() {
        let bus = MemoryBus::new(8);
        let mut a = bus.subscribe("t", "g").await.unwrap();
        let mut b = bus.subscribe("t", "g").await.unwrap();
        let symbols: Vec<String> = (0..20).map(|i| format!("SYM{i}")).collect();
        for symbol in &symbols {
            for n in 0..3 {
                bus.publish("t", symbol, format!("{symbol}-{n}").as_bytes())
                    .await
                    .unwrap();
            }
        }
        let mut seen = [HashSet::new(), HashSet::new()];
        for _ in 0..60 {
            tokio::select! {
                Ok(d) = a.next() => { seen[0].insert(d.key.unwrap()); }
                Ok(d) = b.next() => { seen[1].insert(d.key.unwrap()); }
            }
        }
        assert!(seen[0].is_disjoint(&seen[1]), "a key went to both members");
        assert_eq!(seen[0].len() + seen[1].len(), 20);
        assert!(!seen[0].is_empty() && !seen[1].is_empty());
        // The split follows the partition rule: member 0 has the even partitions of 8.
        for key in &seen[0] {
            assert_eq!(bus.partition_of(key) % 2, 0, "{key}");
        }
    }

    #[tokio::test]
    async fn retention_keeps_the_newest_records() {
        let bus = MemoryBus::with_retention(1, 5);
        let mut consumer = bus.subscribe("t", "g").await.unwrap();
        for n in 0..4 {
            bus.publish("t", "k", &[n]).await.unwrap();
        }
        let first = consumer.next().await.unwrap();
        let second = consumer.next().await.unwrap();
        consumer.commit(&second).await.unwrap();
        assert_eq!((first.offset, second.offset), (0, 1));
        assert_eq!(bus.retained("t"), 4, "commits do not drop records");
        for n in 4..10 {
            bus.publish("t", "k", &[n]).await.unwrap();
        }
        assert_eq!(bus.retained("t"), 5, "capped at the retention");
        // The consumer skips the dropped records (2..=4) and resumes at the oldest left.
        let next = consumer.next().await.unwrap();
        assert_eq!(next.offset, 5);
        assert_eq!(next.payload, vec![5]);
        // A group joining later reads everything retained.
        let mut late = bus.subscribe("t", "late").await.unwrap();
        assert_eq!(late.next().await.unwrap().offset, 5);
    }

    #[tokio::test]
    async fn only_the_owner_of_a_partition_commits() {
        let bus = MemoryBus::new(2);
        let mut first = bus.subscribe("t", "g").await.unwrap();
        let key = (0..100)
            .map(|i| format!("K{i}"))
            .find(|key| bus.partition_of(key) == 1)
            .unwrap();
        bus.publish("t", &key, b"m").await.unwrap();
        let delivery = first.next().await.unwrap();
        assert_eq!(delivery.partition, 1);
        // A second member takes partition 1 before the first commits.
        let mut second = bus.subscribe("t", "g").await.unwrap();
        assert!(matches!(
            first.commit(&delivery).await,
            Err(BusError::Rebalanced {
                partition: 1,
                offset: 0,
                ..
            })
        ));
        // The new owner gets the message again and may commit it.
        let again = second.next().await.unwrap();
        assert_eq!(again, delivery);
        second.commit(&again).await.unwrap();
    }

    #[tokio::test]
    async fn next_waits_for_a_publish() {
        let bus = MemoryBus::new(2);
        let mut consumer = bus.subscribe("t", "g").await.unwrap();
        let publisher = bus.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            publisher.publish("t", "k", b"late").await.unwrap();
        });
        let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await
            .expect("woken by the publish")
            .unwrap();
        assert_eq!(delivery.payload, b"late");
        task.await.unwrap();
    }

    #[tokio::test]
    async fn rejects_names_kafka_would_refuse() {
        let bus = MemoryBus::new(1);
        assert!(matches!(
            bus.publish("bad topic", "k", b"x").await,
            Err(BusError::InvalidTopic { .. })
        ));
    }
}
