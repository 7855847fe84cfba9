"""Portfolio, orders and risk checks, numbers worked by hand."""

from __future__ import annotations

import pytest

import quantcore as qc

BAR = {"timestamp": 60, "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": 0.0}


def test_buy_mark_sell_books_cash_and_pnl() -> None:
    pf = qc.Portfolio(10_000.0, symbols=["AAPL"])
    model = qc.ExecutionModel(commission_rate=0.001)
    buy = qc.Order.market("AAPL", "buy", 10, id=1)
    out = pf.execute(buy, BAR, 100.0, execution=model)
    assert out["status"] == "filled" and buy.status == "filled" and buy.fill_price == 100.0
    assert pf.cash == pytest.approx(10_000 - 1_000 - 1.0)
    pf.mark("AAPL", 110.0)
    assert pf.equity == pytest.approx(8_999 + 1_100) and pf.unrealized_pnl == pytest.approx(100.0)
    sell = qc.Order.market("AAPL", "sell", 10, id=2)
    out = pf.execute(sell, {**BAR, "timestamp": 120, "close": 110.0, "high": 111.0}, 110.0, execution=model)
    trip = out["round_trip"]
    assert trip["gross_pnl"] == pytest.approx(100.0) and trip["pnl"] == pytest.approx(97.9)
    assert pf.cash == pytest.approx(10_097.9) and pf.round_trips()[0]["symbol"] == "AAPL"
    assert pf.position("AAPL")["quantity"] == 0.0


def test_rejections_are_results_from_execute_and_errors_from_check() -> None:
    pf = qc.Portfolio(1_000.0, symbols=["X"])
    pf.execute(qc.Order.market("X", "buy", 5), BAR, 100.0)
    more = qc.Order.market("X", "buy", 6, id=7)
    out = pf.execute(more, BAR, 100.0)
    assert out["status"] == "rejected" and more.status == "rejected"
    assert "insufficient cash" in out["violation"] and "600" in more.reject_reason
    again = qc.Order.market("X", "buy", 6, id=8)
    with pytest.raises(qc.OrderRejectedError) as info:
        pf.check(again, 100.0)
    err = info.value
    assert err.details["violation"] == "insufficient_cash" and err.details["excess"] == pytest.approx(100.0)
    assert err.details["order_id"] == 8
    limits = qc.RiskLimits(max_order_notional=200.0)
    with pytest.raises(qc.OrderRejectedError) as info:
        pf.check(qc.Order.market("X", "buy", 3), 100.0, limits=limits)
    assert info.value.details["violation"] == "order_too_large" and info.value.details["excess"] == pytest.approx(100.0)


def test_invalid_orders_and_configs() -> None:
    pf = qc.Portfolio(1_000.0, symbols=["X"])
    with pytest.raises(qc.OrderError) as info:
        pf.execute(qc.Order.market("X", "buy", 0.5), BAR, 100.0)
    assert info.value.field == "quantity" and info.value.value == 0.5
    with pytest.raises(qc.OrderError) as info:
        pf.execute(qc.Order.market("Y", "buy", 1), BAR, 100.0)
    assert info.value.kind == "unknown_symbol"
    with pytest.raises(qc.InvalidParameterError) as info:
        qc.RiskLimits(max_position_fraction=0.0, max_drawdown=2.0)
    assert "max_drawdown" in info.value.details["problems"] and info.value.field == "max_position_fraction"
    with pytest.raises(ValueError, match="side"):
        qc.Order.market("X", "hold", 1)
    limit = qc.Order.limit("X", "buy", 1, 95.0)
    assert pf.execute(limit, BAR, 100.0)["status"] == "pending" and limit.status == "new"
    limit.cancel()
    assert limit.status == "cancelled"
    with pytest.raises(qc.OrderError, match="not open"):
        limit.cancel()
