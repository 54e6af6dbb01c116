"""The shared training loop (fit, BatchSampler, EarlyStopping, accuracy) and the one checkpoint
format (save_model / load_model).

Each trainer of the library is checked bit for bit against a straightforward loop written
out here (what the trainers did before they were ports of fit): same weights, same history.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepunfold.train.checkpoint import Configurable, load_model, read_checkpoint, save_model
from deepunfold.train.loop import (
    BatchSampler,
    EarlyStopping,
    NonFiniteError,
    accuracy,
    check_finite,
    fit,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _set(model, value):
    with torch.no_grad():
        model.weight.fill_(value)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------- early stopping


def test_early_stopping_restores_the_first_best_weights():
    model = torch.nn.Linear(2, 1, bias=False)
    _set(model, 0.0)
    stopper = EarlyStopping(model, initial_loss=5.0, patience=2)
    # (weight after the epoch, its validation loss): best is 3.0 at weight 2; the tie at
    # weight 3 does not replace it, and the second evaluation without improvement stops
    improved = []
    for weight, loss in [(1.0, 4.0), (2.0, 3.0), (3.0, 3.0)]:
        _set(model, weight)
        improved.append(stopper.update(loss))
        assert not stopper.stop
    _set(model, 4.0)
    assert stopper.update(3.5) is False and stopper.stop
    assert improved == [True, True, False] and stopper.best == 3.0
    stopper.restore()
    assert float(model.weight.detach()[0, 0]) == 2.0


def test_early_stopping_without_improvement_restores_the_initial_weights():
    model = torch.nn.Linear(2, 1)
    start = _state(model)
    stopper = EarlyStopping(model, initial_loss=1.0, patience=1)
    _set(model, 7.0)
    assert stopper.update(1.0) is False and stopper.stop
    stopper.restore()
    assert _same(model.state_dict(), start)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(model, 1.0, patience=0)


def test_check_finite():
    check_finite(1.0, "loss")
    check_finite(torch.ones(3), "grad")
    with pytest.raises(NonFiniteError, match="loss of layer 2 is not finite at step 7"):
        check_finite(math.nan, "loss of layer 2", step=7)
    with pytest.raises(NonFiniteError):
        check_finite(torch.tensor([1.0, math.inf]), "grad")


# ------------------------------------------------------------------------------ batching


def test_sampler_epoch_mode_is_one_permutation_per_epoch_with_a_partial_last_batch():
    s = BatchSampler(10, 4, seed=3)
    gen = torch.Generator().manual_seed(3)
    for _ in range(2):
        order = torch.randperm(10, generator=gen)
        batches = list(s.epoch())
        assert [len(b) for b in batches] == [4, 4, 2]
        assert torch.equal(torch.cat(batches), order)
    assert s.steps_per_epoch() == 3


def test_sampler_stream_reshuffles_when_fewer_than_a_batch_remain():
    s = BatchSampler(10, 4, seed=1, mode="stream")
    gen = torch.Generator().manual_seed(1)
    expected = []
    for _ in range(3):  # 10 samples give two batches of 4 per permutation
        order = torch.randperm(10, generator=gen)
        expected += [order[:4], order[4:8]]
    got = [s.next() for _ in range(6)]
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    # a batch larger than the data is the whole (shuffled) data
    big = BatchSampler(3, 8, seed=0, mode="stream")
    assert sorted(big.next().tolist()) == [0, 1, 2]
    fresh = BatchSampler(10, 4, seed=2, mode="fresh")
    gen = torch.Generator().manual_seed(2)
    assert torch.equal(fresh.next(), torch.randperm(10, generator=gen)[:4])
    with pytest.raises(RuntimeError, match="epoch"):
        fresh.epoch().__next__()
    with pytest.raises(ValueError, match="mode"):
        BatchSampler(10, 4, mode="shuffle")


def _regression(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(n, 1, generator=g)


def _mse(model, batch):
    return F.mse_loss(model(batch[0]), batch[1])


def test_fit_epoch_and_step_batching_see_the_sampler_indices():
    x, y = _regression(10)
    seen = []

    def loss_fn(model, batch):
        seen.append(batch[2].clone())
        return _mse(model, batch)

    data = (x, y, torch.arange(10))
    res = fit(torch.nn.Linear(3, 1), data, loss_fn, epochs=2, batch_size=4, seed=5)
    ref = BatchSampler(10, 4, seed=5)
    expected = [b for _ in range(2) for b in ref.epoch()]
    assert res.steps == 6 and res.epochs == 2 and len(res.step_losses) == 6
    assert all(torch.equal(a, b) for a, b in zip(seen, expected, strict=True))
    seen.clear()
    res = fit(torch.nn.Linear(3, 1), data, loss_fn, max_steps=5, batch_size=4, seed=5)
    ref = BatchSampler(10, 4, seed=5, mode="stream")
    assert res.steps == 5 and all(torch.equal(a, ref.next()) for a in seen)
    with pytest.raises(ValueError, match="exactly one"):
        fit(torch.nn.Linear(3, 1), data, loss_fn, epochs=1, max_steps=1, batch_size=4)


def test_fit_is_reproducible_from_its_seed_and_the_same_on_the_cpu_device():
    x, y = _regression()

    def run(seed, **kw):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        res = fit(model, (x, y), _mse, epochs=3, batch_size=7, seed=seed, lr=1e-2, **kw)
        return _state(model), res.step_losses

    (s0, l0), (s1, l1), (s2, _) = run(0), run(0), run(1)
    assert _same(s0, s1) and l0 == l1 and not _same(s0, s2)
    for device in ("cpu", torch.device("cpu")):
        s, losses = run(0, device=device)
        assert _same(s, s0) and losses == l0


def test_fit_early_stopping_restores_the_best_evaluation():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    scores = iter([5.0, 4.0, 3.0, 3.5, 3.0, 9.0, 1.0])  # initial, then one per epoch
    snapshots = []

    def evaluate(m):
        snapshots.append(_state(m))
        return {"val": next(scores)}

    res = fit(
        model,
        (x, y),
        _mse,
        epochs=10,
        batch_size=8,
        lr=1e-2,
        evaluate=evaluate,
        eval_initial=True,
        monitor="val",
        patience=2,
    )
    # best 3.0 after epoch 2; 3.5 and the tie 3.0 are two evaluations without improvement
    assert res.stopped_early and res.epochs == 4 and res.best == 3.0
    assert [r["best"] for r in res.history] == [True, True, True, False, False]
    assert res.best_record == 2 and res.best_epoch == 2 and res.history[0]["train_loss"] is None
    assert _same(model.state_dict(), snapshots[2])


def test_fit_keep_best_without_stopping_and_maximize():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    scores = iter([0.5, 0.9, 0.7, 0.9, 0.6])
    snapshots = []

    def evaluate(m):
        snapshots.append(_state(m))
        return {"acc": next(scores)}

    res = fit(
        model,
        (x, y),
        _mse,
        epochs=5,
        batch_size=8,
        lr=1e-2,
        evaluate=evaluate,
        monitor="acc",
        maximize=True,
    )
    assert not res.stopped_early and res.epochs == 5 and res.best == 0.9 and res.best_epoch == 2
    assert _same(model.state_dict(), snapshots[1])  # the first of the tied best


def test_fit_step_mode_evaluates_every_n_steps_and_at_the_end():
    x, y = _regression()
    res = fit(
        torch.nn.Linear(3, 1),
        (x, y),
        _mse,
        max_steps=7,
        batch_size=8,
        evaluate=lambda m: {"v": 0.0},
        eval_every=3,
    )
    assert [r["step"] for r in res.history] == [3, 6, 7]
    assert all("best" not in r for r in res.history)


def test_fit_with_a_non_finite_loss_raises_and_leaves_no_checkpoint(tmp_path):
    x, y = _regression()
    y = y.clone()
    y[3] = math.nan
    model = _Tiny(3, 1)
    path = tmp_path / "model.pt"
    with pytest.raises(NonFiniteError, match="training loss of tiny is not finite at step 1"):
        fit(model, (x, y), _mse, epochs=1, batch_size=len(x), name="tiny")
        save_model(model, path)
    assert list(tmp_path.iterdir()) == []


def test_accuracy_does_not_depend_on_the_batch_size_and_draws_its_noise_from_the_seed():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x, y = torch.randn(23, 1, 2, 2), torch.randint(0, 3, (23,))
    a500, l500 = accuracy(model, x, y)
    a7, l7 = accuracy(model, x, y, batch_size=7)
    assert a500 == a7 and l500 == pytest.approx(l7, rel=1e-6)
    n1 = accuracy(model, x, y, noise_std=0.5, seed=1)
    assert n1 == accuracy(model, x, y, noise_std=0.5, seed=1)
    assert n1[1] != l500


# ------------------------------------------------------------- the trainers, bit for bit


def test_lista_layerwise_training_is_the_straightforward_loop():
    from deepunfold.data.sparse_signals import make_problem
    from deepunfold.ops.metrics import fraction_zeros, nmse_db
    from deepunfold.unfolded.lista import TrainConfig, build_model, train_layerwise

    p = make_problem(
        m=10, n=20, sparsity=0.8, noise_std=0.01, n_train=50, n_val=20, n_test=20, seed=1
    )
    cfg = TrainConfig(batch_size=16, lr=0.05, max_steps=8, val_every=2, patience=1, seed=4)
    (xt, zt), (xv, zv) = p.split("train"), p.split("val")

    def reference(model):
        gen = torch.Generator().manual_seed(cfg.seed)
        order, pos, rows, step = torch.randperm(len(xt), generator=gen), 0, [], 0
        for t in range(model.n_layers):
            d = t + 1
            for stage, lr in enumerate([cfg.lr] + [cfg.lr * f for f in cfg.lr_decays]):
                params = (
                    model.layer_parameters(t)
                    if stage == 0
                    else [q for s in range(d) for q in model.layer_parameters(s)]
                )
                opt = torch.optim.Adam(params, lr=lr)
                with torch.no_grad():
                    stop = EarlyStopping(model, nmse_db(model(xv, d), zv), cfg.patience)
                err_sum = ref_sum = 0.0
                for s in range(1, cfg.max_steps + 1):
                    if pos + 16 > len(order):
                        order, pos = torch.randperm(len(xt), generator=gen), 0
                    idx = order[pos : pos + 16]
                    pos += 16
                    if stage or t == 0:
                        out = model(xt[idx], d)
                    else:
                        with torch.no_grad():
                            prev = model(xt[idx], t)
                        out = model.layer(t, xt[idx], prev)
                    err = (out - zt[idx]).pow(2).sum(-1)
                    opt.zero_grad()
                    err.mean().backward()
                    opt.step()
                    err_sum += float(err.detach().sum())
                    ref_sum += float(zt[idx].pow(2).sum())
                    if s % cfg.val_every == 0 or s == cfg.max_steps:
                        with torch.no_grad():
                            val = nmse_db(model(xv, d), zv)
                        rows.append((d, stage, step + s, 10 * math.log10(err_sum / ref_sum), val))
                        err_sum = ref_sum = 0.0
                        stop.update(val)
                        if stop.stop:
                            break
                step += s
                stop.restore()
        return rows

    for name in ("lista", "alista"):
        a = build_model(name, p.A, 2, lam=0.2, support_selection=name == "alista")
        b = build_model(name, p.A, 2, lam=0.2, support_selection=name == "alista")
        res = train_layerwise(a, p.split("train"), p.split("val"), cfg)
        rows = reference(b)
        got = [
            (r["layer"], r["stage"], r["step"], r["train_nmse_db"], r["val_nmse_db"])
            for r in res.history
        ]
        assert got == rows and len(rows) < 2 * 3 * 4  # some stage stopped early
        assert _same(a.state_dict(), b.state_dict())
        layer = res.metrics["layers"][-1]
        with torch.no_grad():
            assert layer["val_fraction_zeros"] == fraction_zeros(b(xv))


def _rpca_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 1, 6, 2, generator=g) @ torch.randn(n, 1, 2, 6, generator=g)
    sparse = torch.randn(n, 1, 6, 6, generator=g) * (torch.rand(n, 1, 6, 6, generator=g) < 0.1)
    return low + sparse, low, sparse


def test_rpca_training_is_the_straightforward_loop():
    from deepunfold.unfolded.rpca import UnfoldedRPCA, rpca_loss, train_unfolded

    train, val = _rpca_data(13, 0), _rpca_data(5, 1)

    def mean_loss(model, data):
        with torch.no_grad():
            return sum(
                float(rpca_loss(*model(data[0][i : i + 4]), data[1][i : i + 4], data[2][i : i + 4]))
                * len(data[0][i : i + 4])
                for i in range(0, len(data[0]), 4)
            ) / len(data[0])

    def reference(model):
        gen, opt = torch.Generator().manual_seed(3), torch.optim.Adam(model.parameters(), lr=0.1)
        hist = [(0, mean_loss(model, train), mean_loss(model, val))]
        stop = EarlyStopping(model, hist[0][2], 2)
        for epoch in range(1, 9):
            order, total = torch.randperm(13, generator=gen), 0.0
            for i in range(0, 13, 4):
                b = order[i : i + 4]
                loss = rpca_loss(*model(train[0][b]), train[1][b], train[2][b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            hist.append((epoch, total / 13, mean_loss(model, val)))
            stop.update(hist[-1][2])
            if stop.stop:
                break
        stop.restore()
        return hist

    a, b = (UnfoldedRPCA(2, "l12", "frame", 3, 0.5, 0.5, 0.2) for _ in range(2))
    res = train_unfolded(a, train, val, epochs=8, batch_size=4, lr=0.1, patience=2, seed=3)
    assert [(r["epoch"], r["train_loss"], r["val_loss"]) for r in res.history] == reference(b)
    assert _same(a.state_dict(), b.state_dict())


def _images(n, seed, size=8):
    from deepunfold.data.images import ImageData

    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3 * n) % 3
    x = torch.randn(3 * n, 1, size, size, generator=g) + y[:, None, None, None].float()
    return ImageData(x[:n], y[:n], x[n : 2 * n], y[n : 2 * n], x[2 * n :], y[2 * n :], "toy")


def test_image_classifier_training_is_the_straightforward_loop():
    from deepunfold.unfolded.csc import _augment, resnet, train_image_classifier

    data = _images(20, 0)

    def build():
        torch.manual_seed(0)  # the blocks' default initialisation draws from the global state
        return resnet("sdnet", 1, 3, (4,), (1,), csc={"lam": 0.05}, seed=1)

    def reference(model):
        opt = torch.optim.SGD(
            model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 3 * 3)
        gen, hist = torch.Generator().manual_seed(2), []
        stop = EarlyStopping(model, math.inf, 99)
        for epoch in range(1, 4):
            model.train()
            order, total = torch.randperm(20, generator=gen), 0.0
            for i in range(0, 20, 8):
                b = order[i : i + 8]
                loss = F.cross_entropy(model(_augment(data.x_train[b], gen)), data.y_train[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(b)
            acc, val_loss = accuracy(model, data.x_val, data.y_val)
            hist.append((epoch, total / 20, val_loss, acc))
            stop.update(-acc)
        stop.restore()
        model.eval()  # the CSC stem refreshes its step size for evaluation (each call)
        accuracy(model, data.x_test, data.y_test)
        return hist, -stop.best

    a, b = build(), build()
    res = train_image_classifier(a, data, epochs=3, batch_size=8, lr=0.05, augment=True, seed=2)
    hist, best = reference(b)
    got = [(r["epoch"], r["train_loss"], r["val_loss"], r["val_accuracy"]) for r in res.history]
    assert got == hist and res.metrics["val_accuracy"] == best
    assert _same(a.state_dict(), b.state_dict())


def test_mlista_training_is_the_straightforward_loop():
    from deepunfold.data.digits import DigitData
    from deepunfold.unfolded.mlista import MLISTANet, train_classifier

    img = _images(30, 3)
    data = DigitData(img.x_train, img.y_train, img.x_test, img.y_test, "toy")

    def reference(model):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
        gen, hist = torch.Generator().manual_seed(5), []
        for epoch in range(1, 3):
            model.train()
            order, total = torch.randperm(30, generator=gen), 0.0
            for i in range(0, 30, 11):
                b = order[i : i + 11]
                loss = F.cross_entropy(model(data.x_train[b]), data.y_train[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            acc, test_loss = accuracy(model, data.x_test, data.y_test, batch_size=1000)
            hist.append(
                {
                    "epoch": epoch,
                    "train_loss": total / 30,
                    "test_loss": test_loss,
                    "test_accuracy": acc,
                }
            )
        return hist

    a, b = (
        MLISTANet((1, 8, 8), [4, 4], [3, 3], [1, 2], [1, 1], n_classes=3, unfoldings=1)
        for _ in range(2)
    )
    res = train_classifier(a, data, epochs=2, batch_size=11, lr=1e-2, weight_decay=1e-4, seed=5)
    assert res.history == reference(b) and _same(a.state_dict(), b.state_dict())
    assert res.metrics["train_accuracy"] == accuracy(b, data.x_train, data.y_train)[0]


# open_clip's registry is process-wide and a name takes one config (clip.embed refuses a second):
# the demo's tiny CLIP name may already hold the default config from other tests, so these
# small models register under a name of their own
SMALL_TINYCLIP = "deepunfold-tinyclip-test-small"


def test_tinyclip_training_is_the_straightforward_loop():
    from deepunfold.clip.embed import load_model as open_clip_model
    from deepunfold.clip.tinyclip import (
        TinyCLIP,
        _contrastive_loss,
        digit_captions,
        tinyclip_config,
        train_tinyclip,
    )

    kw = {"embed_dim": 8, "vision_width": 8, "text_width": 32, "text_layers": 1}
    _, _, tok = open_clip_model(SMALL_TINYCLIP, None, model_config=tinyclip_config(**kw))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 3, 32, 32, generator=g)
    raw = torch.randint(0, 16, (20, 8, 8), generator=g).numpy().astype(np.uint8)
    labels = (np.arange(20) % 10).astype(np.int64)

    def reference(model):
        gen, rng = torch.Generator().manual_seed(4), np.random.default_rng(4)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=3, pct_start=0.1)
        model.train()
        losses = []
        for _ in range(3):
            b = torch.randperm(20, generator=gen)[:8]
            caps = digit_captions(raw[b.numpy()], labels[b.numpy()], rng)
            dx, dy = torch.randint(-4, 5, (2,), generator=gen).tolist()
            xb = torch.roll(x[b], shifts=(dy, dx), dims=(-2, -1))
            img = model.encode_image(xb, normalize=True)
            txt = model.encode_text(tok(caps), normalize=True)
            loss = _contrastive_loss(img, txt, model.logit_scale.exp().clamp(max=100), caps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        return losses

    torch.manual_seed(0)
    a = TinyCLIP(**kw)
    torch.manual_seed(0)
    b = TinyCLIP(**kw)
    res = train_tinyclip(a, tok, x, raw, labels, steps=3, batch_size=8, seed=4)
    assert res.step_losses == reference(b) and _same(a.state_dict(), b.state_dict())


# ----------------------------------------------------------------------------- checkpoints


class _Tiny(Configurable, torch.nn.Linear):
    pass


_Tiny.__module__ = "tests.test_training"


def _models():
    """One small instance of every model class, with an input it maps."""
    from deepunfold.data.sparse_signals import gaussian_dictionary
    from deepunfold.unfolded.csc import ResCSCNet, resnet
    from deepunfold.unfolded.lista import build_model
    from deepunfold.unfolded.mlista import MLISTANet
    from deepunfold.unfolded.rpca import UnfoldedRPCA

    A = gaussian_dictionary(8, 12, seed=0)
    x_sig, x_img, x_rpca = torch.randn(3, 8), torch.randn(2, 1, 8, 8), _rpca_data(2, 0)[0]
    shapes = ((1, 8, 8), [4, 4, 4], [3, 3, 3], [1, 1, 1], [1, 1, 1])
    return [
        (build_model("lista", A, 2, lam=0.3), x_sig),
        (build_model("lista_cp", A, 3), x_sig),
        (build_model("alista", A, 2, support_selection=True, percent_step=2.0), x_sig),
        (UnfoldedRPCA(2, "l1", "frame", 3, 0.5, 0.7, 0.2), x_rpca),
        (UnfoldedRPCA(2, "l12", "frame", 3, 0.5, 0.7, 0.2, threshold_param="raw"), x_rpca),
        (MLISTANet(*shapes, n_classes=3, unfoldings=2, seed=4), x_img),
        (ResCSCNet(*shapes, n_classes=3, unfoldings=1, seed=5), x_img),
        (resnet("cnn", 1, 3, (4, 8), (1, 1), mean=[0.5], std=[2.0], seed=1), x_img),
        (resnet("sdnet", 1, 3, (4,), (1,), csc={"lam": 0.2, "learn_lambda": True}, seed=2), x_img),
    ]


def test_every_model_round_trips_through_save_model_and_load_model(tmp_path):
    for i, (model, x) in enumerate(_models()):
        with torch.no_grad():  # trained weights: not those the constructor draws
            for p in model.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(i)))
        model.eval()
        with torch.no_grad():
            before = model(x)
        path = tmp_path / f"{i}.pt"
        save_model(model, path, run=i)
        back, meta = load_model(path, type(model), metadata=True)
        assert type(back) is type(model) and meta == {"run": i} and not back.training
        assert _same(back.state_dict(), model.state_dict())
        with torch.no_grad():
            after = back(x)
        for a, b in zip(
            before if isinstance(before, tuple) else [before],
            after if isinstance(after, tuple) else [after],
            strict=True,
        ):
            assert torch.equal(a, b), type(model).__name__
        ckpt = read_checkpoint(path)
        assert list(ckpt) == ["class", "config", "state_dict", "metadata"]
        assert ckpt["class"] == f"{type(model).__module__}.{type(model).__qualname__}"


def test_tinyclip_round_trips_and_open_clip_reads_the_same_file(tmp_path):
    from deepunfold.clip.embed import load_model as open_clip_model
    from deepunfold.clip.tinyclip import TinyCLIP, tinyclip_config

    kw = {"embed_dim": 8, "vision_width": 8, "text_width": 32, "text_layers": 1}
    torch.manual_seed(0)
    model = TinyCLIP(**kw)
    model.eval()
    save_model(model, tmp_path / "tiny.pt")
    back = load_model(tmp_path / "tiny.pt")
    theirs, _, tok = open_clip_model(
        SMALL_TINYCLIP, tmp_path / "tiny.pt", model_config=tinyclip_config(**kw)
    )
    x, text = torch.randn(2, 3, 32, 32), tok(["a photo of a three"])
    with torch.no_grad():
        for other in (back, theirs):
            assert torch.equal(other.encode_image(x), model.encode_image(x))
            assert torch.equal(other.encode_text(text), model.encode_text(text))


def test_checkpoint_refuses_nan_weights_and_is_byte_reproducible(tmp_path):
    torch.manual_seed(0)
    model = _models()[3][0]
    save_model(model, tmp_path / "a.pt", step=1)
    save_model(model, tmp_path / "b.pt", step=1)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    with torch.no_grad():
        model.weight[0, 0, 0, 0, 0] = math.nan
    with pytest.raises(NonFiniteError, match="weight"):
        save_model(model, tmp_path / "bad.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]


def test_corrupt_missing_and_foreign_checkpoints_fail_naming_the_file(tmp_path):
    from deepunfold.unfolded.lista import LISTA
    from deepunfold.unfolded.rpca import UnfoldedRPCA

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=f"{bad} is not a readable checkpoint"):
        load_model(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    old = tmp_path / "old.pt"  # a bare state dict, the old weights-only files
    torch.save(torch.nn.Linear(2, 1).state_dict(), old)
    with pytest.raises(RuntimeError, match=f"{old} is not a deepunfold model checkpoint"):
        load_model(old)
    for cls, message in (
        ("torch.nn.Linear", "not a deepunfold class"),
        ("deepunfold.nowhere.Model", "not imported"),
    ):
        path = tmp_path / "foreign.pt"
        torch.save(
            {
                "class": cls,
                "config": {"in_features": 2, "out_features": 1},
                "state_dict": {},
                "metadata": {},
            },
            path,
        )
        with pytest.raises(RuntimeError, match=message):
            load_model(path)
    with pytest.raises(TypeError, match="only deepunfold models"):
        save_model(torch.nn.Linear(2, 1), tmp_path / "x.pt")
    with pytest.raises(TypeError, match="only deepunfold models"):
        save_model(_Tiny(2, 1), tmp_path / "x.pt")  # records a config, but is not ours
    rpca = tmp_path / "rpca.pt"
    save_model(UnfoldedRPCA(1), rpca)
    with pytest.raises(RuntimeError, match="expected a deepunfold.unfolded.lista.LISTA"):
        load_model(rpca, LISTA)


def test_configurable_records_the_outermost_constructor_call():
    from deepunfold.unfolded.lista import ALISTA

    A = torch.randn(4, 6)
    model = ALISTA(A, 2, lam=0.5, support_selection=True, percent_max=20.0)
    cfg = model.config
    # ALISTA's own arguments (defaults filled in) and what its **kw passed on to the base
    assert set(cfg) == {"A", "n_layers", "lam", "support_selection", "percent_max"}
    assert torch.equal(cfg["A"], A) and cfg["n_layers"] == 2 and cfg["percent_max"] == 20.0
    A.add_(1.0)  # the config holds a copy
    assert not torch.equal(model.config["A"], A)
    again = ALISTA(**model.config)
    assert again.percent_max == 20.0 and again.percent_step == model.percent_step
