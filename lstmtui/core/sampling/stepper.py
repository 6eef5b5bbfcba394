"""O(1)-per-character steps of a CharLSTM: the LSTM equations on preallocated buffers.

nn.LSTM called on a (1, 1) input spends a millisecond or more in per-call set-up on CPU; a
character step here is the same equations as a few in-place ops per layer on views made once.
The weights come from the model's public ``step_weights()`` and are folded at construction:

- the first layer's input projection (embedding or one-hot times W_ih, plus both biases) is
  precomputed per character, so layer 0 starts from a table row;
- deeper layers multiply one concatenated [W_ih | W_hh] by the adjacent [h_below | h_own] slice
  of one hidden buffer;
- gate rows are reordered to i, f, o, g with the i, f, o rows halved, so that one tanh covers
  every gate (sigmoid(x) = tanh(x/2)/2 + 1/2).
"""

from __future__ import annotations

import numpy as np
import torch

from lstmtui.core.model import StepWeights


def supports_stepping(model) -> bool:
    """Whether the model exposes the weights a stepper needs (a CharLSTM does)."""
    return callable(getattr(model, "step_weights", None))


def _gate_order(hidden: int, device: torch.device) -> torch.Tensor:
    """Row indices taking PyTorch's i, f, g, o gate order to i, f, o, g."""
    hh = hidden
    return torch.cat([torch.arange(0, 2 * hh), torch.arange(3 * hh, 4 * hh), torch.arange(2 * hh, 3 * hh)]).to(device)


def _gate_scale(hidden: int, device: torch.device) -> torch.Tensor:
    """0.5 on the (reordered) sigmoid gates' rows, 1 on the tanh gate's."""
    scale = torch.ones(4 * hidden, device=device, dtype=torch.float32)
    scale[: 3 * hidden] = 0.5
    return scale


class Stepper:
    """One-character steps with torch ops on preallocated buffers and folded weights (any device)."""

    def __init__(self, model) -> None:
        weights: StepWeights = model.step_weights()
        hh, layers = weights.hidden, len(weights.layers)
        self.hidden, self.layers = hh, layers
        dev = weights.head_weight.device
        # no_grad, not inference_mode: plain tensors can then be updated in place with no context
        with torch.no_grad():
            self._fold(weights, _gate_order(hh, dev), _gate_scale(hh, dev))
            self._allocate(dev, weights.head_weight.shape[0])

    def _fold(self, weights: StepWeights, order: torch.Tensor, half: torch.Tensor) -> None:
        """Float32 copies of the weights with gates reordered and the sigmoid rows halved."""

        def f32(t: torch.Tensor) -> torch.Tensor:
            return t.to(torch.float32)

        first = weights.layers[0]
        if weights.embedding is not None:
            inputs = f32(weights.embedding) @ f32(first.weight_ih).T
        else:
            inputs = f32(first.weight_ih).T  # a one-hot input selects a column of W_ih
        self.table = ((inputs + f32(first.bias_ih) + f32(first.bias_hh))[:, order] * half).contiguous()
        self.rows = list(self.table.unbind(0))
        self.weights = [(f32(first.weight_hh)[order] * half[:, None]).contiguous()]
        self.biases: list[torch.Tensor | None] = [None]
        for layer in weights.layers[1:]:
            cat = torch.cat([f32(layer.weight_ih), f32(layer.weight_hh)], dim=1)
            self.weights.append((cat[order] * half[:, None]).contiguous())
            self.biases.append(((f32(layer.bias_ih) + f32(layer.bias_hh))[order] * half).contiguous())
        self.head_w = f32(weights.head_weight).contiguous()
        self.head_b = f32(weights.head_bias).contiguous()

    def _allocate(self, dev: torch.device, vocab: int) -> None:
        """The state, gate and output buffers, and the per-layer views into them."""
        hh, layers, dtype = self.hidden, self.layers, torch.float32
        self.hs = torch.zeros(layers * hh, device=dev, dtype=dtype)
        self.cs = torch.zeros(layers * hh, device=dev, dtype=dtype)
        self.gates = gates = torch.empty(4 * hh, device=dev, dtype=dtype)
        self.tmp = torch.empty(hh, device=dev, dtype=dtype)
        self.logits = torch.empty(vocab, device=dev, dtype=dtype)
        self.sig, self.i, self.f, self.o, self.g = (
            gates[: 3 * hh],
            gates[:hh],
            gates[hh : 2 * hh],
            gates[2 * hh : 3 * hh],
            gates[3 * hh :],
        )
        self.h = [self.hs[k * hh : (k + 1) * hh] for k in range(layers)]
        self.c = [self.cs[k * hh : (k + 1) * hh] for k in range(layers)]
        self.inputs = [self.h[0]] + [self.hs[(k - 1) * hh : (k + 1) * hh] for k in range(1, layers)]
        self.top = self.h[-1]

    @staticmethod
    def supports(model) -> bool:
        """Whether this stepper can step the model."""
        return supports_stepping(model)

    def state_views(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (h, c) state as (layers, 1, hidden) views of the stepper's buffers."""
        shape = (self.layers, 1, self.hidden)
        return self.hs.view(shape), self.cs.view(shape)

    def step(self, cid: int) -> torch.Tensor:
        """Advance one character; return the logits buffer for the next one (overwritten each step)."""
        gates, sig, i, f, o, g, tmp = self.gates, self.sig, self.i, self.f, self.o, self.g, self.tmp
        for layer in range(self.layers):
            bias = self.rows[cid] if layer == 0 else self.biases[layer]
            torch.addmv(bias, self.weights[layer], self.inputs[layer], out=gates)
            gates.tanh_()
            sig.mul_(0.5).add_(0.5)
            c = self.c[layer]
            c.mul_(f).addcmul_(i, g)
            torch.tanh(c, out=tmp)
            torch.mul(o, tmp, out=self.h[layer])
        return torch.addmv(self.head_b, self.head_w, self.top, out=self.logits)


_blas_limited = False


def _single_threaded_blas() -> None:
    """Keep NumPy's BLAS to one thread in this process (once).

    A character step's products are a few hundred microseconds of memory-bound work: a second
    BLAS thread saves little on an idle machine and, when training already keeps every core busy
    (generating while the TUI trains), makes each step several times slower (figures in
    docs/performance.md). Only NumPy's BLAS is limited; torch's threads are untouched.
    """
    global _blas_limited
    if not _blas_limited:
        _blas_limited = True
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")


def _numpy_view(t: torch.Tensor) -> np.ndarray:
    """A NumPy array sharing the tensor's memory."""
    return t.numpy()


class CpuStepper(Stepper):
    """The stepper's equations in NumPy on the same (shared) buffers, for models on the CPU.

    A torch op on a vector of a few hundred floats costs several microseconds of dispatch, NumPy's
    about one, and a character step is a dozen of them per layer, so the NumPy step is the faster
    one on the CPU (figures in docs/performance.md).
    """

    def __init__(self, model) -> None:
        super().__init__(model)
        _single_threaded_blas()
        n = _numpy_view
        self.np_rows = [n(r) for r in self.rows]
        self.np_weights = [n(t) for t in self.weights]
        self.np_biases = [None] + [n(t) for t in self.biases[1:]]
        self.np_head_w, self.np_head_b = n(self.head_w), n(self.head_b)
        self.np_gates, self.np_tmp, self.np_logits = n(self.gates), n(self.tmp), n(self.logits)
        self.np_h = [n(t) for t in self.h]
        self.np_c = [n(t) for t in self.c]
        self.np_inputs = [n(t) for t in self.inputs]
        self.np_top = n(self.top)
        hh, g = self.hidden, self.np_gates
        self.np_sig, self.np_i, self.np_f, self.np_o, self.np_g = (
            g[: 3 * hh],
            g[:hh],
            g[hh : 2 * hh],
            g[2 * hh : 3 * hh],
            g[3 * hh :],
        )

    @staticmethod
    def supports(model) -> bool:
        """Whether the model can be stepped and lives on the CPU."""
        if not supports_stepping(model):
            return False
        return all(p.device.type == "cpu" for p in model.parameters())

    def step(self, cid: int) -> torch.Tensor:
        """Advance one character; return the logits buffer (a tensor over the NumPy buffer)."""
        self.step_numpy(cid)
        return self.logits

    def step_numpy(self, cid: int) -> np.ndarray:
        """Advance one character; return the logits as the NumPy buffer (overwritten each step)."""
        gates, sig, i, f, o, g = self.np_gates, self.np_sig, self.np_i, self.np_f, self.np_o, self.np_g
        tmp = self.np_tmp
        dot, add, mul, tanh = np.dot, np.add, np.multiply, np.tanh
        for layer in range(self.layers):
            dot(self.np_weights[layer], self.np_inputs[layer], out=gates)
            add(gates, self.np_rows[cid] if layer == 0 else self.np_biases[layer], out=gates)
            tanh(gates, out=gates)
            mul(sig, 0.5, out=sig)
            add(sig, 0.5, out=sig)
            c = self.np_c[layer]
            mul(c, f, out=c)
            mul(i, g, out=tmp)
            add(c, tmp, out=c)
            tanh(c, out=tmp)
            mul(o, tmp, out=self.np_h[layer])
        logits = self.np_logits
        dot(self.np_head_w, self.np_top, out=logits)
        add(logits, self.np_head_b, out=logits)
        return logits


class BatchStepper:
    """The stepper's equations for a batch of rows (the beams), with rows reorderable in place."""

    def __init__(self, stepper: Stepper, batch: int, h: torch.Tensor, c: torch.Tensor) -> None:
        self.s = stepper
        hh, layers = stepper.hidden, stepper.layers
        with torch.no_grad():
            # one row per beam: [h_0 | h_1 | ...], so [h_below | h_own] is a slice as in Stepper
            self.hs = h[:, 0, :].reshape(1, layers * hh).repeat(batch, 1).contiguous()
            self.cs = c[:, 0, :].reshape(1, layers * hh).repeat(batch, 1).contiguous()
            self.gates = gates = torch.empty(batch, 4 * hh, dtype=self.hs.dtype, device=self.hs.device)
            self.tmp = torch.empty(batch, hh, dtype=self.hs.dtype, device=self.hs.device)
        self.sig, self.i, self.f, self.o, self.g = (
            gates[:, : 3 * hh],
            gates[:, :hh],
            gates[:, hh : 2 * hh],
            gates[:, 2 * hh : 3 * hh],
            gates[:, 3 * hh :],
        )
        self.wt = [w.t() for w in stepper.weights]
        self.table = stepper.table

    def step(self, cids: torch.Tensor) -> torch.Tensor:
        """Advance every row by its character; return fresh logits (batch, vocab)."""
        s, hh = self.s, self.s.hidden
        gates, tmp = self.gates, self.tmp
        for layer in range(s.layers):
            h = self.hs[:, layer * hh : (layer + 1) * hh]
            c = self.cs[:, layer * hh : (layer + 1) * hh]
            if layer == 0:
                torch.index_select(self.table, 0, cids, out=gates)
                gates.addmm_(h, self.wt[0])
            else:
                torch.addmm(s.biases[layer], self.hs[:, (layer - 1) * hh : (layer + 1) * hh], self.wt[layer], out=gates)
            gates.tanh_()
            self.sig.mul_(0.5).add_(0.5)
            c.mul_(self.f).addcmul_(self.i, self.g)
            torch.tanh(c, out=tmp)
            h.copy_(self.o * tmp)
        top = self.hs[:, (s.layers - 1) * hh :]
        return torch.addmm(s.head_b, top, s.head_w.t())

    def reorder(self, rows: torch.Tensor) -> None:
        """Make row i a copy of row rows[i] (beam survivors and their children)."""
        self.hs.copy_(self.hs.index_select(0, rows))
        self.cs.copy_(self.cs.index_select(0, rows))

    def row_state(self, row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One row's (h, c) as (layers, 1, hidden)."""
        shape = (self.s.layers, 1, self.s.hidden)
        return self.hs[row].reshape(shape).clone(), self.cs[row].reshape(shape).clone()
