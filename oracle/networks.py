"""The seed documents' networks, as data, and a float64 NumPy reference of their training.

A network is a list of layer records (:class:`Linear`, :class:`Conv2d`, :class:`MaxPool2d`,
:class:`Sigmoid`, :class:`Flatten`) and a loss by its torch.nn.functional name. The reference runs
the forward pass, backprop by the chain rule (conv as im2col through ``sliding_window_view`` and
``tensordot``, no loop over pixels) and plain SGD in float64; the loss layer's value and gradient
are the oracle's derived forms (:func:`oracle.evaluate`), nothing written here.

Beside every value it carries the **variance of its error** in a dtype ``T`` (units of
``eps(T)²``; ``docs/error-model.md``, "Networks"): a statistical error analysis of the same
computation, rounding errors modelled as independent and mean-zero (a sum of ``n`` terms ``t`` with
sum ``S`` adds ``n · (S² + Σ t²)``; a product ``a·b`` propagates ``b²·V(a) + a²·V(b)``), carried
layer by layer forward and backward and through the SGD steps. The scale is ``LAMBDA · √V``, so a
backend computing in ``T`` is accepted within ``K · eps(T) · LAMBDA · √V`` of the reference. (The
worst-case componentwise analysis the closed forms use was measured vacuous through these layers:
9·10⁷ times the loss for Tudui.) Where a max-pool window's two largest entries are within that
bound of each other, the gradient may go to either: both positions get the routed gradient in
their bound (the route is accepted either way).

Imports go one way: this module imports the oracle, never the conformance suite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray[Any, Any]
Params = dict[str, Array]


@dataclass(frozen=True)
class Linear:
    """``nn.Linear(in_features, out_features)``. ``bias="shared"`` is what the seed's
    ``linear.bias.data = torch.tensor(5.5)`` makes: one 0-d bias broadcast over the layer's units,
    its gradient summed over units and batch."""

    name: str
    in_features: int
    out_features: int
    bias: Literal["per_unit", "shared"] = "per_unit"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        b = (self.out_features,) if self.bias == "per_unit" else ()
        return {f"{self.name}.weight": (self.out_features, self.in_features), f"{self.name}.bias": b}


@dataclass(frozen=True)
class Conv2d:
    """``nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)``, stride 1."""

    name: str
    in_channels: int
    out_channels: int
    kernel_size: int
    padding: int = 0

    def shapes(self) -> dict[str, tuple[int, ...]]:
        k = self.kernel_size
        return {
            f"{self.name}.weight": (self.out_channels, self.in_channels, k, k),
            f"{self.name}.bias": (self.out_channels,),
        }


@dataclass(frozen=True)
class MaxPool2d:
    """``nn.MaxPool2d(kernel_size)`` (stride = kernel_size). The gradient goes to the first maximum
    of each window in row-major order, as torch's CPU kernel routes it."""

    kernel_size: int

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {}


@dataclass(frozen=True)
class Sigmoid:
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {}


@dataclass(frozen=True)
class Flatten:
    """``nn.Flatten()``: every dim after the batch dim, in C order."""

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {}


Layer = Linear | Conv2d | MaxPool2d | Sigmoid | Flatten


@dataclass(frozen=True)
class Network:
    """A seed network and its training schedule.

    ``build`` names how the seed writes the module, for backends that reproduce it (torch's
    ``conformance.backends.torch_backend``); the layers are what it computes. ``lr``, ``epochs``:
    full-batch SGD, one step per epoch. ``doc``: where it comes from."""

    name: str
    layers: tuple[Layer, ...]
    loss: str
    input_shape: tuple[int, ...]  # one sample's
    lr: float
    epochs: int
    build: str
    doc: str = ""
    #: how many first SGD steps the trajectory check follows (the error analysis runs over them)
    follow: int = 5

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's shape, by name, in the order the module registers them."""
        out: dict[str, tuple[int, ...]] = {}
        for layer in self.layers:
            out.update(layer.shapes())
        return out


_MLP_LAYERS = (
    Linear("linear1", 4, 3, bias="shared"),
    Sigmoid(),
    Linear("linear2", 3, 2, bias="shared"),
    Sigmoid(),
    Linear("linear3", 2, 1, bias="shared"),
    Sigmoid(),
)
_MLP_DOC = (
    "seed 004: Linear(4,3) → Sigmoid → Linear(3,2) → Sigmoid → Linear(2,1) → Sigmoid, xavier_normal "
    "weights, each bias set to the 0-d torch.tensor(5.5), MSELoss, SGD lr 0.1, 50 epochs full batch"
)

NETWORKS: dict[str, Network] = {
    n.name: n
    for n in (
        Network(
            "mlp", _MLP_LAYERS, "mse_loss", (4,), 0.1, 50, "seed004-layers",
            _MLP_DOC + " (demo1: explicit layers)", follow=50,
        ),
        Network(
            "mlp_sequential", _MLP_LAYERS, "mse_loss", (4,), 0.1, 50, "seed004-sequential",
            _MLP_DOC + " (demo2: nn.Sequential blocks)", follow=50,
        ),
        Network(
            "cnn",
            (
                Conv2d("model1.0", 3, 32, 5, padding=2), MaxPool2d(2),
                Conv2d("model1.2", 32, 32, 5, padding=2), MaxPool2d(2),
                Conv2d("model1.4", 32, 64, 5, padding=2), MaxPool2d(2),
                Flatten(), Linear("model1.7", 1024, 64), Linear("model1.8", 64, 10),
            ),
            "cross_entropy", (3, 32, 32), 0.1, 16, "seed000-tudui",
            "seed 000: Tudui, CrossEntropyLoss on 3×32×32 images; the seed only back-propagates, the "
            "schedule (full batch of 10 images, SGD lr 0.1, 16 epochs) is this suite's: measured on "
            "the synthetic set, the loss falls at every step (lr 0.2 diverges after about 16)",
            follow=3,
        ),
        Network(
            "linear_regression", (Linear("linear", 1, 1),), "mse_loss", (1,), 0.01, 100, "seed001",
            "seed 001: Linear(1,1), MSELoss, SGD lr 0.01, 100 epochs on x = [1, 2, 3], y = 2x", follow=100,
        ),
    )
}  # fmt: skip


# -- the running error analysis ------------------------------------------------------------------


@dataclass
class _Ctx:
    """What the error analysis needs of the dtype: ``tol = K · eps(T)`` (a route within it of a
    tie may go either way) and the dtype's underflow floor in units of eps."""

    tol: float
    tiny: float = 0.0
    analyse: bool = True  # False: values only, every variance 0


def _pad(x: Array, p: int) -> Array:
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x


def _windows(x: Array, k: int) -> Array:
    """(N, C, H, W) → (N, C, H - k + 1, W - k + 1, k, k): every k×k patch, as a view."""
    return sliding_window_view(x, (k, k), axis=(2, 3))


def _conv(x: Array, w: Array, p: int) -> Array:
    """Cross-correlation (torch's conv2d without bias), stride 1, zero padding p."""
    cols = _windows(_pad(x, p), w.shape[-1])
    return np.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def _conv_grad_input(d: Array, w: Array, p: int) -> Array:
    """∂/∂x of Σ d · conv(x, w): the full correlation of d with the flipped kernel."""
    k = w.shape[-1]
    cols = _windows(_pad(d, k - 1 - p), k)
    return np.tensordot(cols, w[:, :, ::-1, ::-1], axes=([1, 4, 5], [0, 2, 3])).transpose(0, 3, 1, 2)


def _conv_grad_weight(d: Array, x: Array, p: int, k: int) -> Array:
    """∂/∂w of Σ d · conv(x, w): Σ over batch and pixels of d ⊗ patch."""
    cols = _windows(_pad(x, p), k)
    return np.tensordot(d, cols, axes=([0, 2, 3], [0, 2, 3]))


@dataclass
class _Cache:
    x: Array
    v: Array  # the variance of x's error (units of eps²)
    extra: Any = None


def _sumvar(total: Array, sq: Array, n: int) -> Array:
    """The rounding variance of a sum of ``n`` terms with sum ``total`` and Σt² ``sq``, in any
    order: ``n`` roundings, each of a partial sum of RMS magnitude at most √(total² + Σt²)."""
    return n * (total**2 + sq)


def _forward(
    layer: Layer, p: Params, vp: Params, x: Array, v: Array, ctx: _Ctx
) -> tuple[Array, Array, _Cache]:
    """The layer's output and the variance of its error (units of eps²), from its input ``x``
    with variance ``v`` and parameters ``p`` with variances ``vp``."""
    cache = _Cache(x, v)
    if isinstance(layer, Linear):
        w, b = p[f"{layer.name}.weight"], p[f"{layer.name}.bias"]
        vw, vb = vp[f"{layer.name}.weight"], vp[f"{layer.name}.bias"]
        y = x @ w.T + b
        if not ctx.analyse:
            return y, np.zeros(y.shape), cache
        x2, w2 = x * x, w * w
        vy = v @ w2.T + x2 @ vw.T + vb + _sumvar(y, x2 @ w2.T + b * b, layer.in_features + 1)
        return y, vy, cache
    if isinstance(layer, Conv2d):
        w, b = p[f"{layer.name}.weight"], p[f"{layer.name}.bias"]
        vw, vb = vp[f"{layer.name}.weight"], vp[f"{layer.name}.bias"]
        pad = layer.padding
        y = _conv(x, w, pad) + b[:, None, None]
        if not ctx.analyse:
            return y, np.zeros(y.shape), cache
        x2, w2 = x * x, w * w
        n = layer.in_channels * layer.kernel_size**2 + 1
        vy = (
            _conv(v, w2, pad) + _conv(x2, vw, pad) + vb[:, None, None]
            + _sumvar(y, _conv(x2, w2, pad) + (b * b)[:, None, None], n)
        )  # fmt: skip
        return y, vy, cache
    if isinstance(layer, Sigmoid):
        y = _sigmoid(x)
        cache.extra = y
        if not ctx.analyse:
            return y, np.zeros(y.shape), cache
        return y, (y * (1 - y)) ** 2 * v + y * y + ctx.tiny**2, cache
    if isinstance(layer, MaxPool2d):
        k = layer.kernel_size
        win, vwin = _blocks(x, k), _blocks(v, k)
        first = np.argmax(win, axis=-1)  # the first maximum in row-major order, as torch's CPU kernel
        y = np.take_along_axis(win, first[..., None], -1)[..., 0]
        if not ctx.analyse:
            cache.extra = (first, None, x.shape)
            return y, np.zeros(y.shape), cache
        # an entry within rounding of the maximum might be the one a backend picks
        sd = LAMBDA * np.sqrt(vwin)
        close = (y[..., None] - win) <= ctx.tol * (sd + np.take_along_axis(sd, first[..., None], -1))
        cache.extra = (first, close, x.shape)
        return y, vwin.sum(-1), cache  # Max(a, b): either argument's error
    if isinstance(layer, Flatten):
        cache.extra = x.shape
        return x.reshape(x.shape[0], -1), v.reshape(v.shape[0], -1), cache
    raise TypeError(f"layer: expected one of Linear, Conv2d, MaxPool2d, Sigmoid, Flatten, got {layer!r}")


def _blocks(x: Array, k: int) -> Array:
    """(N, C, H, W) → (N, C, H/k, W/k, k·k): each pooling window, its entries in row-major order."""
    n, c, h, w = x.shape
    ho, wo = h // k, w // k
    x = x[:, :, : ho * k, : wo * k].reshape(n, c, ho, k, wo, k)
    return x.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, k * k)


def _unblocks(b: Array, k: int, shape: tuple[int, ...]) -> Array:
    n, c, h, w = shape
    ho, wo = h // k, w // k
    out = np.zeros(shape)
    out[:, :, : ho * k, : wo * k] = (
        b.reshape(n, c, ho, wo, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho * k, wo * k)
    )
    return out


def _sigmoid(x: Array) -> Array:
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _backward(
    layer: Layer, p: Params, vp: Params, c: _Cache, d: Array, g: Array, ctx: _Ctx
) -> tuple[Array, Array, Params, Params]:
    """The gradient w.r.t. the layer's input and parameters, with their error variances, from the
    gradient ``d`` w.r.t. its output (variance ``g``)."""
    x, v = c.x, c.v
    if isinstance(layer, Linear):
        w = p[f"{layer.name}.weight"]
        vw = vp[f"{layer.name}.weight"]
        d2, x2, w2 = d * d, x * x, w * w
        nb = x.shape[0]
        dx = d @ w
        dw = d.T @ x
        db = d.sum() if layer.bias == "shared" else d.sum(0)
        names = (f"{layer.name}.weight", f"{layer.name}.bias")
        if not ctx.analyse:
            return dx, np.zeros(dx.shape), dict(zip(names, (dw, db), strict=True)), {}
        gx = g @ w2 + d2 @ vw + _sumvar(dx, d2 @ w2, layer.out_features)
        gw = g.T @ x2 + d2.T @ v + _sumvar(dw, d2.T @ x2, nb)
        if layer.bias == "shared":
            gb = g.sum() + _sumvar(db, d2.sum(), d.size)
        else:
            gb = g.sum(0) + _sumvar(db, d2.sum(0), nb)
        return dx, gx, {f"{layer.name}.weight": dw, f"{layer.name}.bias": db}, {
            f"{layer.name}.weight": gw, f"{layer.name}.bias": gb,
        }  # fmt: skip
    if isinstance(layer, Conv2d):
        w = p[f"{layer.name}.weight"]
        vw = vp[f"{layer.name}.weight"]
        k, pad = layer.kernel_size, layer.padding
        d2, x2, w2 = d * d, x * x, w * w
        terms = x.shape[0] * d.shape[2] * d.shape[3]  # batch × pixels summed into each weight
        dx = _conv_grad_input(d, w, pad)
        dw = _conv_grad_weight(d, x, pad, k)
        db = d.sum((0, 2, 3))
        if not ctx.analyse:
            return dx, np.zeros(dx.shape), {f"{layer.name}.weight": dw, f"{layer.name}.bias": db}, {}
        gx = (
            _conv_grad_input(g, w2, pad) + _conv_grad_input(d2, vw, pad)
            + _sumvar(dx, _conv_grad_input(d2, w2, pad), layer.out_channels * k * k)
        )  # fmt: skip
        gw = _conv_grad_weight(g, x2, pad, k) + _conv_grad_weight(d2, v, pad, k)
        gw = gw + _sumvar(dw, _conv_grad_weight(d2, x2, pad, k), terms)
        gb = g.sum((0, 2, 3)) + _sumvar(db, d2.sum((0, 2, 3)), terms)
        return dx, gx, {f"{layer.name}.weight": dw, f"{layer.name}.bias": db}, {
            f"{layer.name}.weight": gw, f"{layer.name}.bias": gb,
        }  # fmt: skip
    if isinstance(layer, Sigmoid):
        y = c.extra
        vy = (y * (1 - y)) ** 2 * v + y * y  # the forward variance of y
        du = d * y * (1 - y)
        if not ctx.analyse:
            return du, np.zeros(du.shape), {}, {}
        # torch: grad · (1 − y) · y, three roundings; y's own error through ∂/∂y = d(1 − 2y)
        gu = g * (y * (1 - y)) ** 2 + (d * (1 - 2 * y)) ** 2 * vy + 3 * du * du + ctx.tiny**2
        return du, gu, {}, {}
    if isinstance(layer, MaxPool2d):
        first, close, shape = c.extra
        k = layer.kernel_size
        onehot = np.zeros((*first.shape, k * k))
        np.put_along_axis(onehot, first[..., None], 1.0, -1)
        dx = _unblocks(onehot * d[..., None], k, shape)
        if not ctx.analyse:
            return dx, np.zeros(dx.shape), {}, {}
        # a route within rounding of a tie may go to any close entry: each gets |d| in its bound
        ambiguous = close.sum(-1, keepdims=True) > 1
        spread = np.where(close & ambiguous, (d[..., None] / (ctx.tol * LAMBDA)) ** 2, 0.0)
        gx = _unblocks(onehot * g[..., None] + spread, k, shape)
        return dx, gx, {}, {}
    if isinstance(layer, Flatten):
        shape = c.extra
        return d.reshape(shape), g.reshape(shape), {}, {}
    raise TypeError(f"layer: expected one of Linear, Conv2d, MaxPool2d, Sigmoid, Flatten, got {layer!r}")


# -- the loss layer: the oracle's derived forms ----------------------------------------------------


def _loss_layer(
    loss: str, out: Array, v_out: Array, target: Array, ctx: _Ctx
) -> tuple[float, float, Array, Array]:
    """The loss value and its gradient w.r.t. the network's output (reduction 'mean', upstream 1),
    from the oracle, with their error variances: the oracle's own error scale (for exact inputs),
    squared, plus the output's error propagated, through ∂ℓ/∂x for the value and through the
    gradient's Jacobian ∂gᵢ/∂xⱼ for the gradient (central differences of the oracle's gradient,
    one probe per feature column; the losses here treat batch rows independently)."""
    import oracle

    def ev(x: Array) -> Any:
        return oracle.evaluate(
            loss, x, target, reduction="mean", wrt=("input",), underflow=ctx.tiny, bounds=True
        )

    r = ev(out)
    g = np.asarray(r.grads["input"])
    if not ctx.analyse:
        return float(np.asarray(r.value)), 0.0, g, np.zeros(g.shape)
    v_value = float(np.asarray(r.value_scale)) ** 2 + float((g * g * v_out).sum())
    sens = np.zeros_like(g)
    flat, flat_v = out.reshape(out.shape[0], -1), v_out.reshape(out.shape[0], -1)
    for j in range(flat.shape[1]):
        h = np.zeros_like(flat)
        h[:, j] = 2.0**-20 * np.maximum(np.abs(flat[:, j]), 1.0)
        up = np.asarray(ev((flat + h).reshape(out.shape)).grads["input"]).reshape(flat.shape)
        dn = np.asarray(ev((flat - h).reshape(out.shape)).grads["input"]).reshape(flat.shape)
        jac = (up - dn) / (2 * h[:, j : j + 1])
        sens += (jac**2 * flat_v[:, j : j + 1]).reshape(g.shape)
    v_grad = np.asarray(r.grad_scale["input"]) ** 2 + sens
    return float(np.asarray(r.value)), v_value, g, v_grad


# -- training --------------------------------------------------------------------------------------

#: standard deviations of the modelled error in a network's error scale (docs/error-model.md)
LAMBDA = 4.0


def _scale(v: Any) -> Any:
    return LAMBDA * np.sqrt(v)


@dataclass
class Step:
    """One SGD step of the reference: the loss before it, the gradients it took and the
    parameters after it, each with its error scale (``LAMBDA`` standard deviations of the modelled
    error, in units of eps: a backend in dtype T is accepted within ``K · eps(T) · scale``)."""

    loss: float
    loss_scale: float
    grads: Params
    grad_scales: Params
    params: Params
    param_scales: Params


@dataclass
class Trajectory:
    network: str
    steps: list[Step] = field(default_factory=list)

    @property
    def losses(self) -> list[float]:
        return [s.loss for s in self.steps]


def _check_params(net: Network, params: Mapping[str, Any]) -> Params:
    shapes = net.shapes()
    missing = sorted(set(shapes) - set(params))
    extra = sorted(set(params) - set(shapes))
    if missing or extra:
        raise ValueError(
            f"params: expected {sorted(shapes)} for {net.name}, missing {missing}, unexpected {extra}"
        )
    out: Params = {}
    for k, shape in shapes.items():
        a = np.asarray(params[k], dtype=np.float64)
        if a.shape != shape:
            raise ValueError(f"params[{k!r}]: expected shape {shape}, got {a.shape}")
        out[k] = a.copy()
    return out


def _step(
    net: Network, p: Params, vp: Params, inputs: Array, target: Array, ctx: _Ctx
) -> tuple[float, float, Params, Params]:
    """Forward and backward once: the loss and each parameter's gradient, with error variances."""
    x = np.asarray(inputs, dtype=np.float64)
    v = np.zeros(x.shape)
    caches = []
    for layer in net.layers:
        x, v, c = _forward(layer, p, vp, x, v, ctx)
        caches.append(c)
    value, v_value, d, g = _loss_layer(net.loss, x, v, target, ctx)
    grads: Params = {}
    gvars: Params = {}
    for layer, c in zip(reversed(net.layers), reversed(caches), strict=True):
        d, g, dp, gp = _backward(layer, p, vp, c, d, g, ctx)
        grads.update(dp)
        gvars.update(gp)
    zero = {k: np.zeros(a.shape) for k, a in p.items()}
    return (
        value,
        v_value,
        {k: np.asarray(grads[k]) for k in p},
        {k: np.asarray(gvars.get(k, zero[k])) for k in p},
    )


def loss_and_grads(
    net: Network,
    params: Mapping[str, Any],
    inputs: Array,
    target: Array,
    *,
    tol: float = 0.0,
    tiny: float = 0.0,
) -> tuple[float, float, Params, Params]:
    """Forward and backward once from exact parameters: the loss, its error scale, and each
    parameter's gradient and error scale. ``tol = K · eps(T)`` decides which max-pool routes are
    ambiguous; ``tiny`` is the dtype's underflow floor in units of eps."""
    p = _check_params(net, params)
    vp = {k: np.zeros(a.shape) for k, a in p.items()}
    value, v_value, grads, gvars = _step(net, p, vp, inputs, target, _Ctx(max(tol, 2.0**-60), tiny))
    return value, float(_scale(v_value)), grads, {k: _scale(a) for k, a in gvars.items()}


def train(
    net: Network,
    params: Mapping[str, Any],
    inputs: Array,
    target: Array,
    *,
    lr: float | None = None,
    steps: int | None = None,
    tol: float = 0.0,
    tiny: float = 0.0,
    analysed: int | None = None,
) -> Trajectory:
    """Full-batch SGD (``p ← p − lr · ∇p``, no momentum, no weight decay), ``steps`` steps
    (default: the network's epochs) at ``lr`` (default: the network's; pass it rounded to the
    dtype). The error analysis follows the first ``analysed`` steps (default all); later steps
    record scales of NaN (not analysed)."""
    lr = net.lr if lr is None else lr
    steps = net.epochs if steps is None else steps
    analysed = steps if analysed is None else analysed
    ctx = _Ctx(max(tol, 2.0**-60), tiny)
    p = _check_params(net, params)
    vp = {k: np.zeros(a.shape) for k, a in p.items()}
    traj = Trajectory(net.name)
    for t in range(steps):
        ctx.analyse = t < analysed
        value, v_value, grads, gvars = _step(net, p, vp, inputs, target, ctx)
        new = {k: p[k] - lr * grads[k] for k in p}
        if t < analysed:  # p − lr·g: a product and a difference, each rounded
            vp = {k: vp[k] + lr * lr * (gvars[k] + grads[k] ** 2) + new[k] ** 2 for k in p}
            scales = (
                float(_scale(v_value)),
                {k: _scale(a) for k, a in gvars.items()},
                {k: _scale(a) for k, a in vp.items()},
            )
        else:
            nan = {k: np.full(a.shape, np.nan) for k, a in p.items()}
            scales = (float("nan"), nan, nan)
        p = new
        traj.steps.append(
            Step(value, scales[0], grads, scales[1], {k: a.copy() for k, a in p.items()}, scales[2])
        )
    return traj


def xavier_normal(shape: Sequence[int], rng: np.random.Generator) -> Array:
    """``nn.init.xavier_normal_``'s distribution: N(0, 2 / (fan_in + fan_out))."""
    fan_out, fan_in = shape[0], int(np.prod(shape[1:]))
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=tuple(shape))


def default_init(net: Network, rng: np.random.Generator) -> Params:
    """torch's default initialisation of Linear and Conv2d, drawn with NumPy: weight and bias
    uniform on ±1/√fan_in (kaiming_uniform with a = √5 gives that bound for the weight)."""
    out: Params = {}
    for layer in net.layers:
        if isinstance(layer, Linear | Conv2d):
            shapes = layer.shapes()
            wshape = shapes[f"{layer.name}.weight"]
            bound = 1.0 / math.sqrt(int(np.prod(wshape[1:])))
            for k, shape in shapes.items():
                out[k] = rng.uniform(-bound, bound, size=shape)
    return out
