"""Does ``torch.compile`` (inductor, CPU) speed up the cohort engine's training step?

Standalone experiment on the two ``mlplab bench`` workloads (W1: XOR 2-4-1, SGD momentum,
full batch, K=256; W2: gaussians 2-16-16-5, Adam, minibatch 64, K=64). In one process it
times the eager step (``stacked.loss_and_grad`` + ``optimizers_inplace.step_all_active``,
what the engine runs with probe off) against compiled versions of the whole step
(forward + backward + optimizer update as one function of tensors), one call per step,
per K steps / per epoch (unrolled), reporting compile time (first calls) apart from the
steady state, and the max abs difference of the parameters after the same steps.

    PYTHONPATH=src .venv/bin/python bench/compile_experiment.py [--modes default,...]
        [--workloads W1,W2] [--rounds 5] [--engine] [--warm-cache]

Timings are the fastest of ``--rounds`` interleaved rounds (a shared machine disturbs
the others), torch.set_num_threads(1) as the engine. By default inductor compiles into a
fresh cache dir (cold compile times); ``--warm-cache`` reuses the default one.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
import traceback

if "--warm-cache" not in sys.argv:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")

import torch  # noqa: E402

from mlplab.bench import workloads  # noqa: E402
from mlplab.config import optimizer_hyper  # noqa: E402
from mlplab.data import load_data  # noqa: E402
from mlplab.engine.cohort import _new_rows  # noqa: E402
from mlplab.engine.reference import batch_order_generator, batch_size_of, to_tensors  # noqa: E402
from mlplab.model.mlp import resolve_head  # noqa: E402
from mlplab.model.stacked import (_activate, _activation_backward, _layers_forward,
                                  _loss_and_output_grad, backward_into, forward_loss, layers,
                                  loss_and_grad)
from mlplab.optim.batched import hyper_from_configs, make_optimizer  # noqa: E402
from mlplab.optim.inplace import plan_step, step_all_active  # noqa: E402

DT = torch.float32


# ---- the workload's tensors, as the engine sets them up -----------------------------
class Setup:
    def __init__(self, name: str, epochs: int):
        w = {x.name: x for x in workloads()}[name]
        configs = w.configs
        cfg = configs[0]
        self.name, self.k = name, len(configs)
        data = load_data(cfg.data)
        self.head = resolve_head(cfg.model, cfg.train.loss, data.n_classes)
        self.t = to_tensors(data, cfg.probe.batch, "cpu", DT)
        n = len(data.y_train)
        self.n, self.bs = n, batch_size_of(cfg, n)
        self.spe = -(-n // self.bs)
        self.spec, self.rows = _new_rows(configs, range(self.k), [0] * self.k, self.head,
                                         data.input_dim, DT, None)
        self.opt_name = cfg.train.optimizer
        self.opt = make_optimizer(self.opt_name)
        self.hyper = hyper_from_configs(self.opt_name,
                                        [optimizer_hyper(c.train) for c in configs])
        self.plan = plan_step(self.opt_name, self.hyper)
        self.epochs = epochs
        # per-epoch model orders, drawn as the engine draws them
        self.perms = None
        if self.bs < n:
            gens = [batch_order_generator(c.train.seed) for c in configs]
            self.perms = [torch.stack([torch.randperm(n, generator=g) for g in gens])
                          for _ in range(epochs)]                        # [K, N] each

    @property
    def steps(self) -> int:
        return self.epochs * self.spe

    def fresh(self):
        flat = self.rows.clone()
        state = self.opt.init([flat])
        return flat, state

    def epoch_data(self, e: int):
        if self.perms is None:
            return self.t.x_train, self.t.y_train
        perm = self.perms[e]
        xs = self.t.x_train.index_select(0, perm.reshape(-1)).view(*perm.shape, -1)
        ys = self.t.y_train.index_select(0, perm.reshape(-1)).view(perm.shape)
        return xs, ys

    def batch(self, xs, ys, j: int):
        if self.perms is None:
            return xs, ys
        return xs[:, j * self.bs:(j + 1) * self.bs], ys[:, j * self.bs:(j + 1) * self.bs]


# ---- eager: what the engine runs (probe off, every model active) ---------------------
class Eager:
    label = "eager (loss_and_grad + step_all_active)"

    def __init__(self, s: Setup):
        self.s = s

    def reset(self):
        self.flat, self.state = self.s.fresh()
        self.params = layers(self.s.spec, self.flat)
        self.grad = torch.empty_like(self.flat)

    def run(self):
        s = self.s
        for e in range(s.epochs):
            xs, ys = s.epoch_data(e)
            for j in range(s.spe):
                xb, yb = s.batch(xs, ys, j)
                loss_and_grad(s.spec, self.params, xb, yb, s.head, self.grad)
                self.state = step_all_active(s.plan, [self.flat], [self.grad], self.state,
                                             s.hyper)
        return self.flat


# ---- pieces of the compiled step: tensors in, in-place updates ------------------------
def fwd_bwd(spec, head, flat, x, y, mm: str = "bmm"):
    """Loss [K] and the flat gradient [K, P] (stacked.loss_and_grad, returning the grad).
    ``mm="sum"``: every matmul as a broadcast multiply + sum, which inductor turns into
    fused C++ loops (no extern bmm call); "bmm": the library's own forward and matmuls."""
    params = layers(spec, flat)
    if mm == "bmm":
        hs, zs = _layers_forward(spec, params, x)
    else:
        hs, zs = [x.transpose(-1, -2)], []
        for i, (w, b) in enumerate(params):      # [K, out, in, 1] * [(K,) 1, in, B]
            zs.append((w.unsqueeze(-1) * hs[-1].unsqueeze(-3)).sum(-2) + b.unsqueeze(-1))
            if i < len(params) - 1:
                hs.append(_activate(spec, zs[-1]))
    loss, g = _loss_and_output_grad(zs[-1], y, head)
    grads = []
    for i in range(len(params) - 1, -1, -1):
        h = hs[i]
        if mm == "bmm":
            gw = torch.matmul(g, h.transpose(-1, -2))
        else:                                    # [K, out, 1, B] * [(K,) 1, in, B]
            gw = (g.unsqueeze(-2) * h.unsqueeze(-3)).sum(-1)
        grads = [gw.flatten(-2), g.sum(-1)] + grads
        if i > 0:
            w = params[i][0]
            if mm == "bmm":
                g = torch.bmm(w.transpose(-1, -2), g)
            else:                                # [K, out, in, 1] * [K, out, 1, B]
                g = (w.unsqueeze(-1) * g.unsqueeze(-2)).sum(-3)
            g = _activation_backward(spec, g, zs[i - 1], hs[i])
    return loss, torch.cat(grads, dim=-1)


def fwd_bwd_klast(spec, head, flat, x, y, flat_is_pk: bool = False):
    """fwd_bwd with the model dimension K innermost in every intermediate ([units, B, K]),
    matmuls as multiply + sum: inductor then vectorizes its fused loops across the K
    models instead of across tiny per-model dimensions (4, 2, ...). ``flat_is_pk``: the
    parameters come as ``[P, K]`` (a K-contiguous layout); the gradient is returned in
    the layout of ``flat``."""
    ft = flat if flat_is_pk else flat.t()                       # [P, K]
    k = ft.shape[-1]
    params = []
    for (fan_in, fan_out), (lo, mid, hi) in zip(spec.sizes, spec.segments()):
        params.append((ft[lo:mid].view(fan_out, fan_in, k), ft[mid:hi]))   # [o, i, K], [o, K]
    if x.dim() == 2:
        h = x.t().unsqueeze(-1)                                 # [d, B, 1]
    else:
        h = x.permute(2, 1, 0)                                  # [d, B, K]
    yk = y.unsqueeze(-1) if y.dim() == 1 else y.t()             # [B, 1] or [B, K]
    hs, zs = [h], []
    for i, (w, b) in enumerate(params):      # [o, i, 1, K] * [1, i, B, K] -> [o, B, K]
        zs.append((w.unsqueeze(2) * hs[-1].unsqueeze(0)).sum(1) + b.unsqueeze(1))
        if i < len(params) - 1:
            hs.append(_activate(spec, zs[-1]))
    z = zs[-1]                                                  # [o, B, K]
    n_b = z.shape[1]
    if head.output == "sigmoid" and head.loss == "mse":
        p = torch.sigmoid(z)
        diff = p - yk.to(p.dtype).unsqueeze(0)
        loss = (diff[0] ** 2).mean(0)                           # [K]
        g = torch.ops.aten.sigmoid_backward(diff * (2.0 / n_b), p)
    elif head.loss == "ce":
        logp = torch.log_softmax(z, dim=0)                      # [C, B, K]
        classes = torch.arange(z.shape[0], device=z.device).view(-1, 1, 1)
        onehot = (classes == yk.unsqueeze(0)).to(z.dtype)       # [C, B, K or 1]
        loss = -(logp * onehot).sum(0).mean(0)                  # [K]
        g = (logp.exp() - onehot) * (1.0 / n_b)
    else:
        raise NotImplementedError(head)
    grads = []
    for i in range(len(params) - 1, -1, -1):
        h = hs[i]                            # [o, 1, B, K] * [1, i, B, K] -> [o, i, K]
        gw = (g.unsqueeze(1) * h.unsqueeze(0)).sum(2)
        grads = [gw.flatten(0, 1), g.sum(1)] + grads
        if i > 0:                            # [o, i, 1, K] * [o, 1, B, K] -> [i, B, K]
            g = (params[i][0].unsqueeze(2) * g.unsqueeze(1)).sum(0)
            g = _activation_backward(spec, g, zs[i - 1], hs[i])
    grad = torch.cat(grads, dim=0)                              # [P, K]
    return loss, grad if flat_is_pk else grad.t()


def _c(x, pk):
    """A [K] hyper-parameter shaped to broadcast against [K, P] (or [P, K] if pk)."""
    return x if pk else x.unsqueeze(-1)


def momentum_update_(flat, grad, buf, count, lr, mom, pk=False):
    """optimizers_inplace._sgd for plan 'momentum' without weight decay."""
    lr, mom = _c(lr.to(flat.dtype), pk), _c(mom.to(flat.dtype), pk)
    buf.mul_(mom).add_(grad)
    flat.sub_(lr * buf)
    count.add_(1)


def adam_coefficients(count, lr, beta1, beta2, steps: int):
    """Adam's per-model bias-correction factors for the next ``steps`` steps of models
    at step ``count`` [K]: ``step_size, bc2_sqrt`` as [steps, K] float32 tables, made
    eagerly (inside a compiled step inductor recomputes a float64 std::pow per element)."""
    t = (count.unsqueeze(0) + torch.arange(1, steps + 1).unsqueeze(1)).to(lr.dtype)  # [S, K]
    return (lr / (1 - beta1 ** t)).to(DT), (1 - beta2 ** t).sqrt().to(DT)


def adam_update_(flat, grad, m, v, count, lr, beta1, beta2, eps, pk=False, coef=None):
    """optimizers_inplace._adam for plan 'adam' without weight decay. ``coef``:
    (step_size, bc2_sqrt) [K] from adam_coefficients, else computed here."""
    dt = flat.dtype
    if coef is None:
        t = (count + 1).to(lr.dtype)
        step_size = _c((lr / (1 - beta1 ** t)).to(dt), pk)
        bc2_sqrt = _c((1 - beta2 ** t).sqrt().to(dt), pk)
    else:
        step_size, bc2_sqrt = _c(coef[0], pk), _c(coef[1], pk)
    omb1, omb2 = _c((1 - beta1).to(dt), pk), _c((1 - beta2).to(dt), pk)
    b2, eps = _c(beta2.to(dt), pk), _c(eps.to(dt), pk)
    m.lerp_(grad, omb1)
    v.mul_(b2).add_((omb2 * grad).mul_(grad))
    denom = v.sqrt().div_(bc2_sqrt).add_(eps)
    flat.sub_(m.div(denom).mul_(step_size))
    count.add_(1)


def make_step(s: Setup, mm: str = "bmm"):
    """One training step as a function of tensors: updates flat and the state in place,
    returns (loss [K], grad [K, P]) (what the probe would copy)."""
    spec, head = s.spec, s.head
    if mm == "klast":
        fb = fwd_bwd_klast
    elif mm == "pk":
        fb = functools.partial(fwd_bwd_klast, flat_is_pk=True)
    else:
        fb = functools.partial(fwd_bwd, mm=mm)
    if s.plan.rule == "momentum" and not s.plan.weight_decay:
        def step(flat, buf, count, x, y, lr, mom):
            loss, grad = fb(spec, head, flat, x, y)
            momentum_update_(flat, grad, buf, count, lr, mom, mm == "pk")
            return loss, grad
    elif s.plan.rule == "adam" and not s.plan.weight_decay:
        def step(flat, m, v, count, x, y, lr, beta1, beta2, eps, ss=None, bc=None):
            loss, grad = fb(spec, head, flat, x, y)
            adam_update_(flat, grad, m, v, count, lr, beta1, beta2, eps, mm == "pk",
                         None if ss is None else (ss, bc))
            return loss, grad
    else:
        raise NotImplementedError(s.plan)
    return step


def state_args(s: Setup, state):
    h = s.hyper
    if s.plan.rule == "momentum":
        return (state.buf[0], state.count), (h.lr, h.momentum)
    return (state.exp_avg[0], state.exp_avg_sq[0], state.count), (h.lr, h.beta1, h.beta2, h.eps)


def tensors_of(state):
    return tuple(t for f in state for t in (f if isinstance(f, tuple) else (f,)))


class Compiled:
    """``unroll`` steps per call: 1 (a step), or the epoch's steps (minibatch workloads;
    the epoch's gather inside too), or ``unroll`` full-batch steps."""

    def __init__(self, s: Setup, mode: str | None, unroll: int = 1, cpp_wrapper: bool = False,
                 mm: str = "bmm", hoist: bool = False):
        self.s, self.mode, self.unroll, self.hoist = s, mode, unroll, hoist
        what = "fused step" + {"bmm": "", "sum": ", mm as mul+sum", "klast": ", K-last mul+sum",
                                "pk": ", K-last, flat/state stored [P,K]"}[mm] + \
            (", adam coefs hoisted" if hoist else "")
        self.pk = mm == "pk"
        per = "1 step/call" if unroll == 1 else \
            ("1 epoch/call" if s.perms is not None else f"{unroll} steps/call")
        self.label = f"compile {mode or 'eager-fn'} {what}, {per}" + \
            (", cpp_wrapper" if cpp_wrapper else "")
        self.cpp_wrapper = cpp_wrapper
        step = make_step(s, mm)
        if s.perms is not None and unroll > 1:
            spe, bs, xt, yt = s.spe, s.bs, s.t.x_train, s.t.y_train

            def fn(perm, *args):
                tabs = args[-2:] if hoist else None
                args = args[:-2] if hoist else args
                state_t, hyp = args[:-len(s_hyp)], args[-len(s_hyp):]
                xs = xt.index_select(0, perm.reshape(-1)).view(*perm.shape, -1)
                ys = yt.index_select(0, perm.reshape(-1)).view(perm.shape)
                losses = []
                for j in range(spe):
                    extra = (tabs[0][j], tabs[1][j]) if hoist else ()
                    loss, _ = step(state_t[0], *state_t[1:], xs[:, j * bs:(j + 1) * bs],
                                   ys[:, j * bs:(j + 1) * bs], *hyp, *extra)
                    losses.append(loss)
                return torch.stack(losses)
            s_hyp = state_args(s, s.fresh()[1])[1]
        elif unroll > 1:
            x, y = s.t.x_train, s.t.y_train

            def fn(*args):
                losses = []
                for _ in range(unroll):
                    loss, _ = step(args[0], *args[1:-2], x, y, *args[-2:])
                    losses.append(loss)
                return torch.stack(losses)
        else:
            fn = step
        self.fn = fn
        self.compiled = None
        self.compile_s = None
        self.error = None

    def _compile(self):
        if self.mode is None:
            return self.fn
        if self.cpp_wrapper:
            import torch._inductor.config as ic
            ic.cpp_wrapper = True
        return torch.compile(self.fn, mode=self.mode, fullgraph=True, dynamic=False)

    def reset(self):
        self.flat, self.state = self.s.fresh()
        if self.pk:                        # the same values, stored [P, K]
            self.flat = self.flat.t().contiguous()
            self.state = type(self.state)(self.state.count, *(
                tuple(t.t().contiguous() for t in f) for f in self.state[1:]))
        self.grad = torch.empty_like(self.flat)
        if self.compiled is None:
            self.compiled = self._compile()

    def run(self):
        s = self.s
        st, hyp = state_args(s, self.state)
        with torch.no_grad():
            if s.perms is not None and self.unroll > 1:
                for e in range(s.epochs):
                    tabs = adam_coefficients(self.state.count, *hyp[:3], s.spe) \
                        if self.hoist else ()
                    self.compiled(s.perms[e], self.flat, *st, *hyp, *tabs)
            elif s.perms is not None:
                for e in range(s.epochs):
                    xs, ys = s.epoch_data(e)
                    tabs = adam_coefficients(self.state.count, *hyp[:3], s.spe) \
                        if self.hoist else None
                    for j in range(s.spe):
                        xb, yb = s.batch(xs, ys, j)
                        extra = (tabs[0][j], tabs[1][j]) if self.hoist else ()
                        self.compiled(self.flat, *st, xb, yb, *hyp, *extra)
            else:
                n = s.steps // self.unroll
                assert n * self.unroll == s.steps
                for _ in range(n):
                    if self.unroll > 1:
                        self.compiled(self.flat, *st, *hyp)
                    else:
                        self.compiled(self.flat, *st, s.t.x_train, s.t.y_train, *hyp)
        return self.flat.t() if self.pk else self.flat


def try_lib(s: Setup, mode: str) -> str:
    """Does the library's own step (loss_and_grad + step_all_active) compile fullgraph?"""
    spec, head, plan, hyper = s.spec, s.head, s.plan, s.hyper
    flat, state = s.fresh()
    grad = torch.empty_like(flat)
    xs, ys = s.epoch_data(0)
    xb, yb = s.batch(xs, ys, 0)
    out = []

    def lib_fwd_bwd(flat, grad, x, y):
        return loss_and_grad(spec, layers(spec, flat), x, y, head, grad)

    def lib_opt(flat, grad, state):
        return step_all_active(plan, [flat], [grad], state, hyper)

    for name, fn, args in (("loss_and_grad", lib_fwd_bwd, (flat, grad, xb, yb)),
                           ("step_all_active", lib_opt, (flat, grad, state))):
        torch._dynamo.reset()
        try:
            t0 = time.perf_counter()
            torch.compile(fn, mode=mode, fullgraph=True, dynamic=False)(*args)
            out.append(f"{name}: compiles fullgraph ({time.perf_counter() - t0:.1f} s)")
        except Exception as exc:  # noqa: BLE001
            msg = str(exc).strip().splitlines()
            out.append(f"{name}: FAILS fullgraph: {type(exc).__name__}: "
                       + " | ".join(m for m in msg[:3]))
        try:
            expl = torch._dynamo.explain(fn)(*args)
            out.append(f"  explain: graphs={expl.graph_count} breaks={expl.graph_break_count} "
                       + "; ".join(str(b.reason)[:160] for b in expl.break_reasons[:3]))
        except Exception as exc:  # noqa: BLE001
            out.append(f"  explain failed: {type(exc).__name__}: {str(exc)[:200]}")
    torch._dynamo.reset()
    return "\n".join(out)


def eager_breakdown(s: Setup, reps: int = 300) -> str:
    """µs per piece of one eager step (first batch of epoch 0)."""
    flat, state = s.fresh()
    params, grad = layers(s.spec, flat), torch.empty_like(flat)
    xs, ys = s.epoch_data(0)
    xb, yb = s.batch(xs, ys, 0)
    fwd = forward_loss(s.spec, params, xb, yb, s.head)
    res = {}
    for name, f in (("forward_loss", lambda: forward_loss(s.spec, params, xb, yb, s.head)),
                    ("backward_into", lambda: backward_into(s.spec, params, fwd, grad)),
                    ("step_all_active", lambda: step_all_active(s.plan, [flat.clone()], [grad],
                                                                state, s.hyper)),
                    ("flat.clone (ref)", lambda: flat.clone())):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                f()
            best = min(best, (time.perf_counter() - t0) / reps)
        res[name] = best * 1e6
    return ", ".join(f"{k} {v:.1f}" for k, v in res.items())


def engine_times(name: str) -> str:
    """The engine end to end on the full workload, probe off and on (seconds)."""
    from mlplab.engine.cohort import train_cohort
    w = {x.name: x for x in workloads()}[name]
    out = []
    for probe in (False, True, False, True):
        t0 = time.perf_counter()
        train_cohort(w.configs, probe=probe)
        out.append((probe, time.perf_counter() - t0))
    best = {p: min(t for q, t in out if q == p) for p in (False, True)}
    steps = w.configs[0].train.epochs * (1 if name == "W1" else 11)
    return (f"engine end-to-end: probe off {best[False]:.3f} s "
            f"({len(w.configs) * steps / best[False] / 1e3:.0f}k model-steps/s, "
            f"{best[False] / steps * 1e6:.0f} µs/step), probe on {best[True]:.3f} s "
            f"({len(w.configs) * steps / best[True] / 1e3:.0f}k/s, "
            f"{best[True] / steps * 1e6:.0f} µs/step)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--modes", default="default,max-autotune-no-cudagraphs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="", help="substring filter on compiled variant labels")
    ap.add_argument("--w1-steps", type=int, default=1000)
    ap.add_argument("--w2-epochs", type=int, default=20)
    ap.add_argument("--w1-unroll", type=int, default=8)
    ap.add_argument("--engine", action="store_true", help="also time train_cohort")
    ap.add_argument("--no-lib", action="store_true", help="skip compiling the lib functions")
    ap.add_argument("--cpp-wrapper", action="store_true", help="add cpp_wrapper variants")
    ap.add_argument("--warm-cache", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    # every 1-step variant wraps the same code object `step`: one cache entry each
    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.accumulated_recompile_limit = 1024
    modes = [m for m in args.modes.split(",") if m]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, inductor cache "
          f"{os.environ.get('TORCHINDUCTOR_CACHE_DIR', 'default')}")
    for name in args.workloads.split(","):
        s = Setup(name, args.w1_steps if name == "W1" else args.w2_epochs)
        print(f"\n=== {name}: K={s.k}, P={s.spec.n_params}, steps={s.steps} "
              f"(spe {s.spe}, bs {s.bs}), plan {s.plan}")
        if args.engine:
            print(engine_times(name))
        print("eager breakdown µs:", eager_breakdown(s))
        if not args.no_lib:
            print(try_lib(s, modes[0] if modes else "default"))
        variants = [Eager(s), Compiled(s, None)]               # fused fn, not compiled
        for mode in modes:
            variants.append(Compiled(s, mode))
            variants.append(Compiled(s, mode, unroll=s.spe if s.perms is not None
                                     else args.w1_unroll))
        for mode in modes[:1]:
            for mm in ("sum", "klast", "pk"):
                variants.append(Compiled(s, mode, mm=mm))
                variants.append(Compiled(s, mode, mm=mm, unroll=s.spe if s.perms is not None
                                         else args.w1_unroll))
        if s.plan.rule == "adam":
            for mode in modes[:1]:
                variants.append(Compiled(s, mode, hoist=True))
                variants.append(Compiled(s, mode, hoist=True, unroll=s.spe))
        if args.cpp_wrapper and modes:
            variants.append(Compiled(s, modes[0], cpp_wrapper=True))
        variants = variants[:2] + [v for v in variants[2:] if args.only in v.label]
        times = {v.label: float("inf") for v in variants}
        compile_s, results, errors = {}, {}, {}
        for r in range(args.rounds + 1):                     # round 0: compile + check
            for v in variants:
                if v.label in errors:
                    continue
                try:
                    t0 = time.perf_counter()
                    v.reset()
                    out = v.run()
                    dt = time.perf_counter() - t0
                except Exception as exc:  # noqa: BLE001
                    errors[v.label] = f"{type(exc).__name__}: {str(exc)[:400]}"
                    traceback.print_exc(limit=3)
                    continue
                if r == 0:
                    compile_s[v.label] = dt
                    results[v.label] = out.clone()
                else:
                    times[v.label] = min(times[v.label], dt)
        ref = results.get(variants[0].label)
        eager_t = times[variants[0].label]
        print(f"{'variant':<62}{'µs/step':>9}{'vs eager':>9}{'1st run s':>10}"
              f"{'max|Δflat|':>12}")
        for v in variants:
            if v.label in errors:
                print(f"{v.label:<62} ERROR {errors[v.label]}")
                continue
            t = times[v.label]
            diff = (results[v.label] - ref).abs().max().item() if ref is not None else float("nan")
            first = compile_s[v.label] - t          # ~compile time: 1st run minus steady run
            print(f"{v.label:<62}{t / s.steps * 1e6:>9.1f}{eager_t / t:>8.2f}x"
                  f"{first:>10.1f}{diff:>12.2e}")
        print(f"(|flat| max {ref.abs().max().item():.2f}; rates: eager "
              f"{s.k * s.steps / eager_t / 1e3:.0f}k model-steps/s, best compiled "
              f"{s.k * s.steps / min(times[v.label] for v in variants[1:]) / 1e3:.0f}k)")
        counters = torch._dynamo.utils.counters
        print("dynamo graph breaks:", dict(counters["graph_break"]) or "none",
              "| unique graphs:", counters["stats"].get("unique_graphs"))


if __name__ == "__main__":
    main()
