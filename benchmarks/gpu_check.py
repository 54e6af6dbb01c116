"""Each PyTorch stage's kernel on the CPU and on a CUDA GPU: agreement and speed-up.

    python benchmarks/gpu_check.py [--threads N] [--repeats R]

Kernels (small, fixed-seed inputs, one process):

- ``clip_embed``: a batch of 64 images and 64 prompts through the tiny CLIP (random weights)
  or, where ``results/clip/weights/*.pt`` holds open_clip weights of ``clip.model``, that
  model (deepunfold.clip.embed.encode_images / encode_texts);
- ``tinyclip_step``, ``lista_step``, ``lista_cp_step``, ``alista_step``, ``rpca_step``,
  ``mlista_step``, ``sdnet_step``: one forward + backward + Adam step of each network from
  the same weights and batch (the relative difference is that of the updated weights);
- ``sparse_code``: 512 signals against a 64 x 256 dictionary, deepunfold.clip.codes.sparse_code
  (active set, lambda 0.05) on the device of its tensors;
- ``pcp``: a batch of 8 64 x 20 low-rank + sparse matrices, deepunfold.solvers.pcp.pcp
  (float64, 200 iterations at most).

For each kernel it prints the CPU time, and with CUDA the GPU time, the speed-up and the
largest relative difference ``max |gpu - cpu| / max |cpu|`` over the kernel's outputs. Times
are the best of ``--repeats`` runs after one warm-up, with the GPU synchronised. Without
CUDA it runs the CPU side once (its time is that first call's, warm-up included), prints
that no GPU was found, and exits 0. The pipeline's
GPU settings (TF32 off, deterministic algorithms) are those of pipeline.jobs.setup_job.
"""

from __future__ import annotations

import argparse
import copy
import glob
import time

import torch

from deepunfold.pipeline.jobs import gpu_numerics, seed_everything


def _timed(fn, device, repeats):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = fn()  # warm-up (and the result compared); its time counts only if nothing follows
    sync()
    first = time.perf_counter() - start
    if repeats == 0:
        return out, first
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return out, best


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _train_step(make_model, batch, loss_fn, lr=1e-3):
    """A kernel: one Adam step from fixed weights; returns the updated parameters."""
    base = make_model()

    def kernel(device):
        model = copy.deepcopy(base).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        args = [a.to(device) for a in batch]

        def step():
            opt.zero_grad()
            loss_fn(model, *args).backward()
            opt.step()
            return torch.cat([p.detach().flatten() for p in model.parameters()])

        return step

    return kernel


def kernels():
    from deepunfold.clip.codes import sparse_code
    from deepunfold.clip.embed import encode_images, encode_texts, load_model
    from deepunfold.clip.tinyclip import TINYCLIP_NAME, _contrastive_loss, tinyclip_config
    from deepunfold.data.sparse_signals import make_problem
    from deepunfold.solvers.pcp import pcp
    from deepunfold.unfolded.csc import resnet
    from deepunfold.unfolded.lista import build_model
    from deepunfold.unfolded.mlista import MLISTANet
    from deepunfold.unfolded.rpca import UnfoldedRPCA, rpca_loss

    gen = torch.Generator().manual_seed(0)
    out = {}

    # CLIP embedding: open_clip weights where the pipeline fetched them, else the tiny CLIP
    weights = sorted(glob.glob("results/clip/weights/*.pt"))
    if weights:
        from deepunfold.pipeline.config import resolve_config

        name, cfg, label = resolve_config({})["clip"]["model"], None, weights[0]
    else:
        name, cfg, label = TINYCLIP_NAME, tinyclip_config(), "tiny CLIP, random weights"
    clip, preprocess, tokenizer = load_model(
        name, weights[0] if weights else None, model_config=cfg
    )
    size = preprocess.transforms[0].size
    size = size if isinstance(size, int) else size[0]
    images = torch.rand(64, 3, size, size, generator=gen)
    dataset = torch.utils.data.TensorDataset(images, torch.zeros(64, dtype=torch.long))
    prompts = [f"a photo of a digit {k % 10}" for k in range(64)]

    def embed(device):
        model = copy.deepcopy(clip).to(device)

        def run():
            img, _ = encode_images(model, dataset, batch_size=64, device=device)
            txt = encode_texts(model, tokenizer, prompts, batch_size=64, device=device)
            return torch.cat([torch.from_numpy(img).flatten(), torch.from_numpy(txt).flatten()])

        return run

    out[f"clip_embed ({label})"] = embed

    tiny, _, tiny_tok = load_model(TINYCLIP_NAME, None, model_config=tinyclip_config())
    caps = [f"the digit {k % 10}" for k in range(32)]
    tokens = tiny_tok(caps)
    x_img = torch.rand(32, 3, 32, 32, generator=gen)

    def clip_loss(model, x, tok):
        img = model.encode_image(x, normalize=True)
        txt = model.encode_text(tok, normalize=True)
        return _contrastive_loss(img, txt, model.logit_scale.exp().clamp(max=100), caps)

    out["tinyclip_step"] = _train_step(lambda: copy.deepcopy(tiny), (x_img, tokens), clip_loss)

    p = make_problem(
        m=250, n=500, sparsity=0.9, noise_std=0.0, n_train=256, n_val=1, n_test=1, seed=0
    )
    x, z = p.split("train")
    for name_ in ("lista", "lista_cp", "alista"):
        out[f"{name_}_step"] = _train_step(
            lambda n=name_: build_model(n, p.A, 16, support_selection=n == "alista"),
            (x, z),
            lambda m, a, b: (m(a) - b).pow(2).sum(-1).mean(),
        )

    xr = torch.rand(32, 1, 64, 64, generator=gen)  # frame mode: one frame per sample
    out["rpca_step"] = _train_step(
        lambda: UnfoldedRPCA(6, "l1", "frame", 5, 0.5, 1.0, 0.1),
        (xr, 0.5 * xr, 0.5 * xr),
        lambda m, a, lo, sp: rpca_loss(*m(a), lo, sp),
    )

    xm = torch.rand(64, 1, 28, 28, generator=gen)
    ym = torch.randint(0, 10, (64,), generator=gen)
    ce = torch.nn.functional.cross_entropy
    out["mlista_step"] = _train_step(
        lambda: MLISTANet(
            (1, 28, 28), (64, 128, 512), (6, 6, 4), (2, 2, 1), (0, 0, 0), unfoldings=2
        ),
        (xm, ym),
        lambda m, a, b: ce(m(a), b),
    )

    xs = torch.rand(64, 3, 32, 32, generator=gen)
    out["sdnet_step"] = _train_step(
        lambda: resnet("sdnet", 3, 10, (16, 32, 64), (1, 1, 1)),
        (xs, ym),
        lambda m, a, b: ce(m(a), b),
    )

    A = torch.nn.functional.normalize(
        torch.randn(64, 256, generator=gen, dtype=torch.float64), dim=0
    )
    w = torch.randn(512, 256, generator=gen, dtype=torch.float64)
    w = w * (torch.rand(512, 256, generator=gen, dtype=torch.float64) < 0.03)
    zc = w @ A.T + 0.01 * torch.randn(512, 64, generator=gen, dtype=torch.float64)

    def codes(device):
        zd, Ad = zc.to(device), A.to(device)
        return lambda: sparse_code(zd, Ad, 0.05, chunk_size=512).w

    out["sparse_code"] = codes

    low = torch.randn(8, 64, 2, generator=gen, dtype=torch.float64)
    low = low @ torch.randn(8, 2, 20, generator=gen, dtype=torch.float64)
    mask = torch.rand(8, 64, 20, generator=gen, dtype=torch.float64) < 0.05
    xp = low + 5 * mask * torch.randn(8, 64, 20, generator=gen, dtype=torch.float64)

    def pcp_batch(device):
        xd = xp.to(device)

        def run():
            r = pcp(xd, max_iter=200)
            return torch.cat([r.low_rank.flatten(), r.sparse.flatten()])

        return run

    out["pcp"] = pcp_batch
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per kernel (best of)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(0)
    gpu_numerics()
    has_cuda = torch.cuda.is_available()
    cpu = torch.device("cpu")
    gpu = torch.device("cuda") if has_cuda else None
    print(
        f"torch {torch.__version__}, {args.threads} CPU threads"
        + (f", GPU {torch.cuda.get_device_name(gpu)}" if has_cuda else "")
    )
    print(f"{'kernel':<44} {'cpu s':>9} {'gpu s':>9} {'speed-up':>9} {'max rel diff':>13}")
    for name, make in kernels().items():
        ref, t_cpu = _timed(make(cpu), cpu, args.repeats if has_cuda else 0)
        if not has_cuda:
            print(f"{name:<44} {t_cpu:9.4f} {'-':>9} {'-':>9} {'-':>13}")
            continue
        got, t_gpu = _timed(make(gpu), gpu, args.repeats)
        print(f"{name:<44} {t_cpu:9.4f} {t_gpu:9.4f} {t_cpu / t_gpu:8.1f}x {_rel(got, ref):13.2e}")
    if not has_cuda:
        print(
            "No CUDA GPU found (torch.cuda.is_available() is False): ran the CPU side of each "
            "kernel once; no GPU agreement or speed-up measured."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
