-- Stop-loss and take-profit levels of an open position, set by the fill that opened or
-- increased it (from the signal's levels) and cleared when the position closes. The
-- position updater (roles::mark_role) sells through them. NULL: no level.
ALTER TABLE positions ADD COLUMN stop_loss DOUBLE PRECISION;
ALTER TABLE positions ADD COLUMN take_profit DOUBLE PRECISION;
