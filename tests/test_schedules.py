"""Learning-rate schedules, AdamW and label smoothing against PyTorch over whole runs."""
import numpy as np
import pytest

from minicnn import Adam, Parameter, SoftmaxCrossEntropy
from minicnn.backend import as_numpy
from minicnn.optim import SGD, AdamW
from minicnn.schedules import CosineAnnealingLR, LinearWarmup, OneCycleLR, StepLR

torch = pytest.importorskip("torch")
STEPS = 60


def _trajectory(make_ours, make_theirs, optimizer="adam", steps=STEPS):
    """(ours, theirs): the learning rate (and beta1 / momentum) before each of ``steps`` steps."""
    p = Parameter(np.zeros(2))
    tp = torch.zeros(2, requires_grad=True)
    if optimizer == "adam":
        opt, topt = Adam([p], lr=0.1), torch.optim.Adam([tp], lr=0.1)
        mom, tmom = (lambda: opt.betas[0]), (lambda: topt.param_groups[0]["betas"][0])
    else:
        opt, topt = SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([tp], lr=0.1, momentum=0.9)
        mom, tmom = (lambda: opt.momentum), (lambda: topt.param_groups[0]["momentum"])
    ours, theirs = make_ours(opt), make_theirs(topt)
    a, b = [], []
    for _ in range(steps):
        a.append((opt.lr, mom()))
        b.append((topt.param_groups[0]["lr"], tmom()))
        topt.step()
        ours.step()
        theirs.step()
    return np.array(a), np.array(b)


S = torch.optim.lr_scheduler
CASES = {
    "step": (lambda o: StepLR(o, 7, 0.5), lambda o: S.StepLR(o, 7, 0.5)),
    "cosine": (lambda o: CosineAnnealingLR(o, STEPS, 1e-4),
               lambda o: S.CosineAnnealingLR(o, STEPS, 1e-4)),
    "onecycle-cos": (lambda o: OneCycleLR(o, 0.01, STEPS),
                     lambda o: S.OneCycleLR(o, 0.01, total_steps=STEPS)),
    "onecycle-linear-3phase": (
        lambda o: OneCycleLR(o, 0.02, STEPS, pct_start=0.25, anneal_strategy="linear",
                             three_phase=True),
        lambda o: S.OneCycleLR(o, 0.02, total_steps=STEPS, pct_start=0.25,
                               anneal_strategy="linear", three_phase=True)),
    "warmup-cosine": (
        lambda o: LinearWarmup(CosineAnnealingLR(o, STEPS - 10), 10, start_factor=0.1),
        lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=10),
                                     S.CosineAnnealingLR(o, STEPS - 10)], milestones=[10])),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_schedule_trajectory_equals_torch(name, optimizer):
    ours, theirs = _trajectory(*CASES[name], optimizer=optimizer)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("name", CASES)
def test_schedule_state_resumes_exactly(name):
    make = CASES[name][0]
    straight = Adam([Parameter(np.zeros(1))], lr=0.1)
    s = make(straight)
    for _ in range(25):
        s.step()
    state = s.state_dict()
    resumed = Adam([Parameter(np.zeros(1))], lr=0.1)
    r = make(resumed)
    r.load_state_dict(state)
    for _ in range(20):
        s.step(), r.step()
        assert (resumed.lr, resumed.betas) == (straight.lr, straight.betas)


def test_onecycle_refuses_steps_past_the_end():
    s = OneCycleLR(Adam([Parameter(np.zeros(1))], lr=0.1), 0.01, 4)
    for _ in range(4):
        s.step()
    with pytest.raises(ValueError, match="past total_steps=4"):
        s.step()


@pytest.mark.parametrize("wd", [0.0, 0.01, 0.3])
def test_adamw_matches_torch(backend, wd, rng):
    w0 = rng.standard_normal((3, 4))
    p = Parameter(backend.asarray(w0.copy()))
    tp = torch.tensor(w0.copy(), requires_grad=True)
    opt, topt = AdamW([p], lr=0.01, weight_decay=wd), torch.optim.AdamW([tp], lr=0.01,
                                                                         weight_decay=wd)
    for _ in range(6):
        g = rng.standard_normal((3, 4))
        opt.zero_grad()
        p.accumulate(backend.asarray(g))
        opt.step()
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(as_numpy(p.value), tp.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_label_smoothing_matches_torch(backend, rng, smoothing):
    z = rng.standard_normal((5, 4)) * 3
    y = np.array([0, 3, 1, 1, 2])
    loss = SoftmaxCrossEntropy(label_smoothing=smoothing)
    value = float(loss.forward(backend.asarray(z), backend.asarray(y)))
    grad = as_numpy(loss.backward())
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(y), label_smoothing=smoothing)
    lt.backward()
    assert value == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)
