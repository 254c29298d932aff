"""`prm serve` configuration."""

from __future__ import annotations

from prm.config import config, option
from prm.records import SPLITS
from prm.rewards import REWARD_AGGREGATES

TOKEN_ENV = "PRM_SERVE_TOKEN"


@config("serve")
class ServeConfig:
    model: str = option(help="a PRM checkpoint folder written by prm train")
    host: str = option("127.0.0.1", "address to bind; 127.0.0.1 answers this machine only, 0.0.0.0 everyone")
    port: int = option(5000, "TCP port (0: any free port, printed at start)")
    token: str | None = option(
        None, f"bearer token every request but /health must carry; default: the {TOKEN_ENV} environment variable"
    )
    aggregate: str = option("min", f"the reward of /get_reward from the step scores: {', '.join(REWARD_AGGREGATES)}")
    split: str = option("lines", f"how /get_reward splits a response into steps: {', '.join(SPLITS)}")
    batch_tokens: int = option(0, "padded tokens per forward pass (0: 1024 on a CPU, 8192 on a GPU)")
    window_ms: float = option(5.0, "after a request arrives, wait this long for another to share its forward pass")
    max_wait_ms: float = option(50.0, "the longest a request waits for others (the window slides with each arrival)")
    batch_budget: int = option(32768, "tokens of the requests collected into one scoring round at most")
    max_length: int = option(2048, "tokens per trace at most; a longer trace is refused (413), never cut")
    max_body: int = option(1_000_000, "bytes per request body at most (413 above)")
    max_traces: int = option(512, "traces per request at most (413 above)")
    bf16: bool = option(False, "bf16 autocast (faster on CPU; scores differ from fp32 by about 1e-2)")
    graceful_s: int = option(30, "on SIGTERM: seconds to finish in-flight requests before closing")
    log_requests: bool = option(False, "one access-log line per request on stderr")

    def __post_init__(self):
        if self.aggregate not in REWARD_AGGREGATES:
            raise ValueError(f"aggregate: {self.aggregate!r} is not one of {', '.join(REWARD_AGGREGATES)}")
        if self.split not in SPLITS:
            raise ValueError(f"split: {self.split!r} is not one of {', '.join(SPLITS)}")
        if self.batch_tokens < 0:
            raise ValueError("batch_tokens: must be >= 0 (0: the device's size)")
        for name in ("batch_budget", "max_length", "max_body", "max_traces"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1")
        if self.window_ms < 0 or self.max_wait_ms < 0:
            raise ValueError("window_ms and max_wait_ms: must be >= 0")
