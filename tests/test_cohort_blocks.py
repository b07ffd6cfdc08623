"""Several full-batch epochs to one call of the compiled program
(:mod:`mlplab.engine.compiled_block`): every model's stop points, restarts, best attempt,
weights and recorded metrics exactly those of one epoch a call.

The program is the pure epoch function run as it is, not compiled (``obtain`` replaced):
one epoch a call and a block of epochs then run the same operations on the same numbers,
so the records must be equal bit for bit, and any difference is the host's bookkeeping
of the block (which epoch a model stopped in, its masks, its restart, its records). The
compiled packages of the same programs are tested against the engine in
``test_cohort_compiled.py``."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from mlplab.engine import aot_package, compiled, compiled_block
from mlplab.engine.cohort import train_cohort
from mlplab.engine.host import HostSync
from test_cohort import SMALL, assert_same_record, make_configs

FULL = copy.deepcopy(SMALL)
FULL["train"].update(batch_size=0, optimizer="momentum", epochs=30)
FULL["probe"].update(every=1)


@pytest.fixture
def uncompiled(monkeypatch):
    """``obtain`` hands out the epoch function itself; returns the calls made, one list
    of epochs per call."""
    calls: list[int] = []

    def obtain(key, fn, args, sig, label="", free=None, options=None):
        flat = aot_package._Flat(fn, args)
        return aot_package.Package(lambda *t: list(flat(*t)), sig, label, "eager", 0.0)

    monkeypatch.setattr(compiled, "obtain", obtain)
    run = compiled.CompiledEpoch.run

    def counted(self, *args, **kwargs):
        out = run(self, *args, **kwargs)
        calls.append(None if out is None else out.epochs)
        return out

    monkeypatch.setattr(compiled.CompiledEpoch, "run", counted)
    return calls


CASES = {
    # plateaus at different epochs and restarts, the probe every step, activation
    # statistics every third, boundary snapshots
    "momentum": ({"stopping": {"restarts": 2, "patience": 4, "min_delta": 1e-3}},
                 [{"train.lr": 1e-4}, {"train.lr": 0.3}, {"train.lr": 0.05},
                  {"train.lr": 3e-3, "train.momentum": 0.5}, {"train.lr": 1e-3}]),
    # cross-entropy; lr 1e30 diverges and restarts while the others train on
    "diverging": ({"data": {"name": "gaussians", "k": 3, "n": 60},
                   "train": {"optimizer": "sgd", "loss": "ce", "epochs": 20},
                   "stopping": {"restarts": 1, "patience": 5}},
                  [{"train.lr": 0.1}, {"train.lr": 1e30}, {"train.lr": 0.3}, {"train.lr": 1e-4}]),
    # a validation set of its own, best weights restored, a target some models meet,
    # gradient clipping
    "adam": ({"train": {"optimizer": "adam", "clip_grad_norm": 0.5},
              "stopping": {"restarts": 1, "restore_best": True, "monitor": "val_acc",
                           "target": 0.9, "patience": 6},
              "probe": {"every": 3, "activations_every": 2}},
             [{"train.lr": 0.05}, {"train.lr": 1e-4}, {"train.lr": 0.1, "train.beta1": 0.5},
              {"train.lr": 0.02}, {"train.lr": 3e-3}]),
}


def _configs(case):
    base = copy.deepcopy(FULL)
    shared, per_model = CASES[case]
    for top, values in shared.items():
        base.setdefault(top, {}).update(values)
    return make_configs(base, per_model)


@pytest.mark.parametrize("case", sorted(CASES))
def test_blocks_of_epochs_equal_one_epoch_a_call(case, monkeypatch, uncompiled):
    configs = _configs(case)
    monkeypatch.setattr(compiled_block, "BLOCK_EPOCHS", 1)
    one = train_cohort(configs, dtype=torch.float64, compile=True)
    one_calls = list(uncompiled)
    uncompiled.clear()
    monkeypatch.setattr(compiled_block, "BLOCK_EPOCHS", 8)
    blocks = train_cohort(configs, dtype=torch.float64, compile=True)
    assert set(one_calls) == {1} and set(uncompiled) == {8}
    assert len(uncompiled) < len(one_calls) / 4
    for got, want in zip(blocks, one):          # (assert_same_record's reference: "engine")
        assert_same_record(got, replace(want, source="engine"), tol=0.0)
    # attempts ended inside blocks (not at their last epoch), at different epochs, and
    # some models restarted
    ends = [(a.end_reason, a.epochs) for r in one for a in r.attempts]
    assert any(e % 8 for _, e in ends) and len({e for _, e in ends}) > 1, ends
    assert any(len(r.attempts) > 1 for r in one)
    want = {"adam": {"target", "plateau"}, "momentum": {"plateau", "max_epochs"},
            "diverging": {"diverged", "max_epochs"}}[case]
    assert want <= {reason for reason, _ in ends}, ends


def test_a_schedule_or_minibatches_run_one_epoch_a_call():
    # the host sets a schedule's lr and draws the minibatch orders before each epoch
    plain = _configs("momentum")[0]
    cosine = replace(plain, train=replace(plain.train,
                                          schedule=replace(plain.train.schedule, name="cosine")))
    assert compiled_block.epochs_per_call(cosine, 1) == 1
    assert compiled_block.epochs_per_call(plain, 3) == 1
    assert compiled_block.epochs_per_call(plain, 1) == compiled_block.BLOCK_EPOCHS


def test_the_host_reads_after_a_block_that_holds_a_read():
    every8 = HostSync(every=8, epochs=100, peek=True)
    assert all(every8.should_sync(e, ran=8) for e in range(8, 97, 8))
    assert every8.should_sync(12, ran=5) and not every8.should_sync(15, ran=3)
    assert every8.should_sync(101, ran=8)                   # past the last epoch
