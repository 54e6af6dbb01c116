r"""The exact Lasso for many signals over one dictionary: active set, homotopy fallback.

Vocabulary as in :mod:`deepunfold.solvers.proximal_gradient`: ``x`` the ``(batch, d)``
signals (rows), ``A`` the ``(d, c)`` dictionary (atoms as columns, any norms but none zero),
``z`` the ``(batch, c)`` codes. For each signal the code is

.. math::
    z^\star = \arg\min_z\ F_\lambda(z) = \|x - A z\|_2^2 + \lambda \|z\|_1
    \qquad (\text{optionally } z \ge 0).

**The scale of lambda.** This package uses the *full* scale, with no factor 1/2 on the
squared error (the scale of seed 001, the source report of the CLIP task, whose lambda sweep
{0.01, ..., 5} means the same here; docs/architecture.md, Glossary). The proximal-gradient
solvers of :mod:`deepunfold.solvers.proximal_gradient`,
scikit-learn's ``lasso_lars`` and SPAMS minimise the half scale :math:`\tfrac12\|x - Az\|^2
+ \mu\|z\|_1`; since :math:`F_\lambda = 2(\tfrac12\|x - Az\|^2 + \tfrac{\lambda}{2}\|z\|_1)`,
both have the same minimiser at :math:`\mu = \lambda/2`. Internally the compiled kernels
work in the half scale with :math:`\mu = \lambda/2` (:mod:`.kernels`); every public
function here takes and reports the full-scale :math:`\lambda`.

Optimality (KKT) conditions, with the correlation :math:`g = 2A^\top(x - Az)`:
:math:`g_j = \lambda\,\mathrm{sign}(z_j)` where :math:`z_j \ne 0`, :math:`|g_j| \le \lambda`
where :math:`z_j = 0` (non-negative variant: :math:`g_j = \lambda` where :math:`z_j > 0`,
:math:`g_j \le \lambda` where :math:`z_j = 0`). :func:`kkt_violation` is the largest
violation, in units of :math:`\lambda`; :func:`duality_gap` the relative duality gap.

:func:`lasso_active_set` is the solver; it works on the Gram matrix :math:`G = A^\top A` and
the correlations :math:`A^\top x`, on the device of its tensors:

1. signals whose code is zero (:math:`\max_j |2 a_j^\top x| \le \lambda`) are done at once;
2. on the CPU (``method="compiled"``, the default there), each signal is solved by a compiled
   active set (:mod:`.kernels`): the most violating atoms enter, the sign-fixed quadratic on
   the support is minimised exactly with a Cholesky factor updated in place (one row per
   entering atom, Givens rotations per leaving atom), the point steps to the first zero
   crossing where a sign disagrees, and a violator in the span of the support is swapped in
   for the first atom to reach zero;
3. on other devices (``method="batched"``, :mod:`.batched`): a warm start (a few float32
   FISTA iterations where many atoms are expected to be active, zero where few are), then
   batched *feature-sign* rounds (exact Cholesky solves on support plus KKT violators,
   sign-fixed, the objective never increases), with a *continuation* path (a decreasing
   sequence of lambdas from zero) for signals whose support comes near the rank of
   :math:`A`;
4. a signal either path gives up on goes to :func:`lasso_homotopy`, the LARS-Lasso path on
   the Gram matrix with Cholesky updates, which reaches the minimiser in finitely many steps
   (atoms in the span of the active ones, such as exact duplicates, are kept out: their
   correlation stays tied at the current lambda along the path), and is polished from there;
5. every code is checked (:mod:`.certificates`): a KKT violation above ``tol * lambda``
   raises :class:`LassoNotConverged` unless the caller asked for a budget
   (``on_unconverged="warn"``).

The tuning knobs are the fields of one validated, frozen :class:`LassoOptions`
(:mod:`.options`), passed as ``options=``; the call itself takes the problem (``x``, ``A``,
``lam``, ``nonneg``) and how to run it (``method``, ``threads``, ``on_unconverged``,
``progress``). Every public function checks its arguments and raises a ``ValueError``
naming the bad one.

Threads: on the CPU the signals are split across ``threads`` worker threads in chunks, each
chunk solved with one BLAS/LAPACK thread (:mod:`.solve`). Batched LAPACK calls threaded
inside oneMKL are not used: with 2 or more threads torch's batched LU solve
(``getrf``/``getrs`` through oneMKL) returned invalid pivots on near-singular systems
("Parameter 6 was incorrect on entry to DLASWP", then ``Pivots given to lu_solve must all be
greater or equal to 1``), and for the small factorisations here one thread per chunk is
faster anyway.

Modules: :mod:`.options` (:class:`LassoOptions`, argument checks), :mod:`.certificates`
(objective, KKT violation, rounding bound, duality gap), :mod:`.solve` (the entry: zero
screen, chunks, threads, the final check; the homotopy), :mod:`.problem` (what the chunks
of one solve share), :mod:`.batched` (the torch engine and its batched linear algebra),
:mod:`.kernels` (the Numba kernels of the CPU path).
"""

from deepunfold.solvers.lasso.certificates import (
    duality_gap,
    kkt_rounding_bound,
    kkt_violation,
    objective,
)
from deepunfold.solvers.lasso.options import LassoOptions, check_lasso_inputs
from deepunfold.solvers.lasso.solve import LassoNotConverged, lasso_active_set, lasso_homotopy

__all__ = [
    "LassoOptions",
    "LassoNotConverged",
    "check_lasso_inputs",
    "objective",
    "kkt_violation",
    "kkt_rounding_bound",
    "duality_gap",
    "lasso_active_set",
    "lasso_homotopy",
]
