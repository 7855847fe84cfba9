//! The service's roles — ingest (replay), ml, mark and trade — as async functions that run
//! as tokio tasks of one process (`run`) or alone (one subcommand each).
//!
//! Every role is wiring: the decisions are the core's.
//!
//! | role | consumes | does | produces |
//! |---|---|---|---|
//! | [`replay_symbol`] | bundled or CSV bars | upserts each bar, paced by `replay_interval_ms` | `market_data` |
//! | [`ml_role`] | `market_data` | last `window` bars from the store, predicts the next close, [`quantcore::signal::SignalGenerator`], anomaly score | predictions, signals and scores in the store, non-HOLD signals on `trading_signals`, flagged bars on `anomalies` |
//! | [`mark_role`] | `market_data` | closes the position when the bar reaches its stop-loss or take-profit ([`quantcore::risk::exit_on_bar`], through [`execute_order`]), then marks it at the bar's close (the trigger writes a portfolio snapshot) | orders, trades, positions, cash |
//! | [`trade_role`] | `trading_signals` | sizes ([`quantcore::order::Sizing`]), risk-checks ([`quantcore::risk::check_risk_limits`]), fills ([`quantcore::execution::ExecutionModel::fill_market`]) and books ([`quantcore::portfolio::Portfolio::apply_fill`]) through [`Store::execute_fill`] | orders, trades, positions, cash |
//!
//! # Prediction
//! With a trained model in `model_dir/<SYMBOL>/` (written by
//! [`quantcore::ml::lstm::LstmPredictor::save`]) the ml role predicts with the LSTM. Without
//! one it uses the documented fallback, a **moving-average trend forecast**: with `c` the
//! last close and `m` the simple moving average of the window's closes
//! ([`quantcore::features::Sma`]), the next close is predicted at `c + (c - m) / h`,
//! `h = (window - 1) / 2` being the age in bars of the average's centre: the trend from the
//! average's centre to now, continued one bar. The model name stored with each prediction
//! says which was used (`lstm` or `sma-trend`). The model file is looked at again every
//! 2 seconds at most, so a model trained while the role runs (`POST /models/{symbol}/train`)
//! is picked up without a restart.
//!
//! The volatility handed to the signal generator is the sample standard deviation of the
//! window's one-bar simple returns ([`quantcore::features::RollingVolatility`]).
//!
//! # Anomalies
//! Each bar is also scored by an Isolation Forest ([`quantcore::ml::iforest`]) fitted on the
//! anomaly features ([`quantcore::features::anomaly`], 10-bar z-score window) of the last
//! [`MlSettings::anomaly_history`] bars: 50 trees of up to 64 rows, a fixed seed, flagged
//! when the score is above the 98th percentile of the fitted history's scores
//! (contamination 0.02: on a short history the paper's 0.5 flags ordinary bars). The score
//! is stored with the prediction; flagged bars are published on `anomalies`. A history of 0
//! turns scoring off.
//!
//! The ml role does not fit a forest for every bar: it keeps one per symbol and fits it
//! again, on the history ending at the bar being scored, every
//! [`ANOMALY_REFIT_EVERY`] = 20 bars (and on its first bar after a start); the bars
//! between are scored against it. Why 20: fitting (50 trees) costs far more than scoring one
//! row, and a fit on every bar bounded the whole pipeline (about 600 bars/s); with the
//! default 120-bar history, 20 bars is a sixth of the window, so the forest's sample of
//! "normal" is at most 20 bars older than a fresh one and the bar being scored is usually
//! not in the sample it is judged against (as in the paper's train-then-score use). A score
//! therefore depends on where the last refit fell (after a restart, on the first bar
//! seen), not only on the bar's history; [`anomaly_score`] is the fit-on-the-spot score
//! of one bar. A bar scored against a kept forest needs only its own row of features:
//! those are computed from a tail of the history (from the last point, at or before the
//! row's z-score windows, where the core recomputes its rolling moments exactly), which
//! gives the same row, bit for bit, as the whole history does.
//!
//! # Batches
//! The ml role takes the messages already received, up to 256
//! ([`MessageConsumer::next_batch`], never waiting for more), reads each symbol's bars once
//! for the whole batch, stores every prediction, signal, score and idempotency marker in one
//! transaction ([`Store::record_analyses`]), publishes the signals and anomalies in one batch
//! each, and commits the highest offset of each partition only then. The analyses
//! themselves (predictions, signals, anomaly forests) are CPU work without a wait: on a
//! multi-thread runtime they run through [`tokio::task::block_in_place`], so the other
//! roles' tasks (the trade role's may hold the store's write lock) go on meanwhile
//! instead of waiting behind a batch's forests. The trade role takes
//! batches the same way and commits after every signal of the batch is stored. Batches
//! only form under load: a lone bar is a batch of one.
//!
//! # Trading
//! A BUY is sized with `Sizing::Confidence { max_fraction }` on the portfolio's equity (cash
//! plus positions at their last marks); a SELL closes the long position (short selling is
//! off by default). The portfolio is rebuilt from the store for sizing and the risk check:
//! once per batch (received together; again for a symbol it lacks or after a fill the
//! store reports as a duplicate): the signals of the batch that lead to no order or
//! to a refusal before the store leave it as it was, and a fill changes it as the store
//! booked it (the cash after and the position, marked at the fill price, that the fill's
//! transaction wrote), so the next signal of the batch reuses it without reading the store
//! again (marks written meanwhile by the position updater are at most one batch old);
//! inside the fill's transaction the store hands the locked cash and position to a
//! [`FillPlan`] that checks again and books the fill with the core's `Portfolio::apply_fill`.
//! Every signal is processed once: the idempotency marker is written in the fill's own
//! transaction (or, when no order results or the core's risk check refuses the order, with
//! the other such markers of its batch in one transaction before the batch is committed; a
//! refusal is counted once that marker shows it is not a redelivered signal's).
//!
//! # Stop-loss and take-profit
//! A BUY signal's `stop_loss` and `take_profit` go with its order
//! ([`execute_order_with_exits`]) and are stored on the position it opens or increases, in
//! the fill's transaction; a fill that closes the position clears them. The position
//! updater ([`mark_role`]) checks every bar against them with the core's
//! [`quantcore::risk::exit_on_bar`] and sells through [`execute_order`] at the trigger
//! price, the bar's message id being the idempotency key.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use quantcore::Bar;
use quantcore::execution::ExecutionModel;
use quantcore::order::{Instrument, Order, Sizing, SizingInput};
use quantcore::portfolio::{Portfolio, Position};
use quantcore::risk::{ExitReason, RiskLimits, check_risk_limits, exit_on_bar};
use quantcore::signal::{Action, SignalConfig, SignalGenerator};
use uuid::Uuid;

use crate::bus::{self, Bus, BusError, MessageConsumer};
use crate::messages::{
    AnomalyMessage, Envelope, MarketDataMessage, SignalAction, SignalMessage, topics,
};
use crate::store::{
    Analysis, ExitLevels, FillEffects, FillOutcome, FillPlan, FillRequest, LockedState, OrderKind,
    OrderRequest, PositionState, Prediction, ProcessedKey, Side, Store, StoreError,
};

/// Consumer group names (one per role).
pub mod groups {
    /// The ml role.
    pub const ML: &str = "ml";
    /// The mark-to-market updater.
    pub const MARK: &str = "mark";
    /// The trade role.
    pub const TRADE: &str = "trade";
}

/// Why a role stopped or a unit of work failed.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A core rule refused its input.
    #[error(transparent)]
    Core(#[from] quantcore::Error),
}

/// Counters of the pipeline, shared by the roles (for logs, tests and `GET /metrics`).
#[derive(Debug, Default)]
pub struct Stats {
    pub bars_ingested: AtomicU64,
    /// Polls of a live source that failed (see [`crate::sources`]).
    pub fetches_failed: AtomicU64,
    pub bars_analysed: AtomicU64,
    pub bars_marked: AtomicU64,
    pub signals_published: AtomicU64,
    pub signals_handled: AtomicU64,
    pub orders_filled: AtomicU64,
    pub orders_refused: AtomicU64,
    /// Predictions stored by the ml role (bars past the warm-up).
    pub predictions: AtomicU64,
    /// Refused orders by reason code ([`refusal_code`]); their sum is `orders_refused`.
    refusals: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Stats {
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a refused order under `reason` (and in `orders_refused`).
    pub fn record_refusal(&self, reason: &'static str) {
        Self::bump(&self.orders_refused);
        let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        *refusals.entry(reason).or_default() += 1;
    }

    /// Refused orders by reason code.
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        let refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        refusals.iter().map(|(reason, n)| (*reason, *n)).collect()
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Settings of the ml role.
#[derive(Debug, Clone)]
pub struct MlSettings {
    /// Bars per prediction window, `>= 3`.
    pub window: usize,
    /// Folder of trained models (`<dir>/<SYMBOL>/`).
    pub model_dir: PathBuf,
    /// The signal rules.
    pub signal: SignalConfig,
    /// Consumer group (also the idempotency consumer name). Default [`groups::ML`].
    pub group: String,
    /// Bars the anomaly detector is fitted on (0: no anomaly scoring). Default 120.
    pub anomaly_history: usize,
}

impl Default for MlSettings {
    fn default() -> Self {
        Self {
            window: 30,
            model_dir: PathBuf::from("./data/models"),
            signal: SignalConfig::default(),
            group: groups::ML.to_owned(),
            anomaly_history: 120,
        }
    }
}

/// Settings of the trade role.
#[derive(Debug, Clone)]
pub struct TradeSettings {
    /// Cash of a new account.
    pub initial_cash: f64,
    /// How BUY orders are sized.
    pub sizing: Sizing,
    /// The risk limits.
    pub limits: RiskLimits,
    /// Commission and slippage.
    pub execution: ExecutionModel,
    /// Consumer group (also the idempotency consumer name). Default [`groups::TRADE`].
    pub group: String,
}

impl Default for TradeSettings {
    /// 100,000 cash; at most 20 % of equity per order scaled by confidence; at most 30 % of
    /// equity in one position; 0.1 % commission and 5 bps slippage (as the signal rules).
    fn default() -> Self {
        let mut execution = ExecutionModel::default();
        execution.commission.rate = 0.001;
        execution.slippage_bps = 5.0;
        Self {
            initial_cash: 100_000.0,
            sizing: Sizing::Confidence { max_fraction: 0.2 },
            limits: RiskLimits {
                max_position_fraction: 0.3,
                ..RiskLimits::default()
            },
            execution,
            group: groups::TRADE.to_owned(),
        }
    }
}

fn at(timestamp: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(timestamp, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Replays `bars` of `symbol`: upserts each into the store and publishes it on
/// `market_data`, pausing `interval` between bars. Returns the number of bars replayed.
///
/// # Errors
/// The first store or bus error.
pub async fn replay_symbol(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    symbol: String,
    bars: Vec<Bar>,
    interval: Duration,
    stats: Arc<Stats>,
) -> Result<u64, RoleError> {
    let mut count = 0;
    // Unpaced, bars go in chunks (one upsert and one batch publish each); paced, one by one.
    let chunk = if interval.is_zero() { INGEST_CHUNK } else { 1 };
    for bars in bars.chunks(chunk) {
        ingest_bars(store.as_ref(), bus.as_ref(), &symbol, bars, &stats).await?;
        count += bars.len() as u64;
        if !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
    }
    tracing::info!(%symbol, bars = count, "replay finished");
    Ok(count)
}

/// Bars per store write and batch publish of an unpaced replay.
pub const INGEST_CHUNK: usize = 256;

/// Stores `bars` of `symbol` in one upsert (retrying transient errors), then publishes them
/// on `market_data` in one batch, in order: every bar is stored before it is published.
/// Returns when the publish returned.
///
/// # Errors
/// A store error, an invalid bar ([`BusError::Encode`]) or a bus error.
pub async fn ingest_bars(
    store: &dyn Store,
    bus: &dyn Bus,
    symbol: &str,
    bars: &[Bar],
    stats: &Stats,
) -> Result<DateTime<Utc>, RoleError> {
    if bars.is_empty() {
        return Ok(Utc::now());
    }
    retry_transient("ingest: store bars", || store.upsert_bars(symbol, bars)).await?;
    let mut records = Vec::with_capacity(bars.len());
    for bar in bars {
        let message = Envelope::new(MarketDataMessage::from_bar(symbol.to_owned(), bar));
        let bytes = message.to_json().map_err(|source| BusError::Encode {
            topic: topics::MARKET_DATA.to_owned(),
            source,
        })?;
        records.push((message.key, bytes));
    }
    bus.publish_batch(topics::MARKET_DATA, &records).await?;
    let published = Utc::now();
    let before = stats
        .bars_ingested
        .fetch_add(bars.len() as u64, Ordering::Relaxed);
    let total = before + bars.len() as u64;
    let last = bars.last().expect("not empty");
    if before / 50 != total / 50 || before == 0 {
        tracing::info!(%symbol, timestamp = last.timestamp, close = last.close, bars = bars.len(), total, "bars ingested");
    } else {
        tracing::debug!(%symbol, timestamp = last.timestamp, close = last.close, bars = bars.len(), "bars ingested");
    }
    Ok(published)
}

/// The moving-average trend forecast of the [module docs](self#prediction), or `None` with
/// fewer than 3 closes.
///
/// ```
/// // closes 1..=5: mean 3, centre 2 bars back; trend (5 - 3) / 2 = 1 per bar -> 6.
/// assert_eq!(quantcore_service::roles::sma_trend_forecast(&[1.0, 2.0, 3.0, 4.0, 5.0]), Some(6.0));
/// ```
pub fn sma_trend_forecast(closes: &[f64]) -> Option<f64> {
    let n = closes.len();
    if n < 3 {
        return None;
    }
    let mut sma = quantcore::features::Sma::new(n).ok()?;
    let mut mean = None;
    for &close in closes {
        mean = sma.update(close);
    }
    let last = *closes.last()?;
    let horizon = (n as f64 - 1.0) / 2.0;
    Some(last + (last - mean?) / horizon)
}

/// Sample standard deviation of the one-bar simple returns of `closes`, or `None` with
/// fewer than 3 closes.
pub fn return_volatility(closes: &[f64]) -> Option<f64> {
    if closes.len() < 3 {
        return None;
    }
    let mut volatility = quantcore::features::RollingVolatility::new(closes.len() - 1).ok()?;
    let mut value = None;
    for &close in closes {
        value = volatility.update(close);
    }
    value
}

/// How often the ml role looks again at a symbol's model file (a model trained meanwhile is
/// picked up, a replaced one reloaded).
const MODEL_RECHECK: Duration = Duration::from_secs(2);

/// Loaded LSTM models by symbol (`None`: looked, none there), with the modification time of
/// the `model.json` they were read from and when that was last checked.
#[derive(Default)]
struct Models {
    dir: PathBuf,
    loaded: HashMap<String, LoadedModel>,
}

struct LoadedModel {
    model: Option<quantcore::ml::lstm::LstmPredictor>,
    modified: Option<std::time::SystemTime>,
    checked: std::time::Instant,
}

impl Models {
    /// The LSTM prediction for `bars` of `symbol`, when a model exists and predicts.
    fn predict(&mut self, symbol: &str, bars: &[Bar]) -> Option<f64> {
        let path = self.dir.join(symbol);
        let modified = || {
            std::fs::metadata(path.join(quantcore::ml::lstm::METADATA_FILE))
                .and_then(|m| m.modified())
                .ok()
        };
        let stale = match self.loaded.get_mut(symbol) {
            None => true,
            Some(entry) if entry.checked.elapsed() >= MODEL_RECHECK => {
                entry.checked = std::time::Instant::now();
                modified() != entry.modified
            }
            Some(_) => false,
        };
        if stale {
            let modified = modified();
            let model = if modified.is_none() {
                None
            } else {
                match quantcore::ml::lstm::LstmPredictor::load(&path) {
                    Ok(model) => {
                        tracing::info!(%symbol, path = %path.display(), "LSTM model loaded");
                        Some(model)
                    }
                    Err(error) => {
                        tracing::warn!(%symbol, %error, "cannot load the LSTM model; using the sma-trend forecast");
                        None
                    }
                }
            };
            self.loaded.insert(
                symbol.to_owned(),
                LoadedModel {
                    model,
                    modified,
                    checked: std::time::Instant::now(),
                },
            );
        }
        let model = self.loaded.get(symbol)?.model.as_ref()?;
        let series = quantcore::BarSeries::from_bars(bars).ok()?;
        match model.predict(&series) {
            Ok(price) if price.is_finite() && price > 0.0 => Some(price),
            Ok(price) => {
                tracing::warn!(%symbol, price, "LSTM prediction is not a price; using the sma-trend forecast");
                None
            }
            Err(error) => {
                tracing::warn!(%symbol, %error, "LSTM prediction failed; using the sma-trend forecast");
                None
            }
        }
    }
}

/// What the ml role made of one bar.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisOutcome {
    /// Fewer than `window` bars stored so far.
    Warmup,
    /// Analysed; the signal (published unless HOLD).
    Analysed(SignalMessage),
    /// Processed before.
    Duplicate,
}

/// The ml role: consumes `market_data` until the bus closes; see the [module docs](self).
///
/// # Errors
/// A store or bus error (a failing message is logged and skipped; only the bus itself ends
/// the role).
pub async fn ml_role(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    settings: MlSettings,
    stats: Arc<Stats>,
) -> Result<(), RoleError> {
    let generator = SignalGenerator::new(settings.signal.clone())?;
    let mut models = Models {
        dir: settings.model_dir.clone(),
        ..Models::default()
    };
    let mut detectors = Detectors::default();
    let mut consumer = MessageConsumer::<MarketDataMessage>::subscribe(
        bus.clone(),
        topics::MARKET_DATA,
        &settings.group,
    )
    .await?;
    loop {
        let batch = consumer.next_batch(ML_BATCH, Duration::ZERO).await?;
        // A transient store error (the database restarting) retries the whole batch, not
        // committed meanwhile (the markers make a repeat harmless); any other error is
        // logged and the batch skipped.
        let mut backoff = Backoff::default();
        loop {
            let mut context = MlContext {
                generator: &generator,
                models: &mut models,
                detectors: &mut detectors,
                settings: &settings,
                stats: &stats,
            };
            match analyse_batch(store.as_ref(), bus.as_ref(), &mut context, &batch.messages).await {
                Ok(_) => break,
                Err(RoleError::Store(error)) if error.is_transient() => {
                    backoff.wait("ml: analyse", &error).await;
                }
                Err(error) => {
                    tracing::error!(messages = batch.messages.len(), %error, "ml: batch failed");
                    break;
                }
            }
        }
        stats
            .bars_analysed
            .fetch_add(batch.messages.len() as u64, Ordering::Relaxed);
        consumer.commit_batch(&batch).await?;
    }
}

/// Messages the ml and trade roles take per batch at most (only those already received:
/// a batch never waits for more).
const ML_BATCH: usize = 256;

/// What the ml role keeps between batches.
struct MlContext<'a> {
    generator: &'a SignalGenerator,
    models: &'a mut Models,
    detectors: &'a mut Detectors,
    settings: &'a MlSettings,
    stats: &'a Stats,
}

async fn commit<P: crate::messages::Payload>(
    consumer: &mut MessageConsumer<P>,
    received: &bus::Received<P>,
) -> Result<(), RoleError> {
    match consumer.commit(received).await {
        Ok(()) | Err(BusError::Rebalanced { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Exponential backoff between retries of a transient store error: 50 ms doubling up to
/// 2 s, without a limit on attempts (the message stays uncommitted meanwhile, so nothing is
/// lost however long the database is away).
struct Backoff {
    delay: Duration,
    attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(50),
            attempts: 0,
        }
    }
}

impl Backoff {
    async fn wait(&mut self, operation: &str, error: &StoreError) {
        self.attempts += 1;
        tracing::warn!(%error, attempt = self.attempts, delay_ms = self.delay.as_millis() as u64, "{operation}: transient store error, retrying");
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(2));
    }
}

/// Runs `call` until it succeeds or fails with a non-transient error, backing off between
/// attempts ([`StoreError::is_transient`]).
async fn retry_transient<T, F, Fut>(operation: &str, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::default();
    loop {
        match call().await {
            Err(error) if error.is_transient() => backoff.wait(operation, &error).await,
            result => return result,
        }
    }
}

/// Analyses a batch of bars: one store read per symbol for the windows (a bar whose window
/// the read does not cover reads its own), one transaction for every prediction, signal,
/// score and marker ([`Store::record_analyses`]), then one batch publish of the signals and
/// one of the anomalies.
async fn analyse_batch(
    store: &dyn Store,
    bus: &dyn Bus,
    context: &mut MlContext<'_>,
    messages: &[bus::Received<MarketDataMessage>],
) -> Result<Vec<AnalysisOutcome>, RoleError> {
    let settings = context.settings;
    let need = settings.window.max(settings.anomaly_history);
    // Per symbol: the latest bar time and the number of its messages in the batch.
    let mut spans: HashMap<&str, (i64, usize)> = HashMap::new();
    for received in messages {
        let bar = &received.message.payload;
        let span = spans
            .entry(bar.symbol.as_str())
            .or_insert((bar.timestamp, 0));
        span.0 = span.0.max(bar.timestamp);
        span.1 += 1;
    }
    let mut fetched: HashMap<&str, (Vec<Bar>, usize)> = HashMap::new();
    for (symbol, (until, count)) in spans {
        let want = need + count;
        let bars = store.bars_until(symbol, Some(until), want).await?;
        fetched.insert(symbol, (bars, want));
    }
    // The windows first (a rare bar the shared read does not cover reads its own), then
    // the analyses, which are CPU work (the anomaly forests): off the async worker, so the
    // other roles' tasks (one may hold the store's write lock) are not queued behind it.
    let mut own_reads: HashMap<usize, Vec<Bar>> = HashMap::new();
    let mut windows: Vec<(usize, usize)> = Vec::with_capacity(messages.len());
    for (i, received) in messages.iter().enumerate() {
        let bar = &received.message.payload;
        let (bars, want) = &fetched[bar.symbol.as_str()];
        // The window ends at the message's bar: with a fast replay the store already holds
        // later bars. The shared read covers it when it holds `need` bars up to this one
        // or holds every stored bar (it returned fewer than asked).
        let end = bars.partition_point(|b| b.timestamp <= bar.timestamp);
        if end >= need || bars.len() < *want {
            windows.push((end.saturating_sub(need), end));
        } else {
            let own = store
                .bars_until(&bar.symbol, Some(bar.timestamp), need)
                .await?;
            windows.push((0, own.len()));
            own_reads.insert(i, own);
        }
    }
    let prepared = cpu_work(|| {
        let mut prepared = Vec::with_capacity(messages.len());
        for (i, (received, (start, end))) in messages.iter().zip(windows).enumerate() {
            let message = &received.message;
            let history = match own_reads.get(&i) {
                Some(own) => &own[start..end],
                None => &fetched[message.payload.symbol.as_str()].0[start..end],
            };
            match prepare(context, message, history) {
                Ok(analysis) => prepared.push(analysis),
                Err(error) => tracing::error!(id = %message.id, %error, "ml: message failed"),
            }
        }
        prepared
    });
    let answers = match store.record_analyses(&prepared).await {
        Ok(answers) => answers,
        Err(error) if error.is_transient() => return Err(error.into()),
        // One bad item must not lose the others: store them one by one.
        Err(error) => {
            tracing::warn!(%error, "ml: batch write failed; writing its analyses one by one");
            let mut answers = Vec::with_capacity(prepared.len());
            for analysis in &prepared {
                match store.record_analysis(analysis).await {
                    Ok(answer) => answers.push(answer),
                    Err(error) if error.is_transient() => return Err(error.into()),
                    Err(error) => {
                        tracing::error!(%error, "ml: analysis not stored");
                        answers.push(None);
                    }
                }
            }
            answers
        }
    };
    let mut outcomes = Vec::with_capacity(prepared.len());
    let mut signals = Vec::new();
    let mut anomalies = Vec::new();
    // The outputs are published after the store commit, with ids derived from the bar's
    // message id. A redelivered bar whose analysis is stored already (the commit's answer
    // or the publication was lost, or the process stopped in between) publishes the
    // stored signal again under the same id: the trade role drops it if it has it, and
    // trades it if the first publication never arrived. Nothing is lost or doubled.
    for (analysis, answer) in prepared.into_iter().zip(answers) {
        let source = analysis
            .processed
            .as_ref()
            .map(|key| key.message_id)
            .expect("prepare sets the marker");
        if answer.is_none() {
            if let Some(signal) = &analysis.signal
                && let Some(stored) = stored_signal(store, signal).await?
            {
                signals.push(encode(
                    topics::TRADING_SIGNALS,
                    Envelope::derived(stored, source, topics::TRADING_SIGNALS),
                )?);
            }
            outcomes.push(AnalysisOutcome::Duplicate);
            continue;
        }
        let Some(signal) = analysis.signal else {
            outcomes.push(AnalysisOutcome::Warmup);
            continue;
        };
        Stats::bump(&context.stats.predictions);
        if let Some(prediction) = &analysis.prediction {
            tracing::debug!(symbol = %signal.symbol, close = prediction.current_price, predicted = prediction.predicted_price, model = %prediction.model, "prediction");
        }
        if let Some(anomaly) = analysis.anomaly.filter(|a| a.is_anomaly) {
            tracing::info!(symbol = %anomaly.symbol, score = format_args!("{:.3}", anomaly.score), timestamp = anomaly.timestamp, "anomaly");
            anomalies.push(encode(
                topics::ANOMALIES,
                Envelope::derived(anomaly, source, topics::ANOMALIES),
            )?);
        }
        if signal.action != SignalAction::Hold {
            tracing::info!(
                symbol = %signal.symbol, action = signal.action.as_str(), confidence = format_args!("{:.3}", signal.confidence),
                price = signal.price, predicted = format_args!("{:.4}", signal.predicted_price), "signal"
            );
            signals.push(encode(
                topics::TRADING_SIGNALS,
                Envelope::derived(signal.clone(), source, topics::TRADING_SIGNALS),
            )?);
        }
        outcomes.push(AnalysisOutcome::Analysed(signal));
    }
    if !anomalies.is_empty() {
        bus.publish_batch(topics::ANOMALIES, &anomalies).await?;
    }
    if !signals.is_empty() {
        bus.publish_batch(topics::TRADING_SIGNALS, &signals).await?;
        context
            .stats
            .signals_published
            .fetch_add(signals.len() as u64, Ordering::Relaxed);
    }
    Ok(outcomes)
}

/// Runs `work` (CPU-bound, no await) where it does not hold up the runtime's other tasks:
/// on a multi-thread runtime through [`tokio::task::block_in_place`] (the worker's queued
/// tasks move to another thread meanwhile), else inline.
fn cpu_work<R>(work: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// How many of a symbol's latest stored signals (one per analysed bar) a redelivered bar
/// searches for its own. Redelivery concerns the uncommitted tail of a partition: far
/// fewer bars of one symbol than this.
const REPUBLISH_LOOKBACK: usize = 1024;

/// The stored signal of the bar `signal` was made for again, when it is not a HOLD.
async fn stored_signal(
    store: &dyn Store,
    signal: &SignalMessage,
) -> Result<Option<SignalMessage>, StoreError> {
    Ok(store
        .signals(&signal.symbol, REPUBLISH_LOOKBACK)
        .await?
        .into_iter()
        .rev()
        .find(|stored| stored.record.timestamp == signal.timestamp)
        .map(|stored| stored.record)
        .filter(|stored| stored.action != SignalAction::Hold))
}

/// The `(key, bytes)` of `message` for [`Bus::publish_batch`].
fn encode<P: crate::messages::Payload>(
    topic: &str,
    message: Envelope<P>,
) -> Result<(String, Vec<u8>), BusError> {
    let bytes = message.to_json().map_err(|source| BusError::Encode {
        topic: topic.to_owned(),
        source,
    })?;
    Ok((message.key, bytes))
}

/// The analysis of one bar from `history` (the last `max(window, anomaly_history)` stored
/// bars up to it): only the idempotency marker during the warm-up.
fn prepare(
    context: &mut MlContext<'_>,
    message: &Envelope<MarketDataMessage>,
    history: &[Bar],
) -> Result<Analysis, RoleError> {
    let settings = context.settings;
    let window = settings.window;
    let symbol = &message.payload.symbol;
    let processed = ProcessedKey::new(settings.group.as_str(), message.id);
    let bars = &history[history.len().saturating_sub(window)..];
    let closes: Vec<f64> = bars.iter().map(|bar| bar.close).collect();
    let (Some(volatility), true) = (return_volatility(&closes), bars.len() >= window.max(3)) else {
        return Ok(Analysis {
            processed: Some(processed),
            prediction: None,
            signal: None,
            anomaly: None,
        });
    };
    let last = *bars.last().expect("window >= 3 bars");
    let (predicted, model) = match context.models.predict(symbol, bars) {
        Some(price) => (price, "lstm"),
        None => (
            sma_trend_forecast(&closes)
                .unwrap_or(last.close)
                .max(f64::MIN_POSITIVE),
            "sma-trend",
        ),
    };
    let prediction = quantcore::signal::Prediction {
        symbol: symbol.clone(),
        timestamp: last.timestamp,
        predicted_price: predicted,
    };
    let signal = context
        .generator
        .generate(&prediction, last.close, volatility)?;
    let action = match signal.action {
        Action::Buy => SignalAction::Buy,
        Action::Sell => SignalAction::Sell,
        Action::Hold => SignalAction::Hold,
    };
    Ok(Analysis {
        processed: Some(processed),
        prediction: Some(Prediction {
            symbol: symbol.clone(),
            timestamp: last.timestamp,
            current_price: last.close,
            predicted_price: predicted,
            model: model.to_owned(),
        }),
        signal: Some(SignalMessage {
            symbol: symbol.clone(),
            timestamp: last.timestamp,
            action,
            confidence: signal.confidence,
            price: signal.price,
            predicted_price: signal.predicted_price,
            stop_loss: signal.stop_loss,
            take_profit: signal.take_profit,
            expected_return: signal.expected_return,
        }),
        anomaly: context
            .detectors
            .score(symbol, history, settings.anomaly_history),
    })
}

/// The Isolation Forest score of the last of `bars` (see [Anomalies](self#anomalies)), or
/// `None` when scoring is off, the history is short, or the core refuses the input (logged).
pub fn anomaly_score(symbol: &str, bars: &[Bar], history: usize) -> Option<AnomalyMessage> {
    if history == 0 || bars.len() < history.min(2 * Z_WINDOW + 2) {
        return None;
    }
    score_last(symbol, bars, false, |x| fit_forest(x).map(Cow::Owned))
}

/// Bars scored by one fitted forest before the ml role fits a symbol's forest again; see
/// [Anomalies](self#anomalies).
pub const ANOMALY_REFIT_EVERY: usize = 20;

/// The trailing window of the anomaly features' z-scores, in bars.
const Z_WINDOW: usize = 10;

/// The anomaly features of `bars` (`None`: too few), the forest `forest` gives for them,
/// and the score of the last row.
///
/// With `last_only`, the features are computed from a tail of `bars` only (the forest must
/// not need the others): the last row is the same, bit for bit, as over all of `bars`.
/// The core's features depend on the bars of the z-scores' windows, and their rolling
/// moments are recomputed exactly at every `Z_WINDOW`-th entry from the series' start
/// and updated in between; the tail starts at such an entry at or before the last row's
/// windows, so every operation that gives the last row is the same.
fn score_last<'f>(
    symbol: &str,
    bars: &[Bar],
    last_only: bool,
    forest: impl FnOnce(
        &quantcore::ndarray::Array2<f64>,
    ) -> Result<Cow<'f, quantcore::IsolationForest>, quantcore::Error>,
) -> Option<AnomalyMessage> {
    // Rows of the features of all of `bars` (the first `Z_WINDOW + 1` bars are warm-up).
    if bars.len().saturating_sub(Z_WINDOW + 1) < Z_WINDOW {
        return None;
    }
    let bars = if last_only {
        // The last row's return z-score reads the moments' entry `n - 2 - Z_WINDOW`, its
        // volume z-score entry `n - 1 - Z_WINDOW`: start at the exact recomputation at or
        // before the first (it leaves `Z_WINDOW + 2` bars at least, one row).
        let first_entry = bars.len() - 2 - Z_WINDOW;
        &bars[first_entry / Z_WINDOW * Z_WINDOW..]
    } else {
        bars
    };
    let result = (|| -> Result<Option<AnomalyMessage>, quantcore::Error> {
        let series = quantcore::BarSeries::from_bars(bars)?;
        let features =
            quantcore::features::anomaly::extract_features_with_window(&series, Z_WINDOW)?;
        let x = features.values();
        let forest = forest(x)?;
        let last = x.nrows() - 1;
        let detection = forest.detect(&x.slice(quantcore::ndarray::s![last.., ..]))?;
        Ok(Some(AnomalyMessage {
            symbol: symbol.to_owned(),
            timestamp: features.timestamps()[last],
            score: detection.scores[0],
            is_anomaly: detection.flags[0],
        }))
    })();
    result.unwrap_or_else(|error| {
        tracing::warn!(%symbol, %error, "anomaly scoring failed");
        None
    })
}

/// The service's forest: 50 trees of up to 64 rows, seed 7, contamination 0.02.
fn fit_forest(
    x: &quantcore::ndarray::Array2<f64>,
) -> Result<quantcore::IsolationForest, quantcore::Error> {
    use quantcore::linfa::traits::Fit;
    quantcore::IsolationForest::params()
        .n_trees(50)
        .max_samples(64)
        .seed(7)
        .contamination(0.02)
        .fit(&quantcore::linfa::DatasetBase::from(x.view()))
}

/// The ml role's fitted forests by symbol, each with the number of bars it has scored.
#[derive(Default)]
struct Detectors {
    fitted: HashMap<String, (quantcore::IsolationForest, usize)>,
}

impl Detectors {
    /// As [`anomaly_score`], but the forest of `symbol` is fitted again only every
    /// [`ANOMALY_REFIT_EVERY`] bars (on the history ending at the bar that refits it); the
    /// bars between are scored against it.
    fn score(&mut self, symbol: &str, bars: &[Bar], history: usize) -> Option<AnomalyMessage> {
        if history == 0 || bars.len() < history.min(2 * Z_WINDOW + 2) {
            return None;
        }
        let stale = self
            .fitted
            .get(symbol)
            .is_none_or(|(_, scored)| *scored >= ANOMALY_REFIT_EVERY);
        let fitted = &mut self.fitted;
        // Between refits only the last row is scored: its features from a tail.
        score_last(symbol, bars, !stale, |x| {
            if stale {
                fitted.insert(symbol.to_owned(), (fit_forest(x)?, 0));
            }
            let (forest, scored) = fitted.get_mut(symbol).expect("fitted above");
            *scored += 1;
            Ok(Cow::Borrowed(&*forest))
        })
    }
}

/// What the position updater did with one bar.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitOutcome {
    /// No open position with levels, or the bar reached none of them.
    Untouched,
    /// A level was reached; the closing order's result (`Duplicate` for a redelivered
    /// bar).
    Triggered {
        reason: ExitReason,
        /// The exit price before slippage: the level, or the open on a gap through it.
        trigger_price: f64,
        result: OrderResult,
    },
}

/// Applies the stop-loss and take-profit of `bar.symbol`'s position to the bar with the
/// core's [`exit_on_bar`] (a bar that opens through a level exits at the open; when it
/// reaches both inside, the stop is taken first) and, when one fires, closes the
/// position through [`execute_order`] at the trigger price (slippage and commission
/// from `settings.execution`), with `processed` as the idempotency key in the fill's
/// transaction: a redelivered bar never closes twice.
///
/// The service checks whole bars rather than the point prices of
/// [`quantcore::risk::stop_loss_manager`]: a bar's low and high reach levels its close
/// does not, and the backtester decides on the same bars, so both agree.
///
/// # Errors
/// A store or core error (a refused sell is an [`OrderResult::Refused`], not an error).
pub async fn apply_exits(
    store: &dyn Store,
    settings: &TradeSettings,
    bar: &MarketDataMessage,
    processed: Option<ProcessedKey>,
) -> Result<ExitOutcome, RoleError> {
    let Some(row) = store.position(&bar.symbol).await? else {
        return Ok(ExitOutcome::Untouched);
    };
    if row.quantity == 0.0 || (row.stop_loss.is_none() && row.take_profit.is_none()) {
        return Ok(ExitOutcome::Untouched);
    }
    let position = Position {
        quantity: row.quantity,
        average_price: row.average_price,
        stop_loss: row.stop_loss,
        take_profit: row.take_profit,
        ..Position::flat(quantcore::order::SymbolId(0))
    };
    let candle = Bar {
        timestamp: bar.timestamp,
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
        volume: bar.volume,
    };
    let Some(trigger) = exit_on_bar(&position, &candle)? else {
        return Ok(ExitOutcome::Untouched);
    };
    let intent = OrderIntent {
        symbol: bar.symbol.clone(),
        side: trigger.side,
        quantity: trigger.quantity,
        reference_price: trigger.price,
        timestamp: bar.timestamp,
    };
    let result = execute_order(store, settings, &intent, processed).await?;
    Ok(ExitOutcome::Triggered {
        reason: trigger.reason,
        trigger_price: trigger.price,
        result,
    })
}

/// The position updater: consumes `market_data`; for each bar applies the position's
/// stop-loss and take-profit ([`apply_exits`], fills with `settings`' execution model) and
/// then marks the symbol's position at the bar's close (the store's trigger writes a
/// portfolio snapshot). `group` is the consumer group and the idempotency consumer name.
///
/// # Errors
/// A bus error (a failing bar is logged and skipped).
pub async fn mark_role(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    group: String,
    settings: TradeSettings,
    stats: Arc<Stats>,
) -> Result<(), RoleError> {
    let mut consumer =
        MessageConsumer::<MarketDataMessage>::subscribe(bus, topics::MARKET_DATA, &group).await?;
    loop {
        let received = consumer.next().await?;
        let bar = &received.message.payload;
        let key = ProcessedKey::new(group.as_str(), received.message.id);
        match apply_exits(store.as_ref(), &settings, bar, Some(key)).await {
            Ok(ExitOutcome::Untouched) => {}
            Ok(ExitOutcome::Triggered {
                reason,
                trigger_price,
                result,
            }) => match result {
                OrderResult::Filled {
                    order_id,
                    price,
                    cash_after,
                    ..
                } => {
                    Stats::bump(&stats.orders_filled);
                    tracing::info!(
                        symbol = %bar.symbol, ?reason, trigger_price, price = format_args!("{price:.4}"),
                        %order_id, cash = format_args!("{cash_after:.2}"), "exit filled"
                    );
                }
                OrderResult::Refused { reason: why, code } => {
                    stats.record_refusal(code);
                    tracing::warn!(symbol = %bar.symbol, ?reason, %why, "exit refused by the risk check");
                }
                OrderResult::Duplicate => {
                    tracing::debug!(id = %received.message.id, "bar already processed");
                }
            },
            Err(error) => {
                tracing::error!(symbol = %bar.symbol, %error, "position updater: exit failed");
            }
        }
        if let Err(error) = store
            .mark_position(&bar.symbol, bar.close, at(bar.timestamp))
            .await
        {
            tracing::error!(symbol = %bar.symbol, %error, "mark: failed");
        }
        Stats::bump(&stats.bars_marked);
        commit(&mut consumer, &received).await?;
    }
}

/// An order for [`execute_order`].
#[derive(Debug, Clone, PartialEq)]
pub struct OrderIntent {
    pub symbol: String,
    pub side: quantcore::order::Side,
    /// `> 0`.
    pub quantity: f64,
    /// Price the market order fills against (slippage is added by the execution model).
    pub reference_price: f64,
    /// Time of the fill, Unix seconds UTC.
    pub timestamp: i64,
}

/// What became of an order.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderResult {
    /// Filled: the order id, fill price, commission and cash after.
    Filled {
        order_id: Uuid,
        price: f64,
        commission: f64,
        cash_after: f64,
    },
    /// Refused by the core's risk check before reaching the store: the violation and its
    /// [`refusal_code`].
    Refused { reason: String, code: &'static str },
    /// The triggering message was processed before.
    Duplicate,
}

/// Why an order was refused, for [`refusal_code`].
#[derive(Debug, Clone, Copy)]
pub enum RefusalCause<'a> {
    /// The core's risk check, before the store.
    Risk(&'a quantcore::risk::RiskViolation),
    /// The store's check on the locked state.
    Store(&'a StoreError),
}

/// A short stable code for a refusal (a metrics label): the risk violation's kind
/// (`insufficient_cash`, `position_too_large`, ...) or the store's (`insufficient_funds`,
/// `insufficient_position`, `plan_rejected`); `other` for anything else.
pub fn refusal_code(cause: &RefusalCause<'_>) -> &'static str {
    use quantcore::risk::RiskViolation as V;
    match cause {
        RefusalCause::Risk(violation) => match violation {
            V::InvalidPrice { .. } => "invalid_price",
            V::InvalidQuantity { .. } => "invalid_quantity",
            V::UnknownSymbol { .. } => "unknown_symbol",
            V::InsufficientCash { .. } => "insufficient_cash",
            V::InsufficientPosition { .. } => "insufficient_position",
            V::PositionTooLarge { .. } => "position_too_large",
            V::OrderTooLarge { .. } => "order_too_large",
            V::TooManyOpenPositions { .. } => "too_many_open_positions",
            V::DrawdownHalt { .. } => "drawdown_halt",
        },
        RefusalCause::Store(StoreError::InsufficientFunds { .. }) => "insufficient_funds",
        RefusalCause::Store(StoreError::InsufficientPosition { .. }) => "insufficient_position",
        RefusalCause::Store(StoreError::PlanRejected { .. }) => "plan_rejected",
        RefusalCause::Store(_) => "other",
    }
}

/// Rebuilds the core portfolio from the stored cash and positions (plus `symbol`), with
/// each position marked at its last mark (its average price before any).
///
/// # Errors
/// A store error, or the core's error for a stored number it refuses.
pub async fn load_portfolio(
    store: &dyn Store,
    settings: &TradeSettings,
    symbol: &str,
) -> Result<Portfolio, RoleError> {
    let cash = store
        .ensure_account(settings.initial_cash, Utc::now())
        .await?;
    let mut portfolio =
        Portfolio::new(settings.initial_cash)?.with_short_selling(settings.limits.allow_short);
    portfolio.restore_cash(cash)?;
    let mut rows = store.positions().await?;
    if !rows.iter().any(|row| row.symbol == symbol) {
        portfolio.register(Instrument::new(symbol))?;
    }
    rows.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    for row in rows {
        let id = portfolio.register(Instrument::new(&row.symbol))?;
        let state = PositionState {
            quantity: row.quantity,
            average_price: row.average_price,
            realized_pnl: row.realized_pnl,
        };
        portfolio.restore_position(position_of(id, state, row.current_price))?;
    }
    Ok(portfolio)
}

/// `portfolio` with a fill of `symbol` booked as the store booked it (its cash after, and
/// the position at `state` marked at the fill `price`); `None` when the core refuses the
/// numbers (the caller then reads the store again).
fn after_fill(
    mut portfolio: Portfolio,
    symbol: &str,
    state: PositionState,
    price: f64,
    cash_after: f64,
) -> Option<Portfolio> {
    let id = portfolio.resolve(symbol).ok()?;
    portfolio.restore_cash(cash_after).ok()?;
    portfolio
        .restore_position(position_of(id, state, Some(price)))
        .ok()?;
    Some(portfolio)
}

fn position_of(
    id: quantcore::order::SymbolId,
    state: PositionState,
    mark: Option<f64>,
) -> Position {
    let open = state.quantity != 0.0;
    Position {
        quantity: state.quantity,
        average_price: if open { state.average_price } else { 0.0 },
        realized_pnl: state.realized_pnl,
        current_price: if open {
            mark.filter(|p| *p > 0.0).unwrap_or(state.average_price)
        } else {
            mark.unwrap_or(0.0)
        },
        ..Position::flat(id)
    }
}

/// Checks `intent` with the core's risk rules on the stored portfolio, then fills it through
/// [`Store::execute_fill`] with a plan that books the core's fill on the locked state.
///
/// # Errors
/// A store error (including [`StoreError::InsufficientFunds`] when the locked state no
/// longer affords it) or a core error.
pub async fn execute_order(
    store: &dyn Store,
    settings: &TradeSettings,
    intent: &OrderIntent,
    processed: Option<ProcessedKey>,
) -> Result<OrderResult, RoleError> {
    execute_order_with_exits(store, settings, intent, ExitLevels::NONE, processed).await
}

/// [`execute_order`] with the stop-loss and take-profit the position gets when the fill
/// opens or increases it in the order's direction (the core's
/// [`ExecutionModel::execute`](quantcore::execution::ExecutionModel::execute) rule, checked
/// by [`Portfolio::set_exit_levels`]); [`ExitLevels::NONE`] keeps the stored levels. A fill
/// that closes or flips the position clears them. The levels are written in the fill's
/// transaction.
///
/// # Errors
/// As [`execute_order`]; levels the core refuses (a stop above the take-profit of a long)
/// abort the fill ([`StoreError::PlanRejected`]).
pub async fn execute_order_with_exits(
    store: &dyn Store,
    settings: &TradeSettings,
    intent: &OrderIntent,
    exits: ExitLevels,
    processed: Option<ProcessedKey>,
) -> Result<OrderResult, RoleError> {
    let portfolio = load_portfolio(store, settings, &intent.symbol).await?;
    execute_on_portfolio(store, settings, &portfolio, intent, exits, processed).await
}

/// [`execute_order_with_exits`] on `portfolio`, already loaded with [`load_portfolio`]
/// (the trade role sizes the order on it and checks the risk on the same one, so it reads
/// the store once per signal). The fill's transaction checks again on the locked state.
///
/// # Errors
/// As [`execute_order_with_exits`].
pub async fn execute_on_portfolio(
    store: &dyn Store,
    settings: &TradeSettings,
    portfolio: &Portfolio,
    intent: &OrderIntent,
    exits: ExitLevels,
    processed: Option<ProcessedKey>,
) -> Result<OrderResult, RoleError> {
    let marker = processed.clone();
    match fill_on_portfolio(store, settings, portfolio, intent, exits, processed)
        .await?
        .0
    {
        // Refused before the store: the marker is written alone.
        refused @ OrderResult::Refused { .. } => match marker {
            Some(key) if !store.mark_processed(&key).await? => Ok(OrderResult::Duplicate),
            _ => Ok(refused),
        },
        result => Ok(result),
    }
}

/// [`execute_on_portfolio`] without writing the marker of an order the risk check refuses
/// (the caller writes it, as the trade role does with the other markers of its batch):
/// `processed` only goes with a fill. With a fill, also the position the store booked.
async fn fill_on_portfolio(
    store: &dyn Store,
    settings: &TradeSettings,
    portfolio: &Portfolio,
    intent: &OrderIntent,
    exits: ExitLevels,
    processed: Option<ProcessedKey>,
) -> Result<(OrderResult, Option<PositionState>), RoleError> {
    match prepare_fill(settings, portfolio, intent, exits, processed)? {
        PreparedFill::Refused(refused) => Ok((refused, None)),
        PreparedFill::Ready(ready) => {
            let outcome = store.execute_fill(&ready.request, ready.plan).await?;
            Ok(ready.result.of(outcome))
        }
    }
}

/// A fill checked by the core's risk rules: refused, or ready for the store.
enum PreparedFill {
    Refused(OrderResult),
    Ready(ReadyFill),
}

struct ReadyFill {
    request: FillRequest,
    plan: FillPlan,
    result: FillResult,
}

/// What a fill's [`FillOutcome`] means to the role.
struct FillResult {
    order_id: Uuid,
    price: f64,
    commission: f64,
}

impl FillResult {
    fn of(&self, outcome: FillOutcome) -> (OrderResult, Option<PositionState>) {
        match outcome {
            FillOutcome::Duplicate => (OrderResult::Duplicate, None),
            FillOutcome::Filled(receipt) => (
                OrderResult::Filled {
                    order_id: self.order_id,
                    price: self.price,
                    commission: self.commission,
                    cash_after: receipt.cash_after,
                },
                Some(receipt.position),
            ),
        }
    }
}

/// The core's side of [`fill_on_portfolio`]: the simulated fill, the risk check on
/// `portfolio`, and the request and plan for the store.
fn prepare_fill(
    settings: &TradeSettings,
    portfolio: &Portfolio,
    intent: &OrderIntent,
    exits: ExitLevels,
    processed: Option<ProcessedKey>,
) -> Result<PreparedFill, RoleError> {
    let id = portfolio.resolve(&intent.symbol)?;
    let order_id = Uuid::now_v7();
    let core_order = Order::market(
        order_id.as_u64_pair().1,
        id,
        intent.side,
        intent.quantity,
        intent.timestamp,
    );
    let fill =
        settings
            .execution
            .fill_market(&core_order, intent.reference_price, intent.timestamp)?;
    let commission_model = settings.execution.commission;
    if let Err(violation) = check_risk_limits(
        &settings.limits,
        portfolio,
        &core_order,
        fill.price,
        &commission_model,
    ) {
        let refused = OrderResult::Refused {
            reason: violation.to_string(),
            code: refusal_code(&RefusalCause::Risk(&violation)),
        };
        return Ok(PreparedFill::Refused(refused));
    }
    let limits = settings.limits;
    let initial = settings.initial_cash;
    let symbol = intent.symbol.clone();
    // The re-check under the row locks sees the locked cash and position of this symbol,
    // and the other positions as loaded above (they are not locked: a concurrent fill of
    // another symbol moves cash, which is locked, and its position only by what that cash
    // paid). Without them the equity, and so every fraction-of-equity limit, would be too
    // small and refuse orders the core accepts.
    let others: Vec<(String, PositionState, Option<f64>)> = portfolio
        .instruments()
        .iter()
        .filter(|(other, _)| *other != id)
        .filter_map(|(other, instrument)| {
            let position = portfolio.position(other)?;
            Some((
                instrument.symbol.clone(),
                PositionState {
                    quantity: position.quantity,
                    average_price: position.average_price,
                    realized_pnl: position.realized_pnl,
                },
                Some(position.current_price),
            ))
        })
        .collect();
    let plan: FillPlan = Box::new(move |locked: &LockedState| {
        let mut book = Portfolio::new(initial)?.with_short_selling(limits.allow_short);
        for (name, state, price) in &others {
            let other = book.register(Instrument::new(name))?;
            book.restore_position(position_of(other, *state, *price))?;
        }
        let id = book.register(Instrument::new(&symbol))?;
        book.restore_cash(locked.cash)?;
        book.restore_position(position_of(id, locked.position, Some(fill.price)))?;
        let order = Order::market(core_order.id, id, core_order.side, core_order.quantity, 0);
        check_risk_limits(&limits, &book, &order, fill.price, &commission_model)?;
        let before_cash = book.cash();
        let before_realized = locked.position.realized_pnl;
        book.apply_fill(&quantcore::execution::Fill { symbol: id, ..fill })?;
        let before = locked.position.quantity;
        let position = book.position(id).expect("registered");
        let after = position.quantity;
        let opened_in_order_direction = after * core_order.side.sign() > 0.0;
        let exit_levels = if opened_in_order_direction && exits.is_set() {
            book.set_exit_levels(id, exits.stop_loss, exits.take_profit)?;
            Some(exits)
        } else if after == 0.0 || before * after < 0.0 {
            Some(ExitLevels::NONE)
        } else {
            None
        };
        let position = book.position(id).expect("registered");
        Ok(FillEffects {
            exit_levels,
            position: PositionState {
                quantity: position.quantity,
                average_price: position.average_price,
                realized_pnl: position.realized_pnl,
            },
            cash_delta: book.cash() - before_cash,
            realized_pnl: position.realized_pnl - before_realized,
        })
    });
    let side = match intent.side {
        quantcore::order::Side::Buy => Side::Buy,
        quantcore::order::Side::Sell => Side::Sell,
    };
    let request = FillRequest {
        order: OrderRequest {
            id: order_id,
            symbol: intent.symbol.clone(),
            side,
            kind: OrderKind::Market,
            quantity: intent.quantity,
            limit_price: None,
            created_at: Utc::now(),
        },
        price: fill.price,
        commission: fill.commission,
        filled_at: at(intent.timestamp),
        processed,
    };
    Ok(PreparedFill::Ready(ReadyFill {
        request,
        plan,
        result: FillResult {
            order_id,
            price: fill.price,
            commission: fill.commission,
        },
    }))
}

/// The order a signal asks for on the stored portfolio, or `None` (HOLD, nothing to sell,
/// too little equity for one unit).
///
/// # Errors
/// A store or core error.
pub async fn order_for_signal(
    store: &dyn Store,
    settings: &TradeSettings,
    signal: &SignalMessage,
) -> Result<Option<OrderIntent>, RoleError> {
    let portfolio = load_portfolio(store, settings, &signal.symbol).await?;
    order_on_portfolio(settings, &portfolio, signal)
}

/// [`order_for_signal`] on `portfolio`, already loaded with [`load_portfolio`].
///
/// # Errors
/// A core error.
pub fn order_on_portfolio(
    settings: &TradeSettings,
    portfolio: &Portfolio,
    signal: &SignalMessage,
) -> Result<Option<OrderIntent>, RoleError> {
    let id = portfolio.resolve(&signal.symbol)?;
    let held = portfolio.position(id).map_or(0.0, |p| p.quantity);
    let (side, quantity) = match signal.action {
        SignalAction::Hold => return Ok(None),
        SignalAction::Buy => {
            let side = quantcore::order::Side::Buy;
            let price = settings.execution.market_price(side, signal.price);
            let quantity = settings.sizing.quantity(
                SizingInput {
                    equity: portfolio.equity(),
                    price,
                    confidence: signal.confidence,
                },
                &Instrument::new(&signal.symbol),
                &settings.limits,
                &settings.execution.commission,
            )?;
            (side, quantity)
        }
        SignalAction::Sell if held > 0.0 => (quantcore::order::Side::Sell, held),
        SignalAction::Sell => return Ok(None),
    };
    if quantity <= 0.0 {
        return Ok(None);
    }
    Ok(Some(OrderIntent {
        symbol: signal.symbol.clone(),
        side,
        quantity,
        reference_price: signal.price,
        timestamp: signal.timestamp,
    }))
}

/// Portfolio value from the store: cash plus each position at its last mark.
///
/// # Errors
/// A store error.
pub async fn portfolio_value(store: &dyn Store) -> Result<(f64, f64), StoreError> {
    let cash = store.cash().await?;
    let positions: f64 = store
        .positions()
        .await?
        .iter()
        .map(|p| p.quantity * p.current_price.unwrap_or(p.average_price))
        .sum();
    Ok((cash, cash + positions))
}

/// The trade role: consumes `trading_signals` until the bus closes; see the
/// [module docs](self#trading).
///
/// # Errors
/// A bus error, or the store refusing to create the account.
pub async fn trade_role(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    settings: TradeSettings,
    stats: Arc<Stats>,
) -> Result<(), RoleError> {
    settings.limits.validate()?;
    settings.sizing.validate()?;
    store
        .ensure_account(settings.initial_cash, Utc::now())
        .await?;
    let mut consumer =
        MessageConsumer::<SignalMessage>::subscribe(bus, topics::TRADING_SIGNALS, &settings.group)
            .await?;
    loop {
        let batch = consumer.next_batch(ML_BATCH, Duration::ZERO).await?;
        // In a fill batch first (when the store has them); if that fails, again with one
        // transaction per fill, where each error is handled on its own.
        if !trade_batch(store.as_ref(), &settings, &stats, &batch.messages, true).await {
            tracing::warn!(
                signals = batch.messages.len(),
                "trade: fill batch rolled back; handling its signals one fill at a time"
            );
            trade_batch(store.as_ref(), &settings, &stats, &batch.messages, false).await;
        }
        consumer.commit_batch(&batch).await?;
    }
}

/// Handles the trade role's batch of signals: one by one, the fills in one
/// [`FillBatch`](crate::store::FillBatch) when `batched` and the store has them (else each
/// its own transaction); the markers of signals that gave no order or one the risk check
/// refused are written together at the end (in the fill batch when one is open). Returns
/// `false` when the fill batch failed and was rolled back with everything it held; nothing
/// of it was counted or logged then.
async fn trade_batch(
    store: &dyn Store,
    settings: &TradeSettings,
    stats: &Stats,
    messages: &[bus::Received<SignalMessage>],
    batched: bool,
) -> bool {
    let mut fills = Fills {
        store,
        stats,
        batched,
        open: None,
        failed: false,
        pending: Vec::new(),
    };
    let mut deferred: Vec<Deferred> = Vec::new();
    // The portfolio read for the batch, kept while no order of the batch changes it.
    let mut cached = None;
    for received in messages {
        if !handle_signal(settings, received, &mut deferred, &mut cached, &mut fills).await {
            fills.roll_back().await;
            return false;
        }
    }
    // The markers of signals that gave no order, in one transaction, before the commit.
    let keys: Vec<ProcessedKey> = deferred.iter().map(|d| d.key.clone()).collect();
    let marked = match &mut fills.open {
        Some(open) => match open.mark_processed_batch(&keys).await {
            Ok(fresh) => Ok(fresh),
            Err(_) => {
                fills.roll_back().await;
                return false;
            }
        },
        None => retry_transient("trade: mark signals", || store.mark_processed_batch(&keys)).await,
    };
    match marked {
        Ok(fresh) => {
            for (deferred, fresh) in deferred.into_iter().zip(fresh) {
                let Some(refusal) = deferred.refusal else {
                    continue;
                };
                if fresh {
                    fills.pending.push(Report::Refused(refusal));
                } else {
                    tracing::debug!(id = %deferred.key.message_id, "signal already processed");
                }
            }
        }
        Err(error) => {
            tracing::error!(signals = keys.len(), %error, "trade: markers not stored");
        }
    }
    fills.flush().await.is_ok()
}

/// The trade role's way to the store for one batch: fills go into an open
/// [`FillBatch`](crate::store::FillBatch) when batching, and what they did is reported
/// (counted and logged) once it commits.
struct Fills<'a> {
    store: &'a dyn Store,
    stats: &'a Stats,
    /// Whether to open fill batches (the store may still have none).
    batched: bool,
    open: Option<Box<dyn crate::store::FillBatch>>,
    /// A batch failed to commit: its fills are gone, so the whole batch of signals must be
    /// handled again.
    failed: bool,
    /// Reports of the open batch's work, made when it commits.
    pending: Vec<Report>,
}

impl Fills<'_> {
    async fn execute(
        &mut self,
        request: &FillRequest,
        plan: FillPlan,
    ) -> Result<FillOutcome, StoreError> {
        if self.batched && self.open.is_none() {
            self.open = self.store.begin_fill_batch().await?;
            self.batched = self.open.is_some();
        }
        match &mut self.open {
            Some(open) => open.execute_fill(request, plan).await,
            None => self.store.execute_fill(request, plan).await,
        }
    }

    /// Whether the open batch failed (it must be rolled back), or one failed to commit.
    fn is_poisoned(&self) -> bool {
        self.failed || self.open.as_ref().is_some_and(|open| open.is_poisoned())
    }

    /// Rolls the open batch back now (rather than when its connection is next used), so
    /// the store's write lock is free for the work done again.
    async fn roll_back(&mut self) {
        self.pending.clear();
        if let Some(open) = self.open.take()
            && let Err(error) = open.roll_back().await
        {
            tracing::warn!(%error, "trade: fill batch roll-back failed");
        }
    }

    /// Reports `report` now, or when the open batch commits.
    async fn report(&mut self, report: Report) {
        if self.open.is_some() {
            self.pending.push(report);
        } else {
            report.make(self.store, self.stats).await;
        }
    }

    /// Commits the open batch, if any, then makes the reports waiting for it. The store's
    /// own reads see the batch's fills only after this.
    async fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(open) = self.open.take()
            && let Err(error) = open.commit().await
        {
            self.failed = true;
            self.pending.clear();
            return Err(error);
        }
        for report in std::mem::take(&mut self.pending) {
            report.make(self.store, self.stats).await;
        }
        Ok(())
    }
}

/// What the trade role counts and logs about a signal once its work is stored.
enum Report {
    /// A signal handled (any outcome).
    Handled,
    Filled {
        intent: OrderIntent,
        order_id: Uuid,
        price: f64,
        commission: f64,
        cash_after: f64,
    },
    /// The core's risk check refused the order (its marker was new).
    Refused(DeferredRefusal),
    /// The store refused the fill.
    Rejected { symbol: String, error: StoreError },
}

impl Report {
    async fn make(self, store: &dyn Store, stats: &Stats) {
        match self {
            Report::Handled => {
                Stats::bump(&stats.signals_handled);
            }
            Report::Filled {
                intent,
                order_id,
                price,
                commission,
                cash_after,
            } => {
                Stats::bump(&stats.orders_filled);
                // Two more reads: only when the line is logged.
                let value = if tracing::enabled!(tracing::Level::INFO) {
                    portfolio_value(store)
                        .await
                        .map(|v| v.1)
                        .unwrap_or(f64::NAN)
                } else {
                    f64::NAN
                };
                tracing::info!(
                    symbol = %intent.symbol, side = intent.side.as_str(), quantity = intent.quantity,
                    price = format_args!("{price:.4}"), commission = format_args!("{commission:.4}"),
                    %order_id, cash = format_args!("{cash_after:.2}"),
                    portfolio_value = format_args!("{value:.2}"), "order filled"
                );
            }
            Report::Refused(refusal) => {
                stats.record_refusal(refusal.code);
                tracing::info!(symbol = %refusal.symbol, side = refusal.side, reason = %refusal.reason, "order refused by risk check");
            }
            Report::Rejected { symbol, error } => {
                stats.record_refusal(refusal_code(&RefusalCause::Store(&error)));
                tracing::info!(%symbol, %error, "order rejected by the store");
            }
        }
    }
}

/// A signal of the trade role's batch whose marker is written with the batch's: it gave no
/// order, or one the risk check refused (counted once the marker shows it is not a repeat).
struct Deferred {
    key: ProcessedKey,
    refusal: Option<DeferredRefusal>,
}

struct DeferredRefusal {
    symbol: String,
    side: &'static str,
    reason: String,
    code: &'static str,
}

/// Handles one signal of the trade role: errors are logged (a transient store error is
/// retried until it passes). Returns `false` when the open fill batch failed (see
/// [`trade_batch`]).
async fn handle_signal(
    settings: &TradeSettings,
    received: &bus::Received<SignalMessage>,
    deferred: &mut Vec<Deferred>,
    cached: &mut Option<Portfolio>,
    fills: &mut Fills<'_>,
) -> bool {
    let signal = &received.message.payload;
    let key = ProcessedKey::new(settings.group.as_str(), received.message.id);
    // A transient store error retries the whole signal (the message stays uncommitted);
    // the idempotency marker, written in the fill's transaction, makes a retry after a
    // commit whose answer was lost a duplicate, never a second order.
    let mut backoff = Backoff::default();
    let result = loop {
        let attempt = async {
            let portfolio = match cached.take() {
                Some(portfolio) if portfolio.resolve(&signal.symbol).is_ok() => portfolio,
                _ => {
                    // The store's reads see the open batch's fills once it commits.
                    fills.flush().await?;
                    load_portfolio(fills.store, settings, &signal.symbol).await?
                }
            };
            let Some(intent) = order_on_portfolio(settings, &portfolio, signal)? else {
                // Marked with the batch (see `trade_batch`).
                *cached = Some(portfolio);
                return Ok(None);
            };
            let exits = ExitLevels {
                stop_loss: signal.stop_loss,
                take_profit: signal.take_profit,
            };
            let (result, booked) =
                match prepare_fill(settings, &portfolio, &intent, exits, Some(key.clone()))? {
                    PreparedFill::Refused(refused) => (refused, None),
                    PreparedFill::Ready(ready) => {
                        let outcome = fills.execute(&ready.request, ready.plan).await?;
                        ready.result.of(outcome)
                    }
                };
            match (&result, booked) {
                // Refused before the store: the books did not change.
                (OrderResult::Refused { .. }, _) => *cached = Some(portfolio),
                // Filled: the books as the store now holds them (cash, and the position
                // marked at the fill price), as a reload would read them.
                (
                    OrderResult::Filled {
                        price, cash_after, ..
                    },
                    Some(state),
                ) => {
                    *cached = after_fill(portfolio, &intent.symbol, state, *price, *cash_after);
                }
                _ => {}
            }
            Ok(Some((intent, result)))
        }
        .await;
        if fills.is_poisoned() {
            return false;
        }
        match attempt {
            Err(RoleError::Store(error)) if error.is_transient() => {
                if fills.open.is_some() {
                    // The open batch's transaction may be gone with the connection.
                    return false;
                }
                backoff.wait("trade: signal", &error).await;
            }
            attempt => break attempt,
        }
    };
    match result {
        Ok(Some((
            intent,
            OrderResult::Filled {
                order_id,
                price,
                commission,
                cash_after,
            },
        ))) => {
            fills
                .report(Report::Filled {
                    intent,
                    order_id,
                    price,
                    commission,
                    cash_after,
                })
                .await;
        }
        // Counted and logged with the batch's markers (see `trade_batch`).
        Ok(Some((intent, OrderResult::Refused { reason, code }))) => {
            deferred.push(Deferred {
                key,
                refusal: Some(DeferredRefusal {
                    symbol: intent.symbol,
                    side: intent.side.as_str(),
                    reason,
                    code,
                }),
            });
        }
        Ok(Some((_, OrderResult::Duplicate))) => {
            tracing::debug!(id = %received.message.id, "signal already processed");
        }
        Ok(None) => {
            deferred.push(Deferred { key, refusal: None });
            tracing::debug!(symbol = %signal.symbol, action = signal.action.as_str(), "no order for signal");
        }
        Err(RoleError::Store(
            error @ (StoreError::InsufficientFunds { .. }
            | StoreError::InsufficientPosition { .. }
            | StoreError::PlanRejected { .. }),
        )) => {
            fills
                .report(Report::Rejected {
                    symbol: signal.symbol.clone(),
                    error,
                })
                .await;
        }
        Err(error) => {
            tracing::error!(id = %received.message.id, %error, "trade: signal failed");
        }
    }
    fills.report(Report::Handled).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sma_trend_forecast_continues_the_trend_from_the_average() {
        // Closes 10, 12, 11, 13: mean 11.5, centre 1.5 bars back;
        // 13 + (13 - 11.5) / 1.5 = 14.
        let predicted = sma_trend_forecast(&[10.0, 12.0, 11.0, 13.0]).unwrap();
        assert!((predicted - 14.0).abs() < 1e-12, "{predicted}");
        // Flat prices forecast the same price.
        assert_eq!(sma_trend_forecast(&[5.0; 30]), Some(5.0));
        // A falling series forecasts lower.
        assert!(sma_trend_forecast(&[3.0, 2.0, 1.5]).unwrap() < 1.5);
        assert_eq!(sma_trend_forecast(&[1.0, 2.0]), None);
    }

    #[test]
    fn return_volatility_is_the_sample_std_of_simple_returns() {
        // Returns +10 %, -10 %, +20 %: mean 0.0667, deviations 0.0333, -0.1667, 0.1333;
        // sum of squares 0.0467, / 2 = 0.02333.
        let closes = [100.0, 110.0, 99.0, 118.8];
        let returns = [0.1, -0.1, 0.2];
        let mean = returns.iter().sum::<f64>() / 3.0;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 2.0;
        let sigma = return_volatility(&closes).unwrap();
        assert!((sigma - var.sqrt()).abs() < 1e-12, "{sigma}");
        assert!((sigma - 0.023_333_333_f64.sqrt()).abs() < 1e-6);
        assert_eq!(return_volatility(&[1.0, 2.0]), None);
    }

    fn walk(n: usize) -> Vec<Bar> {
        // A deterministic zig-zag: returns of +-0.5 %, volume 1,000 +- 100.
        let mut close = 100.0;
        (0..n)
            .map(|i| {
                let previous = close;
                close *= if i % 3 == 0 { 0.995 } else { 1.004 };
                Bar {
                    timestamp: i as i64 * 86_400,
                    open: previous,
                    high: previous.max(close) * 1.002,
                    low: previous.min(close) * 0.998,
                    close,
                    volume: 1_000.0 + (i % 5) as f64 * 50.0,
                }
            })
            .collect()
    }

    #[test]
    fn a_jump_scores_as_an_anomaly_and_a_calm_bar_does_not() {
        let calm = walk(120);
        let normal = anomaly_score("X", &calm, 120).expect("scored");
        assert_eq!(normal.timestamp, calm[119].timestamp);
        assert!(!normal.is_anomaly, "{normal:?}");
        let mut jump = calm.clone();
        let last = jump.last_mut().unwrap();
        last.close = last.open * 1.25;
        last.high = last.close;
        last.volume = 20_000.0;
        let spike = anomaly_score("X", &jump, 120).expect("scored");
        assert!(spike.is_anomaly, "{spike:?}");
        assert!(spike.score > normal.score);
        // Off, or too little history.
        assert_eq!(anomaly_score("X", &calm, 0), None);
        assert_eq!(anomaly_score("X", &calm[..15], 120), None);
    }

    #[test]
    fn between_refits_the_tail_scores_exactly_as_the_whole_history() {
        // Volumes that vary a lot, so the rolling moments' rounding shows if the tail's
        // differ from the whole history's.
        let mut bars = walk(400);
        for (i, bar) in bars.iter_mut().enumerate() {
            bar.volume = 1_000.0 + ((i * 7_919) % 1_013) as f64 * 3.7;
        }
        let series = quantcore::BarSeries::from_bars(&bars[..120]).unwrap();
        let features =
            quantcore::features::anomaly::extract_features_with_window(&series, Z_WINDOW).unwrap();
        let forest = fit_forest(features.values()).unwrap();
        let fixed = |_: &quantcore::ndarray::Array2<f64>| Ok(Cow::Borrowed(&forest));
        for end in 22..=bars.len() {
            for len in [22, 23, 31, 32, 33, 60, 119, 120] {
                let Some(start) = end.checked_sub(len) else {
                    continue;
                };
                let history = &bars[start..end];
                let whole = score_last("X", history, false, fixed);
                let tail = score_last("X", history, true, fixed);
                assert!(whole.is_some(), "{start}..{end}");
                // Bit for bit: the same score, flag and timestamp.
                assert_eq!(
                    whole.as_ref().map(|a| a.score.to_bits()),
                    tail.as_ref().map(|a| a.score.to_bits()),
                    "{start}..{end}"
                );
                assert_eq!(whole, tail, "{start}..{end}");
            }
        }
        // Too short for a row of ten: nothing either way.
        assert_eq!(score_last("X", &bars[..20], true, fixed), None);
    }

    #[test]
    fn the_detectors_score_as_a_fresh_fit_at_their_last_refit() {
        // Bar i of a stream is scored by the forest fitted at the last refit before it:
        // every ANOMALY_REFIT_EVERY-th bar, on the history ending there.
        let bars = walk(300);
        let history = 120;
        let mut detectors = Detectors::default();
        let mut refit_at = None;
        for end in history..=bars.len() {
            let window = &bars[end - history..end];
            let scored = detectors.score("X", window, history).expect("scored");
            if (end - history) % ANOMALY_REFIT_EVERY == 0 {
                refit_at = Some(end);
                // A refit bar: the fit-on-the-spot score.
                assert_eq!(Some(scored.clone()), anomaly_score("X", window, history));
            }
            let at = refit_at.expect("the first bar refits");
            let series = quantcore::BarSeries::from_bars(&bars[at - history..at]).unwrap();
            let features =
                quantcore::features::anomaly::extract_features_with_window(&series, Z_WINDOW)
                    .unwrap();
            let forest = fit_forest(features.values()).unwrap();
            let expected = score_last("X", window, false, |_| Ok(Cow::Borrowed(&forest)));
            assert_eq!(Some(scored), expected, "bar {end}");
        }
    }

    #[test]
    fn restored_positions_mark_at_the_average_before_any_mark() {
        let id = quantcore::order::SymbolId(0);
        let state = PositionState {
            quantity: 3.0,
            average_price: 10.0,
            realized_pnl: 1.5,
        };
        assert_eq!(position_of(id, state, None).current_price, 10.0);
        assert_eq!(position_of(id, state, Some(12.0)).current_price, 12.0);
        let flat = position_of(id, PositionState::default(), None);
        assert!(!flat.is_open());
        assert_eq!(flat.realized_pnl, 0.0);
    }
}
