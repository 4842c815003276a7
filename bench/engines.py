"""The engines of the benchmark and the code each workload runs on them.

Every scalar engine is driven by the *same* Python code (operators on its
values), so that the only thing that differs between rows is the engine:

- ``ours``            autograd.Value, eager (the graph is built from Python, backward in C)
- ``ours-replay``     autograd.Graph: the graph is recorded once, forward/backward replayed in C
- ``micrograd``       micrograd 0.1.0 as shipped (Python's cycle collector on)
- ``micrograd-nogc``  the same, gc.disable() around the timed region, gc.collect() outside it
- ``torch-scalar``    PyTorch, one 0-dim float64 tensor per scalar (micrograd's code on tensors)
- ``torch-vec``       PyTorch vectorized over the batch (nn.Linear layers, float64)
- ``floats``          the same Python code on plain floats: no graph, no gradients (the floor)

Nothing here installs anything: a missing engine is reported as such.
"""
import importlib.metadata
import random
import sys

SEED = 1337          # random.seed before building an MLP: ours and micrograd draw the same weights
N_SAMPLES = 100      # micrograd's demo: 100 two-moons points
ALPHA = 1e-4         # its L2 coefficient


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# =============================================================================
# Availability
# =============================================================================

def probe():
    """{engine key: (available, version or reason)} and the imported modules."""
    out = {}
    import autograd
    out["ours"] = (True, f"arenagrad {autograd.__version__}")
    out["ours-replay"] = out["ours"]
    out["ours-dot"] = out["ours"]
    try:
        import micrograd.engine  # noqa: F401
        import micrograd.nn  # noqa: F401
        v = _version("micrograd") or "?"
        out["micrograd"] = (True, f"micrograd {v}")
        out["micrograd-nogc"] = out["micrograd"]
    except ImportError:
        out["micrograd"] = out["micrograd-nogc"] = (False, "micrograd not installed "
                                                    "(pip install micrograd==0.1.0)")
    try:
        import torch
        out["torch-scalar"] = (True, f"torch {torch.__version__} "
                                     f"({torch.get_num_threads()} threads)")
        out["torch-vec"] = out["torch-scalar"]
    except ImportError:
        out["torch-scalar"] = out["torch-vec"] = (False, "torch not installed")
    out["floats"] = (True, f"Python {sys.version.split()[0]} floats")
    return out


LABELS = {
    "ours": "ours (eager)",
    "ours-replay": "ours (Graph replay)",
    "ours-dot": "ours, `autograd._core.dot` (one C call)",
    "micrograd": "micrograd 0.1.0 as shipped",
    "micrograd-nogc": "micrograd 0.1.0, gc off",
    "torch-scalar": "PyTorch 0-dim scalars",
    "torch-vec": "PyTorch vectorized",
    "floats": "plain floats (floor)",
    "pyvalue": "pure-Python Value (micrograd + exp, log)",
    "pyvalue-nogc": "pure-Python Value, gc off",
}


# =============================================================================
# Scalar engines: leaves, backward
# =============================================================================

class Scalar:
    """How to make a leaf and run backward on one scalar engine."""

    def __init__(self, key):
        self.key = key
        self.nogc = key == "micrograd-nogc"
        if key in ("ours", "ours-replay"):
            from autograd import Value
            self.leaf = Value
            self.const_leaf = Value
        elif key in ("micrograd", "micrograd-nogc"):
            from micrograd.engine import Value
            self.leaf = Value
            self.const_leaf = Value
        elif key == "torch-scalar":
            import torch
            f64 = torch.float64

            def leaf(x, torch=torch, f64=f64):
                return torch.tensor(x, dtype=f64, requires_grad=True)

            def const_leaf(x, torch=torch, f64=f64):
                return torch.tensor(x, dtype=f64)

            self.leaf = leaf
            self.const_leaf = const_leaf
        elif key == "floats":
            self.leaf = float
            self.const_leaf = float
        else:
            raise ValueError(key)

    def backward(self, root):
        if self.key == "floats":
            return
        if self.key == "torch-scalar":
            root.backward(retain_graph=True)
        else:
            root.backward()


# =============================================================================
# Graph shapes (workloads 1, 2, 4): the same operator code for every engine
# =============================================================================
# `n` is the number of graph nodes, leaves included.

def dot_terms(n):
    """dot(ws, xs) has 4 nodes per term (w, x, w*x, +) plus sum()'s constant 0."""
    return max(1, (n - 1) // 4)


def dot_leaves(eng, n):
    m = dot_terms(n)
    rnd = random.Random(1)
    ws = [eng.leaf(rnd.uniform(-1, 1)) for _ in range(m)]
    xs = [eng.leaf(rnd.uniform(-1, 1)) for _ in range(m)]
    return ws, xs


def dot(ws, xs):
    """A dot product as people write it: sum(w * x ...), 2 binary ops per term, depth ~m."""
    return sum((w * x for w, x in zip(ws, xs)), 0)


def chain_steps(n):
    """chain(): 2 leaves, then 2 nodes (a *, a +) per step."""
    return max(1, (n - 2) // 2)


def chain(eng, n):
    """A deep chain y <- y * w + b: depth n, so micrograd's recursive sort needs a raised
    recursion limit. w = 1 and b = 1e-3 keep data and grads normal numbers (no denormals)."""
    w = eng.leaf(1.0)
    b = eng.leaf(1e-3)
    y = w
    for _ in range(chain_steps(n)):
        y = y * w + b
    return y


def wide_terms(n):
    """wide(): 2m leaves, m products and m - 1 sums: 4m - 1 nodes."""
    return max(1, (n + 1) // 4)


def wide(eng, n):
    """A wide, shallow graph: m products of fresh leaves summed as a balanced tree
    (depth log2 m, so every engine's recursion is fine). Leaf creation is included."""
    m = wide_terms(n)
    rnd = random.Random(2)
    u = rnd.random
    leaf = eng.leaf
    level = [leaf(u()) * leaf(u()) for _ in range(m)]
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


SHAPES = {"chain": (chain, lambda n: 2 * chain_steps(n) + 2),
          "wide": (wide, lambda n: 4 * wide_terms(n) - 1)}


def dot_nodes(n):
    return 4 * dot_terms(n) + 1


# =============================================================================
# micrograd's demo step (workload 3)
# =============================================================================

def moons():
    """The demo's data as Python lists (micrograd's notebook passes numpy rows; plain
    floats keep numpy's scalar dispatch out of every engine's timings)."""
    from autograd.datasets import make_moons
    X, y = make_moons(N_SAMPLES, noise=0.1, seed=1)
    return X.tolist(), y.tolist()


def lr_of(k):
    """micrograd's learning-rate schedule (k taken modulo 100: benchmarks run on)."""
    return 1.0 - 0.9 * (k % 100) / 100


def demo_loss(Value, model, X, y):
    """micrograd's demo loss(), as in its notebook (without the accuracy line): max-margin
    loss over the batch plus ALPHA * L2. The same code for every scalar engine."""
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum((p * p for p in model.parameters()))
    return data_loss + reg_loss


def swapped_mlp(make):
    """Our MLP(2, [16, 16, 1]) after random.seed(SEED) (micrograd's nn code, verbatim),
    its weights replaced by make(weight) -- for engines that have no nn module."""
    from autograd.nn import MLP
    random.seed(SEED)
    model = MLP(2, [16, 16, 1])
    for layer in model.layers:
        for neuron in layer.neurons:
            neuron.w = [make(w.data) for w in neuron.w]
            neuron.b = make(neuron.b.data)
    return model


def reference_weights():
    """The MLP(2, [16, 16, 1]) parameters that random.seed(SEED) gives (ours' draw)."""
    from autograd.nn import MLP
    random.seed(SEED)
    return [p.data for p in MLP(2, [16, 16, 1]).parameters()]


class EagerDemo:
    """micrograd's notebook step, verbatim, on a scalar engine: build the loss from
    Python, zero_grad, backward, SGD. Returns the loss (a float); the graph is dropped
    when the step returns (freed right there, or left to the cycle collector)."""

    def __init__(self, key, X, y):
        self.key = key
        self.X, self.y = X, y
        self.k = 0
        random.seed(SEED)
        if key == "ours":
            from autograd.engine import Value
            from autograd.nn import MLP
            self.Value, self.model = Value, MLP(2, [16, 16, 1])
        elif key in ("micrograd", "micrograd-nogc"):
            from micrograd.engine import Value
            from micrograd.nn import MLP
            self.Value, self.model = Value, MLP(2, [16, 16, 1])
        elif key == "torch-scalar":
            # micrograd's nn code (ours is a verbatim copy) with its weights swapped for
            # 0-dim float64 tensors holding the same numbers; inputs need no grad.
            import torch
            f64 = torch.float64
            self.model = swapped_mlp(
                lambda x: torch.tensor(x, dtype=f64, requires_grad=True))
            self.Value = lambda x, torch=torch, f64=f64: torch.tensor(x, dtype=f64)
            self.torch = torch
        else:
            raise ValueError(key)
        self.params = self.model.parameters()

    def weights(self):
        return [float(p.data) if self.key != "torch-scalar" else p.item()
                for p in self.params]

    def step(self):
        total_loss = demo_loss(self.Value, self.model, self.X, self.y)
        # --- its training step ---
        lr = lr_of(self.k)
        self.k += 1
        if self.key == "torch-scalar":
            for p in self.params:
                p.grad = None
            total_loss.backward()
            with self.torch.no_grad():
                for p in self.params:
                    p -= lr * p.grad
            return total_loss.item()
        model = self.model
        model.zero_grad()
        total_loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        return total_loss.data


class ReplayDemo:
    """The same step with the graph recorded once (inputs as leaf Values):
    params.zero_grad(); g.forward(); g.backward(); params.sgd_step(lr)."""

    def __init__(self, X, y):
        from autograd import Graph, Value, ValueVector
        from autograd.nn import MLP
        random.seed(SEED)
        self.model = model = MLP(2, [16, 16, 1])
        self.total = demo_loss(Value, model, X, y)
        self.graph = Graph(self.total)
        self.params = ValueVector(model.parameters())
        self.k = 0

    def weights(self):
        return self.params.data.tolist()

    def step(self):
        lr = lr_of(self.k)
        self.k += 1
        self.params.zero_grad()
        self.graph.forward()
        self.graph.backward()
        self.params.sgd_step(lr)
        return self.total.data      # the loss at the weights before this update


class TorchVecDemo:
    """PyTorch the way one would write it: three nn.Linear layers over the batch of 100
    (float64), the same hinge loss and L2, plain SGD; weights copied from ours."""

    def __init__(self, X, y):
        import torch
        from torch import nn
        self.torch = torch
        f64 = torch.float64
        self.X = torch.tensor(X, dtype=f64)
        self.y = torch.tensor(y, dtype=f64)
        random.seed(SEED)
        from autograd.nn import MLP
        ref = MLP(2, [16, 16, 1])
        self.layers = []
        for layer in ref.layers:
            nin = len(layer.neurons[0].w)
            lin = nn.Linear(nin, len(layer.neurons), dtype=f64)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons],
                                              dtype=f64))
                lin.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=f64))
            self.layers.append(lin)
        self.model = nn.Sequential(self.layers[0], nn.ReLU(), self.layers[1], nn.ReLU(),
                                   self.layers[2])
        # parameters() in micrograd's order, for the weights check: per neuron w..., b
        self.k = 0

    def weights(self):
        out = []
        for lin in self.layers:
            W = lin.weight.detach().tolist()
            b = lin.bias.detach().tolist()
            for row, bi in zip(W, b):
                out.extend(row)
                out.append(bi)
        return out

    def step(self):
        torch = self.torch
        model = self.model
        scores = model(self.X).squeeze(1)
        losses = torch.relu(1 + -self.y * scores)
        data_loss = losses.sum() * (1.0 / len(losses))
        reg_loss = ALPHA * sum((p * p).sum() for p in model.parameters())
        total_loss = data_loss + reg_loss
        lr = lr_of(self.k)
        self.k += 1
        model.zero_grad(set_to_none=True)
        total_loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        return total_loss.item()


# --- the floor: the same forward code on floats ---------------------------------

def _relu(x):
    return 0 if x < 0 else x            # micrograd's relu, on a float


class FloatNeuron:
    def __init__(self, w, b, nonlin):
        self.w, self.b, self.nonlin = w, b, nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return _relu(act) if self.nonlin else act


class FloatLayer:
    def __init__(self, neurons):
        self.neurons = neurons

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out


class FloatMLP:
    def __init__(self, weights):
        it = iter(weights)
        self.layers = []
        sizes = [2, 16, 16, 1]
        for i in range(3):
            neurons = []
            for _ in range(sizes[i + 1]):
                w = [next(it) for _ in range(sizes[i])]
                neurons.append(FloatNeuron(w, next(it), nonlin=i != 2))
            self.layers.append(FloatLayer(neurons))

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for n in layer.neurons for p in n.w + [n.b]]


class FloatDemo:
    """The floor: the demo step's forward (the same MLP call structure, generator sums,
    list comprehensions; relu as a Python function) on plain floats. No graph, so no
    backward, no zero_grad and no update: what the interpreter alone costs."""

    def __init__(self, X, y):
        self.X, self.y = X, y
        self.model = FloatMLP(reference_weights())

    def step(self):
        model, X, y = self.model, self.X, self.y
        inputs = [list(map(float, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [_relu(1 + -yi * scorei) for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = ALPHA * sum((p * p for p in model.parameters()))
        return data_loss + reg_loss


def make_demo(key, X, y):
    if key in ("ours", "micrograd", "micrograd-nogc", "torch-scalar"):
        return EagerDemo(key, X, y)
    if key == "ours-replay":
        return ReplayDemo(X, y)
    if key == "torch-vec":
        return TorchVecDemo(X, y)
    if key == "floats":
        return FloatDemo(X, y)
    raise ValueError(key)
