"""Per-task loss weights for a batch that mixes tasks: ``L_total = Σ_i λ_i · L_i``.

A batch holds examples of the new task and of replayed earlier ones, so the joint loss is a sum of
per-task scalar losses ``L_i``. The policies (:class:`LossWeighting`) choose the weights ``λ_i``
over the tasks present in the batch: ``equal`` (all 1), ``uncertainty`` (Kendall et al., 2018,
learned log-variances), ``gradnorm`` (Chen et al., 2018, learned weights that balance gradient
norms on the shared pool and gate) and ``dwa`` (Liu et al., 2019, weights from how fast each
task's epoch loss falls). Each class docstring gives its exact formula.

Tasks come and go: a batch may hold any subset of the known tasks, and new task ids appear as the
stream grows. A task seen for the first time is registered by :meth:`LossWeighter.add_task`, which
returns the new learnable parameters (if any) so the training code can hand them to its optimiser
with ``optimizer.add_param_group``. :meth:`LossWeighter.combine` registers unknown tasks itself, but
their parameters then stay untrained until the optimiser is told about them.

Usage in a training step::

    loss = weighter.combine(task_losses, shared_params=fusion_params)
    loss.backward()        # model gradients, and those of the policy's own parameters
    optimizer.step()       # holds model params and weighter.extra_parameters()
    optimizer.zero_grad()

and ``weighter.end_epoch(mean_losses)`` at the end of each epoch (used by ``dwa``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any

import torch
from torch import Tensor, nn

from dpf_continual.errors import ConfigError

logger = logging.getLogger(__name__)

_EPS = 1e-12


class LossWeighting(str, Enum):
    """Name of a loss-weighting policy."""

    EQUAL = "equal"
    UNCERTAINTY = "uncertainty"
    GRADNORM = "gradnorm"
    DWA = "dwa"


class LossWeighter(nn.Module):
    """Base class: turns a dict of per-task losses into one loss to backpropagate.

    Subclasses implement :meth:`_combine` and :meth:`weights`, and may create parameters in
    :meth:`_new_task_parameters`; their constructors end with ``self.add_tasks(task_ids)``. The
    base class keeps the list of known task ids and saves it in the state dict, so a fresh
    weighter can load a checkpoint taken after more tasks were added.
    """

    def __init__(self) -> None:
        super().__init__()
        self._task_ids: list[int] = []

        # An empty buffer that follows ``.to(device)``, so parameters made later land there too.
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    @property
    def task_ids(self) -> list[int]:
        """Known task ids, in the order they were added."""
        return list(self._task_ids)

    def add_task(self, task_id: int) -> list[nn.Parameter]:
        """Registers a task; a task already known is left as it is.

        Args:
            task_id: Id of the task.

        Returns:
            The parameters created for the task, which the optimiser must be given
            (empty for policies without parameters and for tasks already known).

        Raises:
            TypeError: If ``task_id`` is not an int.
        """
        if isinstance(task_id, bool) or not isinstance(task_id, int):
            raise TypeError(f"task_id must be an int, got {task_id!r} ({type(task_id).__name__})")
        if task_id in self._task_ids:
            return []
        self._task_ids.append(task_id)
        return self._new_task_parameters(task_id)

    def add_tasks(self, task_ids: Iterable[int]) -> list[nn.Parameter]:
        """Registers several tasks; see :meth:`add_task`.

        Args:
            task_ids: Ids of the tasks, in stream order.

        Returns:
            All parameters created, in task order.
        """
        return [param for task_id in task_ids for param in self.add_task(task_id)]

    def extra_parameters(self) -> list[nn.Parameter]:
        """Parameters of the policy itself that the training optimiser must update."""
        return list(self.parameters())

    def combine(
        self, task_losses: Mapping[int, Tensor], shared_params: Sequence[Tensor] | None = None
    ) -> Tensor:
        """Weights and sums the losses of the tasks present in a batch.

        Args:
            task_losses: Task id to that task's scalar loss (shape ``[]``).
            shared_params: Parameters shared by all tasks (pool and gate); only ``gradnorm``
                needs them.

        Returns:
            The total loss, shape ``[]``.

        Raises:
            ValueError: If ``task_losses`` is empty or a loss is not a scalar.
        """
        if not task_losses:
            raise ValueError("task_losses is empty; expected at least one task's loss")
        for task_id, loss in task_losses.items():
            if loss.dim() != 0:
                raise ValueError(
                    f"loss of task {task_id} has shape {tuple(loss.shape)}; expected a scalar"
                )
            if task_id not in self._task_ids and self.add_task(task_id):
                logger.warning(
                    "Task %d was first seen in combine(); its %s weight is not trained until "
                    "its parameters are added to the optimiser",
                    task_id,
                    type(self).__name__,
                )
        return self._combine(dict(task_losses), shared_params)

    def weights(self) -> dict[int, float]:
        """Current ``λ_i`` of every known task, for logging."""
        raise NotImplementedError(f"{type(self).__name__} does not report weights yet")

    def end_epoch(self, mean_losses: Mapping[int, float]) -> None:
        """Hook called after each epoch with each trained task's mean loss over the epoch.

        Args:
            mean_losses: Task id to mean training loss over the epoch.
        """

    def _combine(
        self, task_losses: dict[int, Tensor], shared_params: Sequence[Tensor] | None
    ) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not combine losses yet")

    def _new_task_parameters(self, task_id: int) -> list[nn.Parameter]:
        return []

    def _new_scalar(self, value: float) -> nn.Parameter:
        anchor = self.get_buffer("_anchor")
        return nn.Parameter(torch.full((), float(value), device=anchor.device))

    # Checkpoints: the known task ids travel in the extra state, and are added before the
    # parameters are loaded so that a fresh weighter accepts a checkpoint with more tasks.

    def get_extra_state(self) -> dict[str, Any]:
        return {"task_ids": list(self._task_ids)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.add_tasks(int(task_id) for task_id in state["task_ids"])

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        extra = state_dict.get(prefix + "_extra_state")
        if extra is not None:
            self.set_extra_state(extra)
        super()._load_from_state_dict(state_dict, prefix, *args)


def _key(task_id: int) -> str:
    return f"task_{task_id}"


class EqualWeighting(LossWeighter):
    """``λ_i = 1`` for every task present: the total is the sum of the task losses.

    A sum (not a mean) keeps each task's gradient the same whatever else is in the batch, and
    matches the other policies, whose weights also sum to the number of tasks present.

    Args:
        task_ids: Tasks known from the start (more can be added with :meth:`add_task`).
    """

    def __init__(self, *, task_ids: Iterable[int] = ()) -> None:
        super().__init__()
        self.add_tasks(task_ids)

    def _combine(
        self, task_losses: dict[int, Tensor], shared_params: Sequence[Tensor] | None
    ) -> Tensor:
        return torch.stack(list(task_losses.values())).sum()

    def weights(self) -> dict[int, float]:
        return {task_id: 1.0 for task_id in self._task_ids}


class UncertaintyWeighting(LossWeighter):
    """Homoscedastic-uncertainty weighting (Kendall et al., 2018).

    With ``s_i = log σ_i²`` learned per task, ``L_total = Σ_i exp(-s_i) · L_i + s_i``: the paper's
    classification form with its 1/2 factors dropped. At the optimum ``exp(-s_i) = 1 / L_i``, so
    the task with the smaller loss gets the larger weight. The total can be negative. The
    ``s_i`` are trained by the same optimiser as the model (see :meth:`extra_parameters`).

    Args:
        task_ids: Tasks known from the start.
        init_log_variance: Starting ``s_i`` of every task (0 gives ``λ_i = 1``).
    """

    def __init__(self, *, task_ids: Iterable[int] = (), init_log_variance: float = 0.0) -> None:
        super().__init__()
        self.init_log_variance = float(init_log_variance)
        self.log_variances = nn.ParameterDict()
        self.add_tasks(task_ids)

    def _new_task_parameters(self, task_id: int) -> list[nn.Parameter]:
        param = self._new_scalar(self.init_log_variance)
        self.log_variances[_key(task_id)] = param
        return [param]

    def _combine(
        self, task_losses: dict[int, Tensor], shared_params: Sequence[Tensor] | None
    ) -> Tensor:
        terms = []
        for task_id, loss in task_losses.items():
            s = self.log_variances[_key(task_id)].to(loss.device)
            terms.append(torch.exp(-s) * loss + s)
        return torch.stack(terms).sum()

    def weights(self) -> dict[int, float]:
        return {
            task_id: math.exp(-self.log_variances[_key(task_id)].item())
            for task_id in self._task_ids
        }


class GradNormWeighting(LossWeighter):
    """GradNorm (Chen et al., 2018): learned weights that balance gradient norms.

    Each known task has a raw weight ``v_i > 0`` (a parameter). For the ``n`` tasks present in a
    batch, with shared parameters ``W`` (pool and gate):

    - ``w_i = n · v_i / Σ_j v_j`` over the batch's tasks, so the weights sum to ``n`` whichever
      tasks are present (renormalising the parameters in place, as the paper does, would reset a
      task's weight to 1 whenever it is alone in a batch);
    - ``G_i = ||∇_W w_i L_i|| = w_i · ||∇_W L_i||``, and ``G_mean`` their mean;
    - ``r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))``, ``L_i(0)`` being the task's first loss;
    - the GradNorm loss ``Σ_i |G_i - G_mean · r_i^α|``, with the target held constant, is
      differentiated with respect to the ``v_i``, giving ``g_i``.

    The returned total is ``Σ_i w_i · L_i + (Σ_i v_i g_i - [Σ_i v_i g_i])``, with the ``w_i`` and
    the bracket detached. The extra term is zero and touches no model parameter, so
    ``total.backward()`` gives the model the gradient of the weighted sum with constant weights,
    and puts ``g_i`` in ``v_i.grad`` for the outer optimiser (holding :meth:`extra_parameters`).
    Going through ``backward`` rather than setting ``.grad`` keeps this right wherever
    ``zero_grad`` is called, with gradient accumulation, and under a ``GradScaler``. As ``G_i`` is
    linear in ``w_i``, ``||∇_W L_i||`` is needed as a number only, so no second-order graph is
    built. Before each use the ``v_i`` are clamped to ``min_weight`` and rescaled together to sum
    to the number of known tasks; the rescaling keeps their scale steady and changes no ``w_i``.

    A task that trains slowly (large ``r_i``) or has a small gradient norm gets a larger weight.
    Each update costs one extra backward pass per task present (through the frozen backbone, as
    the pool feeds its input); ``update_every`` spreads that cost over several steps.

    Args:
        task_ids: Tasks known from the start.
        alpha: Strength ``α`` of the pull towards equal training rates (0 balances norms only).
        min_weight: Lower bound on a raw weight ``v_i``, so none turns negative.
        update_every: Update the weights on every this many calls of :meth:`combine` with
            gradients enabled.

    Raises:
        ConfigError: If ``alpha`` is negative, ``min_weight`` is not positive, or
            ``update_every`` is below 1.
    """

    def __init__(
        self,
        *,
        task_ids: Iterable[int] = (),
        alpha: float = 1.5,
        min_weight: float = 1e-3,
        update_every: int = 1,
    ) -> None:
        super().__init__()
        if alpha < 0:
            raise ConfigError(f"alpha must be >= 0, got {alpha}")
        if min_weight <= 0:
            raise ConfigError(f"min_weight must be > 0, got {min_weight}")
        if update_every < 1:
            raise ConfigError(f"update_every must be >= 1, got {update_every}")
        self.alpha = float(alpha)
        self.min_weight = float(min_weight)
        self.update_every = int(update_every)
        self.task_weights = nn.ParameterDict()
        self._initial_losses: dict[int, float] = {}
        self._steps = 0
        self.add_tasks(task_ids)

    def _new_task_parameters(self, task_id: int) -> list[nn.Parameter]:
        param = self._new_scalar(1.0)
        self.task_weights[_key(task_id)] = param
        return [param]

    def _combine(
        self, task_losses: dict[int, Tensor], shared_params: Sequence[Tensor] | None
    ) -> Tensor:
        for task_id, loss in task_losses.items():
            self._initial_losses.setdefault(task_id, float(loss.detach()))
        self._tidy()
        weights = self._normalised(list(task_losses))  # [n], w_i

        # Detached: the model's gradient is that of Σ w_i L_i with the w_i held constant.
        terms = [
            w.to(loss.device) * loss
            for w, loss in zip(weights.detach(), task_losses.values(), strict=True)
        ]
        total = torch.stack(terms).sum()

        training = torch.is_grad_enabled() and any(x.requires_grad for x in task_losses.values())
        if not training:
            return total
        if shared_params is None:
            raise ValueError("gradnorm needs shared_params (the pool and gate parameters)")
        update = len(task_losses) > 1 and self._steps % self.update_every == 0
        self._steps += 1
        if not update:
            return total

        # A zero-valued term whose backward puts the GradNorm gradient in the v_i.
        params = [self.task_weights[_key(task_id)] for task_id in task_losses]
        grads = self._weight_grads(task_losses, shared_params, weights, params)  # [n]
        surrogate = (torch.stack(params) * grads).sum()
        return total + (surrogate - surrogate.detach()).to(total.device)

    def _tidy(self) -> None:
        params = list(self.task_weights.values())
        with torch.no_grad():
            values = torch.stack([p.clamp(min=self.min_weight) for p in params])  # [K]
            values = values * (len(params) / values.sum())
            for param, value in zip(params, values, strict=True):
                param.copy_(value)

    def _normalised(self, task_ids: Sequence[int]) -> Tensor:
        raw = torch.stack([self.task_weights[_key(task_id)] for task_id in task_ids])  # [n]
        return raw * (len(task_ids) / raw.sum())

    def _weight_grads(
        self,
        task_losses: dict[int, Tensor],
        shared_params: Sequence[Tensor],
        weights: Tensor,
        params: list[nn.Parameter],
    ) -> Tensor:
        shared = [p for p in shared_params if p.requires_grad]
        if not shared:
            raise ValueError("shared_params holds no tensor that requires grad; gradnorm needs one")
        device = shared[0].device

        # ||∇_W L_i|| as plain numbers: the weights' gradient does not flow through them.
        norms = torch.stack([_grad_norm(loss, shared, device) for loss in task_losses.values()])
        grad_norms = weights.to(device) * norms  # [n], G_i; norms is [n] too

        # Relative inverse training rates; the target is a constant, as in the paper.
        rates = torch.stack(
            [
                loss.detach().to(device) / max(self._initial_losses[task_id], _EPS)
                for task_id, loss in task_losses.items()
            ]
        )  # [n]
        rates = rates / rates.mean().clamp(min=_EPS)
        target = (grad_norms.mean() * rates**self.alpha).detach()  # [n]

        gradnorm_loss = (grad_norms - target).abs().sum()
        grads = torch.stack(torch.autograd.grad(gradnorm_loss, params))  # [n]

        # A NaN loss is the training loop's to report; it must not poison the weights for good.
        return torch.nan_to_num(grads, nan=0.0, posinf=0.0, neginf=0.0).to(params[0].device)

    def weights(self) -> dict[int, float]:
        """``w_i`` of every known task, as if all were in one batch."""
        if not self._task_ids:
            return {}
        with torch.no_grad():
            weights = self._normalised(self._task_ids).tolist()
        return dict(zip(self._task_ids, weights, strict=True))

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        state["initial_losses"] = dict(self._initial_losses)
        state["steps"] = self._steps
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self._initial_losses = {int(k): float(v) for k, v in state["initial_losses"].items()}
        self._steps = int(state["steps"])


def _grad_norm(loss: Tensor, params: list[Tensor], device: torch.device) -> Tensor:
    """The L2 norm of ``∇_params loss`` as a detached scalar; the graph is kept for later use."""
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    total = torch.zeros((), device=device)
    for grad in grads:
        if grad is not None:
            total = total + grad.detach().to(device).pow(2).sum()
    return total.sqrt()


class DWAWeighting(LossWeighter):
    """Dynamic weight average (Liu et al., 2019).

    From the mean epoch losses given to :meth:`end_epoch`, each task keeps its last two values
    (the last two epochs in which it was trained) and its rate ``r_i = L_i(t-1) / L_i(t-2)``.
    In a batch, the ``m`` tasks with two epochs of history get
    ``λ_i = m · exp(r_i / T) / Σ_j exp(r_j / T)`` (``j`` over those ``m``), so the task whose loss
    fell least gets the most weight; tasks with less history get ``λ_i = 1``. The weights sum to
    the number of tasks present.

    Args:
        task_ids: Tasks known from the start.
        temperature: Softmax temperature ``T``; larger values give more even weights.

    Raises:
        ConfigError: If ``temperature`` is not positive.
    """

    def __init__(self, *, task_ids: Iterable[int] = (), temperature: float = 2.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self._history: dict[int, list[float]] = {}  # task -> last two epoch losses, oldest first
        self.add_tasks(task_ids)

    def end_epoch(self, mean_losses: Mapping[int, float]) -> None:
        """Records each task's mean loss over the epoch that just ended.

        Args:
            mean_losses: Task id to mean training loss; tasks not trained this epoch are left out.

        Raises:
            ValueError: If a loss is not a finite number.
        """
        for task_id, value in mean_losses.items():
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(
                    f"mean loss of task {task_id} is {value}; expected a finite number"
                )
            self.add_task(task_id)
            history = self._history.setdefault(task_id, [])
            history.append(value)
            del history[:-2]

    def _lambdas(self, task_ids: Sequence[int]) -> dict[int, float]:
        lambdas = {task_id: 1.0 for task_id in task_ids}
        ready = [task_id for task_id in task_ids if len(self._history.get(task_id, ())) == 2]
        if not ready:
            return lambdas

        rates = [self._history[i][1] / max(self._history[i][0], _EPS) for i in ready]
        logits = [rate / self.temperature for rate in rates]
        top = max(logits)
        exps = [math.exp(logit - top) for logit in logits]
        for task_id, value in zip(ready, exps, strict=True):
            lambdas[task_id] = len(ready) * value / sum(exps)
        return lambdas

    def _combine(
        self, task_losses: dict[int, Tensor], shared_params: Sequence[Tensor] | None
    ) -> Tensor:
        lambdas = self._lambdas(list(task_losses))
        return torch.stack([lambdas[i] * loss for i, loss in task_losses.items()]).sum()

    def weights(self) -> dict[int, float]:
        """``λ_i`` of every known task, as if all were in one batch."""
        return self._lambdas(self._task_ids)

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        state["history"] = {task_id: list(h) for task_id, h in self._history.items()}
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self._history = {int(k): [float(v) for v in h] for k, h in state["history"].items()}


_POLICIES: dict[LossWeighting, type[LossWeighter]] = {
    LossWeighting.EQUAL: EqualWeighting,
    LossWeighting.UNCERTAINTY: UncertaintyWeighting,
    LossWeighting.GRADNORM: GradNormWeighting,
    LossWeighting.DWA: DWAWeighting,
}


def make_loss_weighter(name: str | LossWeighting, **kwargs: Any) -> LossWeighter:
    """Builds a loss-weighting policy by name.

    Args:
        name: One of ``equal``, ``uncertainty``, ``gradnorm``, ``dwa`` (case does not matter).
        **kwargs: Keyword arguments of the policy's constructor (``task_ids``, ``alpha``, ...).

    Returns:
        The policy, a :class:`LossWeighter`.

    Raises:
        ConfigError: A ``ValueError``; if ``name`` is not a known policy.
    """
    allowed = ", ".join(policy.value for policy in LossWeighting)
    try:
        policy = LossWeighting(name if isinstance(name, LossWeighting) else str(name).lower())
    except ValueError:
        raise ConfigError(f"unknown loss weighting {name!r}; expected one of: {allowed}") from None
    return _POLICIES[policy](**kwargs)
