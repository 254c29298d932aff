"""The training loop and batch layout shared by `prm train` (the PRM) and `prm sft` (the policy)."""

from prm.fit.loop import Job, accelerator, fit, read_evals, setup_model
from prm.fit.rows import eager_mask, pad_right, prefix_tree, tree_rows

__all__ = [
    "Job",
    "accelerator",
    "eager_mask",
    "fit",
    "pad_right",
    "prefix_tree",
    "read_evals",
    "setup_model",
    "tree_rows",
]
