"""The catalog of known GLM models: context window, output limits, features, prices.

Figures are Z.ai's list prices (USD per million tokens) and published limits,
as of 2026-11. Any model id works: an unknown id (a local vLLM or
Ollama model, a new release) gets :data:`DEFAULT_MODEL_INFO`, whose limits are
deliberately conservative so trimming never overflows a smaller window.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL_INFO",
    "MESSAGE_TOKENS",
    "ModelInfo",
    "estimate_cost",
    "estimate_tokens",
    "format_cost",
    "model_info",
]


@dataclass(frozen=True)
class ModelInfo:
    """What we know about one model id.

    Prices are USD per million tokens; ``None`` means unknown (cost is then
    not shown). ``default_output`` is the output budget we reserve when the
    user gives no ``--max-tokens``.
    """

    id: str
    context_window: int
    max_output: int
    default_output: int
    thinking: str = "hybrid"  # "on", "hybrid", "auto", "forced", "none", "unknown"
    vision: bool = False
    tool_stream: bool = False
    price_input: float | None = None
    price_output: float | None = None
    price_cached: float | None = None
    known: bool = True

    def reply_reserve(self, max_tokens: int | None = None) -> int:
        """Tokens to keep free for the reply.

        ``max_tokens`` when set, else the model's default output, at most a
        quarter of the window.
        """
        return max_tokens or min(self.default_output, self.context_window // 4)

    @property
    def supports_thinking(self) -> bool:
        """Whether the model accepts the ``thinking`` request field."""
        return self.thinking not in ("none", "unknown")


def _m(
    model_id: str,
    ctx: int,
    max_out: int,
    default_out: int,
    thinking: str,
    prices: tuple[float, float, float] | None,
    *,
    vision: bool = False,
    tool_stream: bool = False,
) -> ModelInfo:
    p_in, p_out, p_cached = prices if prices is not None else (None, None, None)
    return ModelInfo(
        model_id,
        ctx,
        max_out,
        default_out,
        thinking,
        vision,
        tool_stream,
        p_in,
        p_out,
        p_cached,
    )


_K = 1024
_FREE = (0.0, 0.0, 0.0)

CATALOG: dict[str, ModelInfo] = {
    m.id: m
    for m in (
        _m("glm-5.1", 200_000, 128 * _K, 64 * _K, "on", (1.40, 4.40, 0.26), tool_stream=True),
        _m("glm-5", 200_000, 128 * _K, 64 * _K, "on", (1.00, 3.20, 0.20), tool_stream=True),
        _m("glm-5-turbo", 200_000, 128 * _K, 64 * _K, "auto", (1.20, 4.00, 0.24), tool_stream=True),
        _m("glm-4.7", 200_000, 128 * _K, 64 * _K, "on", (0.60, 2.20, 0.11), tool_stream=True),
        _m("glm-4.7-flashx", 200_000, 128 * _K, 64 * _K, "unknown", (0.07, 0.40, 0.01)),
        _m("glm-4.7-flash", 200_000, 128 * _K, 64 * _K, "unknown", _FREE),
        _m("glm-4.6", 200_000, 128 * _K, 64 * _K, "hybrid", (0.60, 2.20, 0.11), tool_stream=True),
        _m("glm-4.5", 128_000, 96 * _K, 64 * _K, "hybrid", (0.60, 2.20, 0.11)),
        _m("glm-4.5-x", 128_000, 96 * _K, 64 * _K, "hybrid", (2.20, 8.90, 0.45)),
        _m("glm-4.5-air", 128_000, 96 * _K, 64 * _K, "hybrid", (0.20, 1.10, 0.03)),
        _m("glm-4.5-airx", 128_000, 96 * _K, 64 * _K, "hybrid", (1.10, 4.50, 0.22)),
        _m("glm-4.5-flash", 128_000, 96 * _K, 64 * _K, "hybrid", _FREE),
        _m("glm-4.5v", 64_000, 16 * _K, 16 * _K, "forced", (0.60, 1.80, 0.11), vision=True),
        _m("glm-4.6v", 128_000, 32 * _K, 16 * _K, "auto", (0.30, 0.90, 0.05), vision=True),
        _m("glm-4.6v-flash", 128_000, 32 * _K, 16 * _K, "auto", _FREE, vision=True),
        _m("glm-4.6v-flashx", 128_000, 32 * _K, 16 * _K, "auto", (0.04, 0.40, 0.0), vision=True),
        _m("glm-5v-turbo", 200_000, 128 * _K, 64 * _K, "auto", (1.20, 4.00, 0.24), vision=True),
    )
}

#: Used for ids the catalog does not know: a 32K window fits most local models.
DEFAULT_MODEL_INFO = ModelInfo(
    id="unknown",
    context_window=32_768,
    max_output=8_192,
    default_output=4_096,
    thinking="unknown",
    known=False,
)


def model_info(model_id: str) -> ModelInfo:
    """Return the catalog entry for ``model_id`` (case-insensitive), or safe defaults.

    A provider prefix such as ``zai/glm-4.7`` or ``openai/glm-4.6`` is ignored
    when looking the id up, since proxies like LiteLLM add one.
    """
    key = model_id.strip().lower()
    found = CATALOG.get(key) or CATALOG.get(key.rsplit("/", 1)[-1])
    if found is not None:
        return found
    return replace(DEFAULT_MODEL_INFO, id=model_id)


def estimate_tokens(text: str) -> int:
    """A cheap token estimate for budgeting: about 3.5 characters a token.

    GLM's tokenizer averages roughly 3.5-4 characters of English or code per
    token; erring on the high side keeps trimmed requests inside the window.
    """
    if not text:
        return 0
    return max(1, (len(text) * 2 + 6) // 7)


def estimate_cost(
    info: ModelInfo, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> float | None:
    """Estimated USD cost from catalog prices, or ``None`` when prices are unknown."""
    if info.price_input is None or info.price_output is None:
        return None
    cached = min(max(cached_tokens, 0), prompt_tokens)
    cached_price = info.price_cached if info.price_cached is not None else info.price_input
    fresh = prompt_tokens - cached
    return (
        fresh * info.price_input + cached * cached_price + completion_tokens * info.price_output
    ) / 1_000_000


#: Tokens a chat template adds around each message (role markers), in estimates.
MESSAGE_TOKENS = 4


def format_cost(value: float, *, approx: bool = True) -> str:
    """A cost for people: ``~$0.0012``, ``<$0.0001``, ``~$1,234.50`` (one form everywhere)."""
    if 0 < value < 0.0001:
        return "<$0.0001"
    mark = "~" if approx else ""
    return f"{mark}${value:,.2f}" if value >= 100 else f"{mark}${value:,.4f}"
