-- quantcore service schema, SQLite: the same tables as PostgreSQL. Prices and quantities
-- are REAL (f64); times are INTEGER Unix microseconds UTC (they sort and compare as numbers).

CREATE TABLE market_data (
    symbol      TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    open        REAL    NOT NULL,
    high        REAL    NOT NULL,
    low         REAL    NOT NULL,
    close       REAL    NOT NULL,
    volume      REAL    NOT NULL,
    ingested_at INTEGER NOT NULL,
    PRIMARY KEY (symbol, ts)
) WITHOUT ROWID;

CREATE TABLE predictions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol          TEXT    NOT NULL,
    ts              INTEGER NOT NULL,
    current_price   REAL    NOT NULL,
    predicted_price REAL    NOT NULL,
    model           TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX predictions_symbol_ts ON predictions (symbol, ts);

CREATE TABLE signals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol          TEXT    NOT NULL,
    ts              INTEGER NOT NULL,
    action          TEXT    NOT NULL CHECK (action IN ('BUY', 'SELL', 'HOLD')),
    confidence      REAL    NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    price           REAL    NOT NULL,
    predicted_price REAL    NOT NULL,
    stop_loss       REAL,
    take_profit     REAL,
    expected_return REAL    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX signals_symbol_ts ON signals (symbol, ts);

CREATE TABLE anomalies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol     TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    score      REAL    NOT NULL,
    is_anomaly INTEGER NOT NULL CHECK (is_anomaly IN (0, 1)),
    created_at INTEGER NOT NULL
);
CREATE INDEX anomalies_symbol_ts ON anomalies (symbol, ts);

CREATE TABLE account (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    cash         REAL    NOT NULL CHECK (cash >= 0),
    initial_cash REAL    NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Order ids are UUID text (hyphenated, lower case).
CREATE TABLE orders (
    id            TEXT    PRIMARY KEY,
    symbol        TEXT    NOT NULL,
    side          TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    kind          TEXT    NOT NULL CHECK (kind IN ('MARKET', 'LIMIT')),
    quantity      REAL    NOT NULL,
    limit_price   REAL,
    status        TEXT    NOT NULL CHECK (status IN ('NEW', 'FILLED', 'REJECTED')),
    reject_reason TEXT,
    filled_price  REAL,
    commission    REAL,
    created_at    INTEGER NOT NULL,
    filled_at     INTEGER
);
CREATE INDEX orders_symbol_created ON orders (symbol, created_at);

CREATE TABLE positions (
    symbol        TEXT    PRIMARY KEY,
    quantity      REAL    NOT NULL,
    average_price REAL    NOT NULL,
    realized_pnl  REAL    NOT NULL,
    current_price REAL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE trades (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     TEXT    NOT NULL REFERENCES orders (id),
    symbol       TEXT    NOT NULL,
    side         TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity     REAL    NOT NULL,
    price        REAL    NOT NULL,
    commission   REAL    NOT NULL,
    realized_pnl REAL    NOT NULL,
    executed_at  INTEGER NOT NULL
);
CREATE INDEX trades_symbol_executed ON trades (symbol, executed_at);

CREATE TABLE portfolio_snapshots (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ts              INTEGER NOT NULL,
    cash            REAL    NOT NULL,
    positions_value REAL    NOT NULL,
    total_value     REAL    NOT NULL
);
CREATE INDEX portfolio_snapshots_ts ON portfolio_snapshots (ts, id);

CREATE TABLE processed_messages (
    consumer     TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;
