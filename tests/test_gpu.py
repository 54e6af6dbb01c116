"""The ``device`` option of the library's trainers: the CPU path is the old one, bit for bit;
CUDA agrees with the CPU within the tolerances of docs/gpu.md (those tests skip without a GPU).
"""

import copy
import io
import sys

import pytest
import torch

from deepunfold.data.digits import load_sklearn_digits
from deepunfold.data.moving_digits import make_moving_digits
from deepunfold.data.sparse_signals import make_problem
from deepunfold.unfolded.lista import TrainConfig, build_model, layer_metrics, train_layerwise
from deepunfold.unfolded.rpca import (
    UnfoldedRPCA,
    as_samples,
    layer_statistics,
    predict,
    train_unfolded,
    tune_untrained,
)

pytestmark = pytest.mark.usefixtures("one_thread")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CFG = TrainConfig(batch_size=32, max_steps=20, val_every=10, patience=2, lr_decays=(0.2,))


@pytest.fixture(scope="module")
def problem():
    return make_problem(
        m=20, n=40, sparsity=0.9, noise_std=0.01, n_train=300, n_val=100, n_test=100, seed=3
    )


def _rpca_data(n, seed):
    d = make_moving_digits(load_sklearn_digits(12, 8), n, n_frames=6, size=24, rank=2, seed=seed)
    return tuple(as_samples(a, "frame") for a in (d.x, d.low_rank, d.sparse))


def _bytes(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _lista(problem, name, **kw):
    torch.manual_seed(0)
    model = build_model(name, problem.A, 2, support_selection=name == "alista")
    res = train_layerwise(
        model, problem.split("train"), problem.split("val"), CFG, test=problem.split("test"), **kw
    )
    return model, res


def _rpca(device=None):
    train, val = _rpca_data(4, 0), _rpca_data(2, 1)
    kw = {} if device is None else {"device": device}
    lam_low, lam_sparse, grid = tune_untrained(
        *val,
        prox="l1",
        mode="frame",
        n_layers=2,
        kernel_size=3,
        step=0.5,
        lowrank_factors=[0.1, 0.3],
        sparse_factors=[0.5, 1.0],
        batch_size=5,
        **kw,
    )
    model = UnfoldedRPCA(2, "l1", "frame", 3, 0.5, 0.5 * lam_low, 0.5 * lam_sparse)
    hist = train_unfolded(
        model, train, val, epochs=2, batch_size=5, lr=1e-2, patience=2, seed=0, **kw
    )
    return model, hist.history, grid


@pytest.mark.parametrize("name", ["lista", "lista_cp", "alista"])
def test_lista_on_cpu_is_the_call_without_device(problem, name):
    m1, r1 = _lista(problem, name)
    m2, r2 = _lista(problem, name, device="cpu")
    m3, _ = _lista(problem, name, device=torch.device("cpu"))
    assert _bytes(m1.state_dict()) == _bytes(m2.state_dict()) == _bytes(m3.state_dict())
    assert _bytes(r1.history) == _bytes(r2.history)
    assert _bytes(r1.metrics["layers"]) == _bytes(r2.metrics["layers"])


def test_rpca_on_cpu_is_the_call_without_device():
    m1, h1, g1 = _rpca()
    m2, h2, g2 = _rpca("cpu")
    assert _bytes(m1.state_dict()) == _bytes(m2.state_dict()) and m1.config == m2.config
    assert g1 == g2
    for a, b in zip(h1, h2, strict=True):
        assert a.keys() == b.keys()
        assert all((a[k] == b[k]).all() if k == "thresholds" else a[k] == b[k] for k in a)


def _rel(a, b):
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


@cuda
@pytest.mark.parametrize("name", ["lista", "lista_cp", "alista"])
def test_lista_cuda_agrees_with_cpu(problem, name):
    """docs/gpu.md: weights within 1e-3 relative, per-layer test NMSE within 0.05 dB."""
    torch.backends.cuda.matmul.allow_tf32 = False
    cpu, r_cpu = _lista(problem, name, device="cpu")
    gpu, r_gpu = _lista(problem, name, device="cuda")
    assert next(gpu.parameters()).is_cuda
    gpu.cpu()
    for k, v in cpu.state_dict().items():
        assert _rel(gpu.state_dict()[k], v) < 1e-3, k
    diff = max(
        abs(a["test_nmse_db"] - b["test_nmse_db"])
        for a, b in zip(r_cpu.metrics["layers"], r_gpu.metrics["layers"], strict=True)
    )
    assert diff < 0.05
    x, z = problem.split("test")
    a = layer_metrics(cpu, x, z)
    b = layer_metrics(gpu.cuda(), x.cuda(), z.cuda())
    assert (a.nmse_db - b.nmse_db).abs().max() < 0.05


@cuda
def test_rpca_cuda_agrees_with_cpu():
    """docs/gpu.md: thresholds within 1e-3 relative, validation loss within 1e-3 relative."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu, h_cpu, _ = _rpca("cpu")
    gpu, h_gpu, _ = _rpca("cuda")
    assert _rel(gpu.thresholds, cpu.thresholds) < 1e-3
    assert abs(h_gpu[-1]["val_loss"] / h_cpu[-1]["val_loss"] - 1) < 1e-3
    x = _rpca_data(2, 2)[0]
    low_c, sparse_c = predict(cpu, x, 5)
    low_g, sparse_g = predict(gpu, x.cuda(), 5)
    assert _rel(low_g, low_c) < 1e-3 and _rel(sparse_g, sparse_c) < 1e-3
    stats = layer_statistics(gpu, x.cuda(), 5)
    assert stats["singular_values"].shape == layer_statistics(cpu, x, 5)["singular_values"].shape


def test_manifest_records_the_device_each_job_logged(tmp_path, monkeypatch):
    from deepunfold.pipeline.device import resolve_device
    from deepunfold.pipeline.jobs import setup_job
    from deepunfold.pipeline.manifest import build_manifest

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # setup_job replaces it
    log = setup_job("logs/lista/a/train.log")
    resolve_device("cpu", key="lista.device", log=log)
    log.handlers[0].flush()
    setup_job("logs/robust/estimates.log").info("no device here; device cpu")
    (tmp_path / "results").mkdir()
    (tmp_path / "results/t.tsv").write_text("a\n")
    m = build_manifest(["results/t.tsv"], {}, logs="logs")
    assert m["devices"] == {"logs/lista/a/train.log": "cpu (CPU; lista.device = 'cpu')"}
    assert "devices" not in build_manifest(["results/t.tsv"], {})


def _tinyclip():
    from deepunfold.clip.embed import load_model
    from deepunfold.clip.tinyclip import TINYCLIP_NAME, DigitImages, tinyclip_config
    from deepunfold.data.digits import digit_images_split

    model, pre, tok = load_model(TINYCLIP_NAME, None, model_config=tinyclip_config())
    images, labels, idx, _ = digit_images_split(0.33, 0)
    idx = idx[:64]
    data = DigitImages(images[idx], labels[idx], pre)
    x = torch.stack([data[i][0] for i in range(len(data))])
    return model, tok, x, images[idx], labels[idx]


def test_tinyclip_and_embedding_on_cpu_are_the_calls_without_device():
    from deepunfold.clip.embed import encode_images, encode_texts
    from deepunfold.clip.tinyclip import train_tinyclip

    model, tok, x, raw, labels = _tinyclip()
    runs = []
    for kw in ({}, {"device": "cpu"}):
        m = copy.deepcopy(model)
        res = train_tinyclip(m, tok, x, raw, labels, steps=3, batch_size=16, seed=0, **kw)
        losses = res.step_losses
        runs.append((_bytes(m.state_dict()), losses))
    assert runs[0] == runs[1]
    data = torch.utils.data.TensorDataset(x[:20], torch.zeros(20, dtype=torch.long))
    a, la = encode_images(model, data, batch_size=8)
    # mixed precision is CUDA-only: on the CPU the embeddings stay exactly float32
    b, lb = encode_images(model, data, batch_size=8, device="cpu", mixed_precision=True)
    assert a.tobytes() == b.tobytes() and (la == lb).all()
    ta = encode_texts(model, tok, ["a 3", "the digit 7"], batch_size=1)
    tb = encode_texts(
        model, tok, ["a 3", "the digit 7"], batch_size=1, device="cpu", mixed_precision=True
    )
    assert ta.tobytes() == tb.tobytes()


@cuda
def test_tinyclip_and_embedding_cuda_agree_with_cpu():
    """docs/gpu.md: float32 embeddings within 1e-4 (cosine above 0.9999), losses within 1e-3."""
    from deepunfold.clip.embed import encode_images
    from deepunfold.clip.tinyclip import train_tinyclip

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model, tok, x, raw, labels = _tinyclip()
    m_cpu, m_gpu = copy.deepcopy(model), copy.deepcopy(model)
    l_cpu = train_tinyclip(m_cpu, tok, x, raw, labels, steps=3, batch_size=16, seed=0)
    l_cpu = l_cpu.step_losses
    l_gpu = train_tinyclip(
        m_gpu, tok, x, raw, labels, steps=3, batch_size=16, seed=0, device="cuda"
    ).step_losses
    assert max(abs(a / b - 1) for a, b in zip(l_gpu, l_cpu, strict=True)) < 1e-3
    data = torch.utils.data.TensorDataset(x[:20], torch.zeros(20, dtype=torch.long))
    a, _ = encode_images(model, data, batch_size=8)
    b, _ = encode_images(model.cuda(), data, batch_size=8, device="cuda")
    assert (torch.from_numpy(a) * torch.from_numpy(b)).sum(-1).min() > 0.9999
