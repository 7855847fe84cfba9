"""Times the tools our users would otherwise pick on the shapes of quantcore's benches,
for side-by-side figures in one run (the Rust figures come from `cargo bench -p
quantcore-benches --bench lstm` / `--bench iforest` run in the same period).

- PyTorch (CPU): `nn.LSTM(5, 64, batch_first=True)` + `nn.Linear(64, 1)`, window 30:
  one window (batch 1), a batch of 256 windows, one training epoch over 10,000 windows
  in batches of 64 with AdamW (the `lstm` bench's shapes).
- scikit-learn: `IsolationForest(n_estimators=100, max_samples=256, n_jobs=2)` fit and
  score_samples on 1,000,000 x 8 standard normal rows with 1 % shifted by +-6 (the
  `iforest` bench's data).

Usage: python benches/compare/reference_tools.py   (needs torch, scikit-learn, numpy)
"""

import time

import numpy as np


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torch_lstm():
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(2)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(5, 64, batch_first=True)
            self.linear = nn.Linear(64, 1)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.linear(out[:, -1, :])

    model = Model()
    one = torch.randn(1, 30, 5)
    batch = torch.randn(256, 30, 5)
    with torch.inference_mode():
        model(one)
        single = best_of(lambda: model(one), 2000)
        batched = best_of(lambda: model(batch), 50)
    x = torch.randn(10_000, 30, 5)
    y = torch.randn(10_000, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()

    def epoch():
        permutation = torch.randperm(10_000)
        for start in range(0, 10_000, 64):
            index = permutation[start : start + 64]
            optimizer.zero_grad()
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()

    trained = best_of(epoch, 3)
    print(f"torch {torch.__version__} LSTM single window: {single * 1e6:.1f} us")
    print(f"torch LSTM batch of 256 windows: {batched * 1e3:.2f} ms")
    print(f"torch LSTM one epoch, 10,000 windows, batch 64: {trained:.2f} s")


def sklearn_iforest():
    import sklearn
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(42)
    x = rng.standard_normal((1_000_000, 8))
    x[::200] += 6.0
    x[100::200] -= 6.0
    forest = IsolationForest(n_estimators=100, max_samples=256, n_jobs=2, random_state=7)
    fit = best_of(lambda: forest.fit(x), 3)
    score = best_of(lambda: forest.score_samples(x), 3)
    print(f"scikit-learn {sklearn.__version__} IsolationForest 1M x 8: fit {fit:.2f} s, "
          f"score {score:.2f} s, fit + score {fit + score:.2f} s")


if __name__ == "__main__":
    torch_lstm()
    sklearn_iforest()
