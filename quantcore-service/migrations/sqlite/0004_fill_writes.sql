-- fill_writes: the writes of a fill in one statement. SQLite has no stored procedures; an
-- INSERT into this view runs its INSTEAD OF trigger, which writes what the Rust store
-- decided, in this order: the order (FILLED; the validate_order triggers check it and
-- their refusal aborts the statement), the cash, then the position (the
-- update_portfolio_value triggers' snapshot reads the new cash). Each statement is a round
-- trip to the connection's worker thread, and the trade role's fills run one after
-- another, so three writes in one statement make each fill cheaper. It decides nothing:
-- an error undoes the whole statement. The view itself has no rows.
CREATE VIEW fill_writes AS
SELECT NULL AS order_id, NULL AS symbol, NULL AS side, NULL AS kind, NULL AS quantity,
       NULL AS limit_price, NULL AS created_at, NULL AS price, NULL AS commission,
       NULL AS filled_at, NULL AS cash_after, NULL AS position_quantity,
       NULL AS average_price, NULL AS realized_pnl, NULL AS keep_levels, NULL AS stop_loss,
       NULL AS take_profit
 WHERE 0;

-- keep_levels = 1 keeps the position's stored stop_loss and take_profit (a new row gets
-- none); 0 writes the given ones (NULL clears).
CREATE TRIGGER fill_writes_insert
INSTEAD OF INSERT ON fill_writes
BEGIN
    INSERT INTO orders (id, symbol, side, kind, quantity, limit_price, status, filled_price,
                        commission, created_at, filled_at)
    VALUES (NEW.order_id, NEW.symbol, NEW.side, NEW.kind, NEW.quantity, NEW.limit_price,
            'FILLED', NEW.price, NEW.commission, NEW.created_at, NEW.filled_at);
    UPDATE account SET cash = NEW.cash_after, updated_at = NEW.filled_at WHERE id = 1;
    INSERT INTO positions (symbol, quantity, average_price, realized_pnl, current_price,
                           updated_at, stop_loss, take_profit)
    VALUES (NEW.symbol, NEW.position_quantity, NEW.average_price, NEW.realized_pnl, NEW.price,
            NEW.filled_at, CASE WHEN NEW.keep_levels THEN NULL ELSE NEW.stop_loss END,
            CASE WHEN NEW.keep_levels THEN NULL ELSE NEW.take_profit END)
    ON CONFLICT (symbol) DO UPDATE SET quantity = excluded.quantity,
        average_price = excluded.average_price, realized_pnl = excluded.realized_pnl,
        current_price = excluded.current_price, updated_at = excluded.updated_at,
        stop_loss = CASE WHEN NEW.keep_levels THEN positions.stop_loss
                         ELSE excluded.stop_loss END,
        take_profit = CASE WHEN NEW.keep_levels THEN positions.take_profit
                           ELSE excluded.take_profit END;
END;
