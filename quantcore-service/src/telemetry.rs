//! Prometheus metrics: what `GET /metrics` exposes, in the text exposition format.
//!
//! [`Telemetry`] owns one [`prometheus::Registry`] per process. Its sources:
//!
//! | metric | type | source |
//! |---|---|---|
//! | `quantcore_bars_ingested_total`, `quantcore_bars_analysed_total`, `quantcore_bars_marked_total`, `quantcore_predictions_total`, `quantcore_signals_published_total`, `quantcore_signals_handled_total`, `quantcore_orders_filled_total` | counter | the roles' [`Stats`] atomics, read at scrape time |
//! | `quantcore_orders_refused_total{reason}` | counter | [`Stats::refusals`] (codes of [`crate::roles::refusal_code`]) and refused `POST /orders` |
//! | `quantcore_api_orders_filled_total` | counter | `POST /orders` fills |
//! | `quantcore_bus_published_total{topic}`, `quantcore_bus_consumed_total{topic}` | counter | [`InstrumentedBus`] |
//! | `quantcore_dead_letters_total{topic}` | counter | messages published to `<topic>.dlq`, by source topic |
//! | `quantcore_bar_to_order_seconds` | histogram | [`InstrumentedBus`]: from a bar's publication on `market_data` to the commit of the trading signal it caused (the trade role commits after the order is stored or refused); in-process only, so a trade role in another process records nothing |
//! | `quantcore_http_requests_total{method,route,status}` | counter | the API's middleware; `route` is the matched route template (`/orders/{id}`), `unmatched` for the fallback |
//! | `quantcore_http_request_duration_seconds{route}` | histogram | the same middleware |
//! | `quantcore_portfolio_value`, `quantcore_portfolio_cash` | gauge | the store, read at scrape time |
//! | `quantcore_models_trained_total` | counter | finished training runs |
//!
//! Counters start at 0 in each process; Prometheus handles restarts (`rate()` resets).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};
use serde::Deserialize;

use crate::bus::{Bus, BusError, Consumer, Delivery};
use crate::messages::topics;
use crate::roles::Stats;

/// Bars remembered per symbol for the bar-to-order latency (the oldest are forgotten).
const PENDING_BARS_PER_SYMBOL: usize = 4096;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Picks one atomic of [`Stats`].
type StatsField = fn(&Stats) -> &AtomicU64;

/// A counter mirrored from one [`Stats`] atomic.
struct Mirrored {
    counter: IntCounter,
    source: StatsField,
}

/// The process's metrics; see the [module docs](self).
pub struct Telemetry {
    registry: Registry,
    stats: Arc<Stats>,
    mirrored: Vec<Mirrored>,
    refusals: IntCounterVec,
    /// Refusals already mirrored from `stats`, by reason (the API adds its own directly).
    mirrored_refusals: Mutex<HashMap<&'static str, u64>>,
    api_orders_filled: IntCounter,
    bus_published: IntCounterVec,
    bus_consumed: IntCounterVec,
    dead_letters: IntCounterVec,
    bar_to_order: Histogram,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    portfolio_value: Gauge,
    portfolio_cash: Gauge,
    models_trained: IntCounter,
    /// When each recent bar was published, by symbol: `(bar timestamp, instant)`.
    pending_bars: Mutex<HashMap<String, VecDeque<(i64, Instant)>>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("valid metric name");
    registry
        .register(Box::new(counter.clone()))
        .expect("unique metric name");
    counter
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name");
    registry
        .register(Box::new(counter.clone()))
        .expect("unique metric name");
    counter
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    let gauge = Gauge::new(name, help).expect("valid metric name");
    registry
        .register(Box::new(gauge.clone()))
        .expect("unique metric name");
    gauge
}

/// Latency buckets from 0.5 ms to about 16 s.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")
}

impl Telemetry {
    /// Registers every metric; the pipeline counters mirror `stats`.
    pub fn new(stats: Arc<Stats>) -> Self {
        let registry = Registry::new();
        let sources: [(&str, &str, StatsField); 7] = [
            (
                "quantcore_bars_ingested_total",
                "Bars stored and published on market_data by the ingest role.",
                |s| &s.bars_ingested,
            ),
            (
                "quantcore_bars_analysed_total",
                "market_data messages handled by the ml role.",
                |s| &s.bars_analysed,
            ),
            (
                "quantcore_bars_marked_total",
                "market_data messages handled by the mark-to-market updater.",
                |s| &s.bars_marked,
            ),
            (
                "quantcore_predictions_total",
                "Predictions stored by the ml role.",
                |s| &s.predictions,
            ),
            (
                "quantcore_signals_published_total",
                "Non-HOLD signals published on trading_signals.",
                |s| &s.signals_published,
            ),
            (
                "quantcore_signals_handled_total",
                "trading_signals messages handled by the trade role.",
                |s| &s.signals_handled,
            ),
            (
                "quantcore_orders_filled_total",
                "Orders filled by the trade role.",
                |s| &s.orders_filled,
            ),
        ];
        let mirrored = sources
            .into_iter()
            .map(|(name, help, source)| Mirrored {
                counter: counter(&registry, name, help),
                source,
            })
            .collect();
        let bar_to_order = Histogram::with_opts(
            HistogramOpts::new(
                "quantcore_bar_to_order_seconds",
                "From a bar's publication on market_data to the trade role's commit of the signal it caused.",
            )
            .buckets(latency_buckets()),
        )
        .expect("valid histogram");
        registry
            .register(Box::new(bar_to_order.clone()))
            .expect("unique metric name");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "quantcore_http_request_duration_seconds",
                "HTTP request duration by route template.",
            )
            .buckets(latency_buckets()),
            &["route"],
        )
        .expect("valid histogram");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("unique metric name");
        Self {
            refusals: counter_vec(
                &registry,
                "quantcore_orders_refused_total",
                "Orders refused by the risk check or the store, by reason.",
                &["reason"],
            ),
            mirrored_refusals: Mutex::default(),
            api_orders_filled: counter(
                &registry,
                "quantcore_api_orders_filled_total",
                "Orders filled through POST /orders.",
            ),
            bus_published: counter_vec(
                &registry,
                "quantcore_bus_published_total",
                "Messages published, by topic.",
                &["topic"],
            ),
            bus_consumed: counter_vec(
                &registry,
                "quantcore_bus_consumed_total",
                "Messages received by consumers, by topic.",
                &["topic"],
            ),
            dead_letters: counter_vec(
                &registry,
                "quantcore_dead_letters_total",
                "Undecodable messages sent to <topic>.dlq, by source topic.",
                &["topic"],
            ),
            http_requests: counter_vec(
                &registry,
                "quantcore_http_requests_total",
                "HTTP requests by method, route template and status.",
                &["method", "route", "status"],
            ),
            portfolio_value: gauge(
                &registry,
                "quantcore_portfolio_value",
                "Cash plus positions at their last marks.",
            ),
            portfolio_cash: gauge(&registry, "quantcore_portfolio_cash", "Cash."),
            models_trained: counter(
                &registry,
                "quantcore_models_trained_total",
                "Finished model training runs.",
            ),
            registry,
            stats,
            mirrored,
            bar_to_order,
            http_duration,
            pending_bars: Mutex::default(),
        }
    }

    /// The roles' counters this mirrors.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Counts one HTTP request.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(seconds);
    }

    /// Counts an order refused outside the trade role (`POST /orders`).
    pub fn order_refused(&self, reason: &str) {
        self.refusals.with_label_values(&[reason]).inc();
    }

    /// Counts an order filled through `POST /orders`.
    pub fn api_order_filled(&self) {
        self.api_orders_filled.inc();
    }

    /// Counts a finished training run.
    pub fn model_trained(&self) {
        self.models_trained.inc();
    }

    /// Sets the portfolio gauges.
    pub fn set_portfolio(&self, cash: f64, value: f64) {
        self.portfolio_cash.set(cash);
        self.portfolio_value.set(value);
    }

    fn published(&self, topic: &str, payload: &[u8]) {
        self.bus_published.with_label_values(&[topic]).inc();
        if let Some(source) = topic.strip_suffix(".dlq") {
            self.dead_letters.with_label_values(&[source]).inc();
        } else if topic == topics::MARKET_DATA
            && let Ok(bar) = serde_json::from_slice::<KeyedTimestamp>(payload)
        {
            let mut pending = self.pending_bars.lock().unwrap_or_else(|e| e.into_inner());
            let queue = pending.entry(bar.payload.symbol).or_default();
            if queue.len() == PENDING_BARS_PER_SYMBOL {
                queue.pop_front();
            }
            queue.push_back((bar.payload.timestamp, Instant::now()));
        }
    }

    fn committed(&self, delivery: &Delivery) {
        if delivery.topic != topics::TRADING_SIGNALS {
            return;
        }
        let Ok(signal) = serde_json::from_slice::<KeyedTimestamp>(&delivery.payload) else {
            return;
        };
        let mut pending = self.pending_bars.lock().unwrap_or_else(|e| e.into_inner());
        let Some(queue) = pending.get_mut(&signal.payload.symbol) else {
            return;
        };
        if let Some(index) = queue
            .iter()
            .rposition(|(timestamp, _)| *timestamp == signal.payload.timestamp)
            && let Some((_, published)) = queue.remove(index)
        {
            self.bar_to_order.observe(published.elapsed().as_secs_f64());
        }
    }

    /// Brings the mirrored counters up to the [`Stats`] atomics (they only grow).
    fn sync_stats(&self) {
        // One scrape at a time: the read-then-add below must not interleave.
        let mut mirrored_refusals = self
            .mirrored_refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for mirrored in &self.mirrored {
            let now = Stats::get((mirrored.source)(&self.stats));
            let seen = mirrored.counter.get();
            if now > seen {
                mirrored.counter.inc_by(now - seen);
            }
        }
        for (reason, now) in self.stats.refusals() {
            let seen = mirrored_refusals.entry(reason).or_default();
            if now > *seen {
                self.refusals
                    .with_label_values(&[reason])
                    .inc_by(now - *seen);
                *seen = now;
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.sync_stats();
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("writing to a Vec does not fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

/// The fields of a market-data or signal envelope the latency needs.
#[derive(Deserialize)]
struct KeyedTimestamp {
    payload: SymbolTimestamp,
}

#[derive(Deserialize)]
struct SymbolTimestamp {
    symbol: String,
    timestamp: i64,
}

/// A [`Bus`] that counts what passes through it into a [`Telemetry`] and measures the
/// bar-to-order latency; everything else is the inner bus's.
pub struct InstrumentedBus {
    inner: Arc<dyn Bus>,
    telemetry: Arc<Telemetry>,
}

impl InstrumentedBus {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Bus>, telemetry: Arc<Telemetry>) -> Self {
        Self { inner, telemetry }
    }
}

#[async_trait]
impl Bus for InstrumentedBus {
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), BusError> {
        self.inner.publish(topic, key, payload).await?;
        self.telemetry.published(topic, payload);
        Ok(())
    }

    async fn publish_batch(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), BusError> {
        self.inner.publish_batch(topic, records).await?;
        for (_, payload) in records {
            self.telemetry.published(topic, payload);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let inner = self.inner.subscribe(topic, group).await?;
        Ok(Box::new(InstrumentedConsumer {
            inner,
            telemetry: self.telemetry.clone(),
        }))
    }
}

struct InstrumentedConsumer {
    inner: Box<dyn Consumer>,
    telemetry: Arc<Telemetry>,
}

#[async_trait]
impl Consumer for InstrumentedConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        let delivery = self.inner.next().await?;
        self.telemetry
            .bus_consumed
            .with_label_values(&[delivery.topic.as_str()])
            .inc();
        Ok(delivery)
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        self.inner.commit(delivery).await?;
        self.telemetry.committed(delivery);
        Ok(())
    }

    async fn next_batch(
        &mut self,
        max: usize,
        max_wait: std::time::Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let batch = self.inner.next_batch(max, max_wait).await?;
        for delivery in &batch {
            self.telemetry
                .bus_consumed
                .with_label_values(&[delivery.topic.as_str()])
                .inc();
        }
        Ok(batch)
    }

    /// Commits the batch, then measures every signal of it (not only the highest offsets).
    async fn commit_batch(&mut self, deliveries: &[Delivery]) -> Result<(), BusError> {
        self.inner.commit_batch(deliveries).await?;
        for delivery in deliveries {
            self.telemetry.committed(delivery);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_counters_follow_the_stats_once() {
        let stats = Arc::new(Stats::default());
        let telemetry = Telemetry::new(stats.clone());
        stats
            .bars_ingested
            .fetch_add(3, std::sync::atomic::Ordering::Relaxed);
        stats.record_refusal("insufficient_cash");
        let text = telemetry.render();
        assert!(text.contains("quantcore_bars_ingested_total 3\n"), "{text}");
        assert!(
            text.contains("quantcore_orders_refused_total{reason=\"insufficient_cash\"} 1\n"),
            "{text}"
        );
        // A second scrape adds nothing new.
        stats.record_refusal("insufficient_cash");
        let text = telemetry.render();
        assert!(text.contains("quantcore_bars_ingested_total 3\n"));
        assert!(text.contains("quantcore_orders_refused_total{reason=\"insufficient_cash\"} 2\n"));
    }
}
