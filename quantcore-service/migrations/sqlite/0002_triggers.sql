-- The design's triggers in SQLite's trigger language, with the same effect and messages as
-- the PL/pgSQL ones. (SQLite has no stored procedures: check_available_funds,
-- calculate_position_pnl and get_portfolio_stats are computed by the Rust store.)

-- validate_order. NaN binds as NULL in SQLite, so IS NULL covers it; the Rust store
-- rejects non-finite numbers before they get here.
CREATE TRIGGER validate_order_quantity
BEFORE INSERT ON orders
WHEN NEW.quantity IS NULL OR NOT (NEW.quantity > 0)
BEGIN
    SELECT RAISE(ABORT, 'invalid order: quantity must be positive');
END;

CREATE TRIGGER validate_order_limit_price
BEFORE INSERT ON orders
WHEN NEW.kind = 'LIMIT' AND (NEW.limit_price IS NULL OR NOT (NEW.limit_price > 0))
BEGIN
    SELECT RAISE(ABORT, 'invalid order: a limit order needs a positive limit price');
END;

-- update_portfolio_value, one trigger per event (SQLite triggers take one event each).
CREATE TRIGGER update_portfolio_value_insert
AFTER INSERT ON positions
BEGIN
    INSERT INTO portfolio_snapshots (ts, cash, positions_value, total_value)
    SELECT NEW.updated_at, a.cash, p.v, a.cash + p.v
      FROM account a,
           (SELECT COALESCE(SUM(quantity * COALESCE(current_price, average_price)), 0.0) AS v
              FROM positions) p
     WHERE a.id = 1;
END;

CREATE TRIGGER update_portfolio_value_update
AFTER UPDATE ON positions
BEGIN
    INSERT INTO portfolio_snapshots (ts, cash, positions_value, total_value)
    SELECT NEW.updated_at, a.cash, p.v, a.cash + p.v
      FROM account a,
           (SELECT COALESCE(SUM(quantity * COALESCE(current_price, average_price)), 0.0) AS v
              FROM positions) p
     WHERE a.id = 1;
END;

CREATE TRIGGER update_portfolio_value_delete
AFTER DELETE ON positions
BEGIN
    INSERT INTO portfolio_snapshots (ts, cash, positions_value, total_value)
    SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER), a.cash, p.v,
           a.cash + p.v
      FROM account a,
           (SELECT COALESCE(SUM(quantity * COALESCE(current_price, average_price)), 0.0) AS v
              FROM positions) p
     WHERE a.id = 1;
END;
