"""LRPCA: AccAltProj as its special case, layer-wise training to exact recovery, any depth."""

import pytest
import torch

from deepunfold.solvers.accaltproj import accaltproj
from deepunfold.train.checkpoint import load_model, save_model
from deepunfold.unfolded.lrpca import (
    LRPCA,
    predict,
    randomized_svd,
    relative_error,
    synthetic_problems,
    train_lrpca,
)


def problems(b, n, seed, r=5, alpha=0.1):
    return synthetic_problems(b, n, r, alpha, generator=torch.Generator().manual_seed(seed))


def worst(est, true):
    return float(relative_error(est, true).max())


def test_accaltproj_schedule_reproduces_accaltproj_iterates(one_thread):
    y, _, _ = problems(3, 90, 0)
    y = torch.cat([y, problems(1, 90, 1, r=3, alpha=0.3)[0]])
    model = LRPCA(0, schedule="accaltproj")
    iterates = model(y, 5, 12, iterates=True)
    assert len(iterates) == 13
    for k in (0, 1, 2, 5, 12):
        ref = accaltproj(y, 5, tol=0.0, max_iter=k)
        low, sparse = iterates[k]
        # the same arithmetic up to float64 rounding (batched vs per-active-set copies)
        assert torch.allclose(low, ref.low, rtol=0, atol=1e-12)
        assert torch.allclose(sparse, ref.sparse, rtol=0, atol=1e-12)
    # the last iterate is what forward returns without iterates
    low, sparse = model(y, 5, 12)
    assert torch.equal(low, iterates[-1][0]) and torch.equal(sparse, iterates[-1][1])


def test_randomized_svd_is_reproducible_and_accurate():
    y, low, _ = problems(2, 80, 3)
    a, b = randomized_svd(low, 5), randomized_svd(low, 5)
    assert torch.equal(a.u, b.u)
    assert worst(a.matrix(), low) < 1e-12


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    n, rank = 200, 5  # the paper's rank and outlier fraction, 10 layers, n = 200 (~11 s)
    val = problems(2, n, 1)

    def sample(step):
        return problems(1, n, 1000 + step)

    model = LRPCA(10, threshold_decay=0.4)
    history = train_lrpca(model, sample, val, rank, layer_steps=12, finetune_steps=12, lr=0.05)
    return model, history


def test_layerwise_training_then_exact_recovery(trained):
    model, history = trained
    # one layer-wise and (from stage 1) one fine-tuning record per stage
    assert [(h["stage"], h["phase"]) for h in history[:3]] == [
        (0, "layer"), (1, "layer"), (1, "finetune"),
    ]  # fmt: skip
    assert history[-1]["val_loss"] < history[0]["val_loss"] * 1e-4
    y, low, sparse = problems(4, 200, 99)
    with torch.no_grad():
        lh, sh = model(y, 5)
    ref = accaltproj(y, 5, tol=0.0, max_iter=model.n_layers)
    # at its trained depth, the learned model is ahead of AccAltProj's same iteration count
    assert worst(lh, low) < worst(ref.low, low)
    assert worst(sh, sparse) < worst(ref.sparse, sparse)
    # past the trained layers (extrapolated thresholds) it recovers L and S exactly; measured:
    # below 1e-6 from 22 layers on (AccAltProj: 16 iterations), 2.1e-5 / 6.7e-5 at 10 layers
    # (AccAltProj 4.8e-5 / 4.4e-4)
    with torch.no_grad():
        lh, sh = model(y, 5, 30)
    assert worst(lh, low) < 1e-6 and worst(sh, sparse) < 1e-6


def test_size_free_scale_equivariant_and_batched(trained):
    model, _ = trained
    y, _, _ = problems(3, 160, 7)  # a size it was not trained on
    with torch.no_grad():
        lh, sh = model(y, 5)
        l2, s2 = model(10.0 * y, 5)
        lb, sb = predict(model, y, 5, batch_size=2)
        l1, _ = model(y[1:2], 5)
    assert torch.allclose(l2, 10.0 * lh, rtol=1e-9, atol=1e-12)
    assert torch.allclose(s2, 10.0 * sh, rtol=1e-9, atol=1e-12)
    assert torch.allclose(lb, lh, rtol=0, atol=1e-12)
    assert torch.allclose(l1[0], lh[1], rtol=0, atol=1e-12)


def test_any_depth_and_checkpoint(trained, tmp_path):
    model, _ = trained
    z = model.thresholds(12)
    assert len(z) == 14
    assert torch.allclose(z[: model.n_layers + 2], model.log_zeta.exp())
    rho = model.tail_decay()
    assert 0.5 <= rho <= 1 and torch.allclose(z[-1], z[-2] * rho)
    assert torch.equal(model.steps(12)[-1], model.step[-1])
    save_model(model, tmp_path / "m.pt")
    again = load_model(tmp_path / "m.pt", LRPCA)
    y, _, _ = problems(1, 60, 5)
    with torch.no_grad():
        assert torch.equal(again(y, 5, 10)[0], model(y, 5, 10)[0])


def test_float32_and_bad_input():
    y, low, _ = problems(2, 64, 11)
    out = LRPCA(4)(y.float(), 5)
    assert out[0].dtype == torch.float32
    with pytest.raises(ValueError, match="batch of matrices"):
        LRPCA(2)(y[0], 5)
    with pytest.raises(ValueError, match="rank must be"):
        LRPCA(2)(y, 40)
    with pytest.raises(ValueError, match="update must be"):
        LRPCA(2, update="newton")
    with pytest.raises(ValueError, match="learned thresholds"):
        train_lrpca(LRPCA(1, schedule="accaltproj"), None, (y, low, low), 5)
