-- The design's stored procedures and triggers, PL/pgSQL.
-- Error codes raised here: QC001 invalid order (the store maps it to StoreError::InvalidOrder).

-- validate_order: before insert on orders. Quantity must be positive (and finite: NaN
-- compares greater than every number in PostgreSQL), limit orders need a positive limit
-- price. The messages equal the SQLite trigger's, so both backends report the same reason.
CREATE FUNCTION validate_order() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.quantity IS NULL OR NOT (NEW.quantity > 0)
       OR NEW.quantity = 'NaN'::float8 OR NEW.quantity = 'Infinity'::float8 THEN
        RAISE EXCEPTION USING ERRCODE = 'QC001',
            MESSAGE = 'invalid order: quantity must be positive';
    END IF;
    IF NEW.kind = 'LIMIT' AND (NEW.limit_price IS NULL OR NOT (NEW.limit_price > 0)
       OR NEW.limit_price = 'NaN'::float8 OR NEW.limit_price = 'Infinity'::float8) THEN
        RAISE EXCEPTION USING ERRCODE = 'QC001',
            MESSAGE = 'invalid order: a limit order needs a positive limit price';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER validate_order
    BEFORE INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION validate_order();

-- check_available_funds: whether an order can be paid for (buy: cash >= quantity * price)
-- or delivered (sell: quantity held >= quantity). Locks the row it reads. The caller's
-- transaction holds the account lock already; the lock here makes the function safe on
-- its own too.
CREATE FUNCTION check_available_funds(
    p_order_id UUID,
    p_symbol   TEXT,
    p_side     TEXT,
    p_quantity DOUBLE PRECISION,
    p_price    DOUBLE PRECISION
) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    v_cash DOUBLE PRECISION;
    v_held DOUBLE PRECISION;
BEGIN
    IF p_side = 'BUY' THEN
        SELECT cash INTO v_cash FROM account WHERE id = 1 FOR UPDATE;
        RETURN v_cash IS NOT NULL AND v_cash >= p_quantity * p_price;
    ELSIF p_side = 'SELL' THEN
        SELECT quantity INTO v_held FROM positions WHERE symbol = p_symbol FOR UPDATE;
        RETURN COALESCE(v_held, 0) >= p_quantity;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'QC001',
        MESSAGE = format('invalid order: unknown side %s of order %s', p_side, p_order_id);
END
$$;

-- update_portfolio_value: after every change of positions, a snapshot of cash, the
-- positions' value (quantity times the last mark, the average price before any mark) and
-- their total. The snapshot time is the position's updated_at (the fill or mark time the
-- service gives, so a replay faster than real time keeps its own clock); now() on delete.
CREATE FUNCTION update_portfolio_value() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_cash      DOUBLE PRECISION;
    v_positions DOUBLE PRECISION;
    v_ts        TIMESTAMPTZ;
BEGIN
    SELECT cash INTO v_cash FROM account WHERE id = 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT COALESCE(SUM(quantity * COALESCE(current_price, average_price)), 0)
      INTO v_positions FROM positions;
    IF TG_OP = 'DELETE' THEN
        v_ts := now();
    ELSE
        v_ts := NEW.updated_at;
    END IF;
    INSERT INTO portfolio_snapshots (ts, cash, positions_value, total_value)
    VALUES (v_ts, v_cash, v_positions, v_cash + v_positions);
    RETURN NULL;
END
$$;

CREATE TRIGGER update_portfolio_value
    AFTER INSERT OR UPDATE OR DELETE ON positions
    FOR EACH ROW EXECUTE FUNCTION update_portfolio_value();

-- calculate_position_pnl: realized, unrealized (quantity * (mark - average price)) and
-- total PnL of one position; no row when there is no position.
CREATE FUNCTION calculate_position_pnl(p_symbol TEXT)
RETURNS TABLE (realized_pnl DOUBLE PRECISION, unrealized_pnl DOUBLE PRECISION,
               total_pnl DOUBLE PRECISION)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT p.realized_pnl,
           p.quantity * (COALESCE(p.current_price, p.average_price) - p.average_price),
           p.realized_pnl
             + p.quantity * (COALESCE(p.current_price, p.average_price) - p.average_price)
      FROM positions p
     WHERE p.symbol = p_symbol;
END
$$;

-- get_portfolio_stats: statistics over the snapshots with p_start <= ts <= p_end, ordered
-- by (ts, id), each snapshot one period (empyrical conventions):
--   returns r_i = v_i / v_{i-1} - 1 (undefined after a zero value: skipped),
--   total_return = v_n / v_0 - 1 (NULL with fewer than 2 snapshots),
--   volatility = stddev_samp(r) * sqrt(periods_per_year) (NULL with fewer than 2 returns),
--   sharpe_ratio = avg(r) / stddev_samp(r) * sqrt(periods_per_year) (NULL for zero variance),
--   max_drawdown = min(v_t / running max - 1), a fraction <= 0, the first snapshot being
--   the first peak (NULL with fewer than 2 snapshots).
CREATE FUNCTION get_portfolio_stats(
    p_start            TIMESTAMPTZ,
    p_end              TIMESTAMPTZ,
    p_periods_per_year DOUBLE PRECISION DEFAULT 252
) RETURNS TABLE (
    snapshots    BIGINT,
    start_value  DOUBLE PRECISION,
    end_value    DOUBLE PRECISION,
    total_return DOUBLE PRECISION,
    volatility   DOUBLE PRECISION,
    sharpe_ratio DOUBLE PRECISION,
    max_drawdown DOUBLE PRECISION
)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    WITH ordered AS (
        SELECT s.total_value AS v,
               row_number() OVER (ORDER BY s.ts, s.id) AS rn
          FROM portfolio_snapshots s
         WHERE s.ts >= p_start AND s.ts <= p_end
    ), stepped AS (
        SELECT o.v, o.rn,
               o.v / NULLIF(lag(o.v) OVER (ORDER BY o.rn), 0) - 1 AS r,
               max(o.v) OVER (ORDER BY o.rn ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                 AS peak
          FROM ordered o
    ), agg AS (
        SELECT count(*) AS n,
               avg(st.r) AS mean_r,
               stddev_samp(st.r) AS sd_r,
               count(st.r) AS n_r,
               min(st.v / NULLIF(st.peak, 0) - 1) AS mdd
          FROM stepped st
    ), ends AS (
        SELECT (SELECT o.v FROM ordered o ORDER BY o.rn ASC LIMIT 1) AS first_v,
               (SELECT o.v FROM ordered o ORDER BY o.rn DESC LIMIT 1) AS last_v
    )
    SELECT a.n,
           e.first_v,
           e.last_v,
           CASE WHEN a.n >= 2 THEN e.last_v / NULLIF(e.first_v, 0) - 1 END,
           CASE WHEN a.n_r >= 2 THEN a.sd_r * sqrt(p_periods_per_year) END,
           CASE WHEN a.n_r >= 2 AND a.sd_r > 0
                THEN a.mean_r / a.sd_r * sqrt(p_periods_per_year) END,
           CASE WHEN a.n >= 2 THEN a.mdd END
      FROM agg a CROSS JOIN ends e;
END
$$;
