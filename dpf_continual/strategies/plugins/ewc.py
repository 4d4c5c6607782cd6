"""Elastic weight consolidation on the prompt (the ``ewc`` baseline), through Avalanche.

Avalanche's ``EWCPlugin`` adds the penalty; only the Fisher estimate is done here, because
Avalanche's version builds its own data loader that expects image-style ``(x, y, t)`` batches,
while ours are tokenised batches made by the backbone.
"""

from __future__ import annotations

from avalanche.training.plugins import EWCPlugin
from avalanche.training.utils import zerolike_params_dict
from torch.utils.data import DataLoader

from dpf_continual.strategies.dpf import row_losses


class PromptEWCPlugin(EWCPlugin):
    """EWC with a diagonal Fisher estimated on tokenised batches."""

    def compute_importances(
        self, model, criterion, optimizer, dataset, device, batch_size, num_workers=0
    ):
        importances = zerolike_params_dict(model)
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=model.backbone.collate)
        for batch in loader:
            batch = batch.to(device)
            model.zero_grad()
            row_losses(model(batch), batch["labels"]).mean().backward()
            for (name, param), (key, importance) in zip(
                model.named_parameters(), importances.items(), strict=True
            ):
                assert name == key, "parameter order changed during the Fisher estimate"
                if param.grad is not None:
                    importance.data += param.grad.detach().pow(2)
        for importance in importances.values():
            importance.data /= max(1, len(loader))
        model.zero_grad()
        return importances


__all__ = ["PromptEWCPlugin"]
