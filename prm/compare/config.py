"""The config of `prm compare`."""

from __future__ import annotations

from typing import Literal

from prm.bon.select import AGGREGATES
from prm.config import config, option
from prm.generate.engine import Sampling

STRATEGIES = ("bon", "beam", "dvts", "astar", "mcts")


@config("compare")
class CompareConfig:
    problems: str = option(help="held-out problems with a gold answer (and gold steps: their count splits easy/hard)")
    prm: str = option(help="the PRM (a prm train folder): step scores for best-of-N, beam, DVTS and A*'s g")
    output: str = option(help="folder for compare.json, compare.md, compare.png, every unit's results; reruns resume")
    value: str | None = option(
        None, "the Q-value model (prm train --loss soft on mc values): A*'s h and MCTS's leaf value; null: the PRM"
    )
    policy: str = option("smollm2-135m", "policy: a local folder, a hub id, or smollm2-135m (the embedded model)")
    strategies: tuple[str, ...] = option(STRATEGIES, "strategies to compare: bon, beam, dvts, astar, mcts")
    budgets: tuple[int, ...] = option(
        (4, 8, 16, 32), "budgets in samples' tokens: k means k times the mean tokens of one full sample"
    )
    limit: int | None = option(None, "use only the first `limit` problems")
    only: Literal["all", "easy", "hard"] = option(
        "all", "search only the easy or only the hard problems (split by hard_steps, after limit); all: every one"
    )
    hard_steps: int = option(
        4, "problems whose gold solution has at least this many steps (its answer line counts) are reported as hard"
    )
    timeout_s: float | None = option(
        None,
        "seconds a problem may stay in one unit's search (problems are searched together: the unit's wall time while "
        "the problem is active); a problem that hits it ends there and counts as it ended (wrong without an answer)",
    )
    max_steps: int = option(8, "steps per solution at most (search depth)")
    beam_rank_by: str = option(
        "min",
        "beam and DVTS: PRM aggregate that ranks partial solutions and complete ones; best-of-N (PRM rank) ranks "
        "the pool's solutions by it too",
    )
    beam_answer: str = option(
        "vote", "beam and DVTS: best (the complete solution ranked first) or vote (PRM-weighted vote over the complete)"
    )
    astar_g: str = option("min", "A*: aggregate of the PRM's step scores along the path (min, mean, last or prod)")
    astar_lambda: float = option(1.0, "A*: weight of the heuristic, f = g + lambda * h")
    astar_expand: int = option(4, "A*: next steps sampled per popped node")
    astar_answer: str = option("vote", "A*: best (the complete solution of best f) or vote (total g per answer)")
    astar_grow: str = option(
        "step", "A*: step (a popped node grows by `astar_expand` next steps) or path (by as many rollouts to the end)"
    )
    mcts_c: float = option(1.0, "MCTS: exploration constant of PUCT")
    mcts_prior: str = option("policy", "MCTS: policy (the step's mean token log-probability) or uniform (UCT)")
    mcts_expand: int = option(4, "MCTS: next steps sampled per expanded node")
    mcts_answer: str = option("visits", "MCTS: visits (most visited path), best (highest value) or vote")
    mcts_rollout: float = option(
        0.0, "MCTS: weight of a rollout check in each leaf's value (the policy finishes the solution); 0: none"
    )
    bon_trials: int = option(200, "random draws of N from each pool for best-of-N")
    max_step_tokens: int = option(
        64, "tokens per sampled step at most (search; sampling.max_new_tokens caps a full sample)"
    )
    seed: int = option(0, "seed of sampling")
    bf16: bool = option(True, "bf16 weights and autocast for the policy and the scorers")
    sampling: Sampling = option(
        Sampling(batch_size=64, max_new_tokens=160),
        "how the policy samples (prm.generate.engine); max_new_tokens caps a full sample of the best-of-N pool",
    )
    progress: bool = option(True, "a line per unit and a progress line per search round on stderr")

    def __post_init__(self):
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ValueError(f"strategies must be among {', '.join(STRATEGIES)}, got {list(self.strategies)}")
        if not self.budgets or min(self.budgets) < 1:
            raise ValueError("budgets must be >= 1")
        if min(self.max_steps, self.astar_expand, self.mcts_expand, self.bon_trials, self.hard_steps) < 1:
            raise ValueError("max_steps, astar_expand, mcts_expand, bon_trials and hard_steps must be >= 1")
        if self.max_step_tokens < 1:
            raise ValueError("max_step_tokens must be >= 1")
        for name in ("beam_rank_by", "astar_g"):
            if getattr(self, name) not in AGGREGATES:
                raise ValueError(f"{name} must be one of {', '.join(AGGREGATES)}")
        for name in ("beam_answer", "astar_answer"):
            if getattr(self, name) not in ("best", "vote"):
                raise ValueError(f"{name} must be best or vote")
        if self.astar_grow not in ("step", "path"):
            raise ValueError("astar_grow must be step or path")
        if self.mcts_answer not in ("visits", "best", "vote"):
            raise ValueError("mcts_answer must be visits, best or vote")
        if self.mcts_prior not in ("policy", "uniform"):
            raise ValueError("mcts_prior must be policy or uniform")
        if self.mcts_c < 0:
            raise ValueError("mcts_c must be >= 0")
        if not 0.0 <= self.mcts_rollout <= 1.0:
            raise ValueError("mcts_rollout must be within [0, 1]")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0 (or null)")
