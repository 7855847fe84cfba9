-- quantcore service schema, PostgreSQL. Prices and quantities are DOUBLE PRECISION (f64,
-- as in the core crate); times are TIMESTAMPTZ.

CREATE TABLE market_data (
    symbol      TEXT             NOT NULL,
    ts          TIMESTAMPTZ      NOT NULL,
    open        DOUBLE PRECISION NOT NULL,
    high        DOUBLE PRECISION NOT NULL,
    low         DOUBLE PRECISION NOT NULL,
    close       DOUBLE PRECISION NOT NULL,
    volume      DOUBLE PRECISION NOT NULL,
    ingested_at TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, ts)
);

CREATE TABLE predictions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol          TEXT             NOT NULL,
    ts              TIMESTAMPTZ      NOT NULL,
    current_price   DOUBLE PRECISION NOT NULL,
    predicted_price DOUBLE PRECISION NOT NULL,
    model           TEXT             NOT NULL,
    created_at      TIMESTAMPTZ      NOT NULL DEFAULT now()
);
CREATE INDEX predictions_symbol_ts ON predictions (symbol, ts);

CREATE TABLE signals (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol          TEXT             NOT NULL,
    ts              TIMESTAMPTZ      NOT NULL,
    action          TEXT             NOT NULL CHECK (action IN ('BUY', 'SELL', 'HOLD')),
    confidence      DOUBLE PRECISION NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    price           DOUBLE PRECISION NOT NULL,
    predicted_price DOUBLE PRECISION NOT NULL,
    stop_loss       DOUBLE PRECISION,
    take_profit     DOUBLE PRECISION,
    expected_return DOUBLE PRECISION NOT NULL,
    created_at      TIMESTAMPTZ      NOT NULL DEFAULT now()
);
CREATE INDEX signals_symbol_ts ON signals (symbol, ts);

CREATE TABLE anomalies (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol     TEXT             NOT NULL,
    ts         TIMESTAMPTZ      NOT NULL,
    score      DOUBLE PRECISION NOT NULL,
    is_anomaly BOOLEAN          NOT NULL,
    created_at TIMESTAMPTZ      NOT NULL DEFAULT now()
);
CREATE INDEX anomalies_symbol_ts ON anomalies (symbol, ts);

-- One row: the paper account. Cash can never go negative, whatever the code above does.
CREATE TABLE account (
    id           SMALLINT         PRIMARY KEY CHECK (id = 1),
    cash         DOUBLE PRECISION NOT NULL CHECK (cash >= 0),
    initial_cash DOUBLE PRECISION NOT NULL,
    updated_at   TIMESTAMPTZ      NOT NULL
);

-- Quantity and limit price are checked by the validate_order trigger (0002).
CREATE TABLE orders (
    id            UUID             PRIMARY KEY,
    symbol        TEXT             NOT NULL,
    side          TEXT             NOT NULL CHECK (side IN ('BUY', 'SELL')),
    kind          TEXT             NOT NULL CHECK (kind IN ('MARKET', 'LIMIT')),
    quantity      DOUBLE PRECISION NOT NULL,
    limit_price   DOUBLE PRECISION,
    status        TEXT             NOT NULL CHECK (status IN ('NEW', 'FILLED', 'REJECTED')),
    reject_reason TEXT,
    filled_price  DOUBLE PRECISION,
    commission    DOUBLE PRECISION,
    created_at    TIMESTAMPTZ      NOT NULL,
    filled_at     TIMESTAMPTZ
);
CREATE INDEX orders_symbol_created ON orders (symbol, created_at);

CREATE TABLE positions (
    symbol        TEXT             PRIMARY KEY,
    quantity      DOUBLE PRECISION NOT NULL,
    average_price DOUBLE PRECISION NOT NULL,
    realized_pnl  DOUBLE PRECISION NOT NULL,
    current_price DOUBLE PRECISION,
    updated_at    TIMESTAMPTZ      NOT NULL
);

CREATE TABLE trades (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     UUID             NOT NULL REFERENCES orders (id),
    symbol       TEXT             NOT NULL,
    side         TEXT             NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity     DOUBLE PRECISION NOT NULL,
    price        DOUBLE PRECISION NOT NULL,
    commission   DOUBLE PRECISION NOT NULL,
    realized_pnl DOUBLE PRECISION NOT NULL,
    executed_at  TIMESTAMPTZ      NOT NULL
);
CREATE INDEX trades_symbol_executed ON trades (symbol, executed_at);

CREATE TABLE portfolio_snapshots (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts              TIMESTAMPTZ      NOT NULL,
    cash            DOUBLE PRECISION NOT NULL,
    positions_value DOUBLE PRECISION NOT NULL,
    total_value     DOUBLE PRECISION NOT NULL
);
CREATE INDEX portfolio_snapshots_ts ON portfolio_snapshots (ts, id);

CREATE TABLE processed_messages (
    consumer     TEXT        NOT NULL,
    message_id   UUID        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
