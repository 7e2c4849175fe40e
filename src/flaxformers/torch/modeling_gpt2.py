"""GPT-2 in PyTorch with transformers' module and parameter names, so `state_dict`s are interchangeable.

The six classes of transformers' `modeling_gpt2.py`, with their forward signatures (4.x's, which
5.x keeps apart from `head_mask`), output fields and losses. Eager and SDPA attention
(`attn_implementation`), head pruning, `head_mask`, gradient checkpointing and a KV cache
(see `flaxformers.torch.cache` for what `past_key_values` may be and what comes back).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from flaxformers.models.gpt2.configuration import GPT2Config
from flaxformers.torch.cache import DynamicCache, check_cached_layer, check_legacy_past, is_cache
from flaxformers.torch.generation import GenerationMixin
from flaxformers.torch.modeling_utils import TorchPreTrainedModel
from flaxformers.torch.outputs import (
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    GPT2DoubleHeadsModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutputWithPast,
    TokenClassifierOutput,
)

logger = logging.getLogger(__name__)
ATTN_IMPLEMENTATIONS = ("eager", "sdpa")


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


# The names of flaxformers.nn.layers.ACTIVATIONS (which GPT2Config checks), in torch.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


class Conv1D(nn.Module):
    """GPT-2's linear layer: `weight` is [in, out], the transpose of nn.Linear's."""

    def __init__(self, out_features: int, in_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return out.view(*x.shape[:-1], self.weight.shape[1])


class AttentionMask:
    """One mask per forward, in the forms each implementation wants.

    `allowed` is bool [B|1, 1, T, S] (None: attend everywhere, `is_causal` says whether SDPA must
    mask the future itself); `additive` is the float form eager attention adds to the scores.
    """

    def __init__(self, allowed: torch.Tensor | None, is_causal: bool, dtype: torch.dtype):
        self.allowed, self.is_causal, self.dtype = allowed, is_causal, dtype
        self._additive: torch.Tensor | None = None

    def to(self, device: torch.device) -> AttentionMask:
        """The same mask on `device` (under model parallelism each block reads it where it runs)."""
        if self.allowed is None or self.allowed.device == device:
            return self
        return AttentionMask(self.allowed.to(device), self.is_causal, self.dtype)

    @property
    def additive(self) -> torch.Tensor | None:
        if self._additive is None and self.allowed is not None:
            if self.allowed.dtype == torch.bool:
                zero = torch.zeros((), dtype=self.dtype, device=self.allowed.device)
                self._additive = torch.where(self.allowed, zero, torch.finfo(self.dtype).min)
            else:  # a float 4D mask from the caller is already additive
                self._additive = self.allowed.to(self.dtype)
        return self._additive


class GPT2Attention(nn.Module):
    def __init__(self, config: GPT2Config, is_cross_attention: bool = False, layer_idx: int = 0):
        super().__init__()
        self.config = config
        d = config.n_embd
        self.num_heads = config.n_head
        self.head_dim = d // config.n_head
        self.split_size = d
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        self.reorder_and_upcast_attn = config.reorder_and_upcast_attn
        self.scaling = self.head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scaling /= float(layer_idx + 1)
        if is_cross_attention:
            self.c_attn = Conv1D(2 * d, d)
            self.q_attn = Conv1D(d, d)
        else:
            self.c_attn = Conv1D(3 * d, d)
        self.c_proj = Conv1D(d, d)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)
        self.pruned_heads: set[int] = set()

    def prune_heads(self, heads: set[int] | list[int]) -> None:
        """Remove heads (numbered as in the unpruned model) from c_attn's outputs and c_proj's inputs."""
        n_orig = self.num_heads + len(self.pruned_heads)
        bad = [h for h in heads if not 0 <= h < n_orig]
        if bad:
            raise ValueError(f"prune_heads: heads {bad} of layer {self.layer_idx} are not in [0, {n_orig}).")
        heads = set(heads) - self.pruned_heads
        if not heads:
            return
        # Current index of each original head still present.
        current = [h - sum(p < h for p in self.pruned_heads) for h in range(n_orig) if h not in self.pruned_heads]
        drop = {h - sum(p < h for p in self.pruned_heads) for h in heads}
        keep = [c for c in current if c not in drop]
        index = torch.cat([torch.arange(c * self.head_dim, (c + 1) * self.head_dim) for c in keep]) if keep \
            else torch.zeros(0, dtype=torch.long)
        parts = 2 if self.is_cross_attention else 3
        index_attn = torch.cat([index + i * self.split_size for i in range(parts)])
        index, index_attn = index.to(self.c_attn.weight.device), index_attn.to(self.c_attn.weight.device)
        with torch.no_grad():
            c_attn, c_proj = self.c_attn, self.c_proj
            self.c_attn = Conv1D(len(index_attn), c_attn.weight.shape[0]).to(c_attn.weight)
            self.c_attn.weight.copy_(c_attn.weight[:, index_attn])
            self.c_attn.bias.copy_(c_attn.bias[index_attn])
            self.c_proj = Conv1D(c_proj.weight.shape[1], len(index)).to(c_proj.weight)
            self.c_proj.weight.copy_(c_proj.weight[index, :])
            self.c_proj.bias.copy_(c_proj.bias)
        self.num_heads = len(keep)
        self.split_size = self.num_heads * self.head_dim
        self.pruned_heads |= heads

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], -1, self.head_dim).transpose(1, 2)  # [B, T, N*H] -> [B, N, T, H]

    def _eager(self, q, k, v, mask: torch.Tensor | None, head_mask: torch.Tensor | None):
        if self.reorder_and_upcast_attn:  # scores in fp32 whatever the compute dtype
            b, n, t, h = q.shape
            s = k.shape[-2]
            with torch.autocast(q.device.type, enabled=False):
                scores = torch.baddbmm(
                    torch.empty(b * n, t, s, dtype=torch.float32, device=q.device),
                    q.float().reshape(-1, t, h), k.float().transpose(-1, -2).reshape(-1, h, s),
                    beta=0, alpha=self.scaling,
                ).view(b, n, t, s)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) * self.scaling  # [B, N, T, S]
        if mask is not None:
            scores = scores + mask
        probs = F.softmax(scores, dim=-1).type(v.dtype)
        probs = self.attn_dropout(probs)
        if head_mask is not None:
            probs = probs * head_mask
        return torch.matmul(probs, v), probs

    def forward(
        self,
        hidden: torch.Tensor,
        cache: Any = None,
        mask: AttentionMask | None = None,
        head_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.is_cross_attention:
            query = self._heads(self.q_attn(hidden))
            cached = cache.cross_kv(self.layer_idx) if hasattr(cache, "cross_kv") else None
            if cached is None:
                key, value = map(self._heads, self.c_attn(encoder_hidden_states).split(self.split_size, dim=2))
                if hasattr(cache, "set_cross_kv"):
                    cache.set_cross_kv(self.layer_idx, key, value)
            else:
                key, value = cached
        else:
            query, key, value = map(self._heads, self.c_attn(hidden).split(self.split_size, dim=2))
            if cache is not None:
                check_cached_layer(cache, self.layer_idx, key)
                key, value = cache.update(key, value, self.layer_idx)
        impl = self.config._attn_implementation
        # The probabilities themselves are needed: eager even when SDPA is chosen (transformers 4.x did so).
        if impl == "eager" or output_attentions or head_mask is not None:
            out, weights = self._eager(query, key, value, mask.additive if mask else None, head_mask)
        else:
            out = F.scaled_dot_product_attention(
                query, key, value, attn_mask=mask.allowed if mask else None,
                dropout_p=self.attn_dropout.p if self.training else 0.0,
                is_causal=bool(mask and mask.is_causal), scale=self.scaling,
            )
            weights = None
        out = out.transpose(1, 2).reshape(*hidden.shape[:-1], -1)  # [B, T, N*H]
        return self.resid_dropout(self.c_proj(out)), weights


class GPT2MLP(nn.Module):
    def __init__(self, intermediate_size: int, config: GPT2Config):
        super().__init__()
        self.c_fc = Conv1D(intermediate_size, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, intermediate_size)
        self.act = _activation(config.activation_function)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(hidden))))


class GPT2Block(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int = 0):
        super().__init__()
        d, eps = config.n_embd, config.layer_norm_epsilon
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = GPT2Attention(config, layer_idx=layer_idx)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        if config.add_cross_attention:
            self.crossattention = GPT2Attention(config, is_cross_attention=True, layer_idx=layer_idx)
            self.ln_cross_attn = nn.LayerNorm(d, eps=eps)
        self.mlp = GPT2MLP(config.n_inner if config.n_inner is not None else 4 * d, config)

    def forward(self, hidden, cache=None, mask=None, head_mask=None, encoder_hidden_states=None,
                encoder_mask=None, output_attentions=False):
        attn_out, self_weights = self.attn(self.ln_1(hidden), cache, mask, head_mask,
                                           output_attentions=output_attentions)
        hidden = attn_out + hidden
        cross_weights = None
        if encoder_hidden_states is not None:
            if not hasattr(self, "crossattention"):
                raise ValueError("encoder_hidden_states were passed, but this model has no cross-attention "
                                 "layers: build it with config.add_cross_attention=True.")
            cross_out, cross_weights = self.crossattention(
                self.ln_cross_attn(hidden), cache, encoder_mask, head_mask, encoder_hidden_states,
                output_attentions=output_attentions,
            )
            hidden = hidden + cross_out
        hidden = hidden + self.mlp(self.ln_2(hidden))
        return hidden, self_weights, cross_weights


class GPT2SequenceSummary(nn.Module):
    """The multiple-choice head: pick one hidden state per sequence, project, activate."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.summary_type = getattr(config, "summary_type", "last")
        if self.summary_type not in ("last", "first", "mean", "cls_index"):
            raise ValueError(f"config.summary_type={self.summary_type!r} is not one of "
                             "'last', 'first', 'mean', 'cls_index'.")
        self.summary: nn.Module = nn.Identity()
        if getattr(config, "summary_use_proj", False):
            to_labels = getattr(config, "summary_proj_to_labels", False) and config.num_labels > 0
            self.summary = nn.Linear(config.n_embd, config.num_labels if to_labels else config.n_embd)
        act = getattr(config, "summary_activation", None)
        self.activation = _activation(act) if act else (lambda x: x)
        first, last = getattr(config, "summary_first_dropout", 0) or 0, getattr(config, "summary_last_dropout", 0) or 0
        self.first_dropout = nn.Dropout(first) if first > 0 else nn.Identity()
        self.last_dropout = nn.Dropout(last) if last > 0 else nn.Identity()

    def forward(self, hidden: torch.Tensor, cls_index: torch.Tensor | None = None) -> torch.Tensor:
        if self.summary_type == "last":
            out = hidden[..., -1, :]
        elif self.summary_type == "first":
            out = hidden[..., 0, :]
        elif self.summary_type == "mean":
            out = hidden.mean(dim=-2)
        else:
            seq_len = hidden.shape[-2]
            if cls_index is None:
                cls_index = torch.full(hidden.shape[:-2], seq_len - 1, dtype=torch.long, device=hidden.device)
            elif cls_index.shape != hidden.shape[:-2]:
                raise ValueError(f"mc_token_ids has shape {list(cls_index.shape)}; expected "
                                 f"{list(hidden.shape[:-2])} (batch, num_choices).")
            elif cls_index.numel() and (cls_index.min() < 0 or cls_index.max() >= seq_len):
                raise ValueError(
                    f"mc_token_ids must index tokens in [0, {seq_len - 1}] (the sequence length is {seq_len}); got "
                    f"values from {int(cls_index.min())} to {int(cls_index.max())}. Pass the position of each "
                    "choice's classification token."
                )
            index = cls_index[..., None, None].expand(*cls_index.shape, 1, hidden.shape[-1])
            out = hidden.gather(-2, index.to(hidden.device)).squeeze(-2)
        return self.last_dropout(self.activation(self.summary(self.first_dropout(out))))


class GPT2PreTrainedModel(TorchPreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    # Causal-mask buffers that old checkpoints carry (the Flax side ignores the same names).
    _keys_to_ignore_on_load_unexpected = (r"\.attn\.bias$", r"\.attn\.masked_bias$", r"\.crossattention\.bias$",
                                          r"\.crossattention\.masked_bias$")
    _constructor_kwargs = frozenset({"attn_implementation"})
    _no_split_modules = ("GPT2Block",)  # what a device map keeps on one device
    supports_gradient_checkpointing = True

    def __init__(self, config: GPT2Config, attn_implementation: str | None = None):
        super().__init__(config)
        self.model_parallel, self.device_map = False, None  # transformers 4.x's parallelize() sets them
        self.set_attn_implementation(
            attn_implementation or getattr(config, "_attn_implementation", None) or "sdpa"
        )

    def set_attn_implementation(self, attn_implementation: str) -> None:
        """'eager' or 'sdpa' (torch.nn.functional.scaled_dot_product_attention)."""
        if attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"attn_implementation={attn_implementation!r} is not supported; use one of "
                             f"{ATTN_IMPLEMENTATIONS}.")
        self.config._attn_implementation = attn_implementation

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, Conv1D)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        if isinstance(module, (GPT2Attention, GPT2MLP)):
            # GPT-2's scaled init of the residual projections: 1/sqrt(2 * n_layer).
            nn.init.normal_(module.c_proj.weight, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer))

    @property
    def base_model(self) -> GPT2Model:
        return getattr(self, self.base_model_prefix, self)

    def parallelize(self, device_map: dict[Any, list[int]] | None = None) -> None:
        """`GPT2Model.parallelize` for a model with a head: the blocks spread as the map says, a head tied
        to the embedding stays with it on the first device, other heads go where the last block is."""
        base = self.base_model
        base.parallelize(device_map)
        tied = {name.split(".")[0] for name in self.tied_weights()}
        for name, child in self.named_children():
            if child is not base:
                child.to(base.first_device if name in tied else base.last_device)
        self.model_parallel, self.device_map = True, base.device_map

    def deparallelize(self) -> None:
        self.base_model.deparallelize()
        self.to("cpu")
        self.model_parallel, self.device_map = False, None

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.wte

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        self.base_model.wte = embeddings
        self.tie_weights()

    def get_output_embeddings(self) -> nn.Module | None:
        return getattr(self, "lm_head", None)

    def resize_token_embeddings(self, new_num_tokens: int) -> nn.Embedding:
        """Grow or shrink the vocabulary; new rows are initialised at random, the LM head follows."""
        old = self.get_input_embeddings()
        new = nn.Embedding(new_num_tokens, old.weight.shape[1]).to(old.weight)
        self._init_weights(new)
        n = min(new_num_tokens, old.weight.shape[0])
        with torch.no_grad():
            new.weight[:n] = old.weight[:n]
        self.base_model.wte = new
        self.config.vocab_size = new_num_tokens
        head = self.get_output_embeddings()
        if head is not None and not self.config.tie_word_embeddings:
            resized = nn.Linear(head.in_features, new_num_tokens, bias=False).to(head.weight)
            self._init_weights(resized)
            with torch.no_grad():
                resized.weight[:n] = head.weight[:n]
            self.lm_head = resized
        self.tie_weights()
        return new

    def prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        """Remove attention heads: `{layer: [heads]}`, heads numbered as in the unpruned model.
        Recorded in `config.pruned_heads`, so save/load rebuilds the pruned shapes."""
        pruned = {int(k): set(v) for k, v in (getattr(self.config, "pruned_heads", None) or {}).items()}
        for layer, heads in heads_to_prune.items():
            if not 0 <= int(layer) < self.config.n_layer:
                raise ValueError(f"prune_heads: layer {layer} is not in [0, {self.config.n_layer}).")
            self.base_model.h[int(layer)].attn.prune_heads(list(heads))
            pruned[int(layer)] = pruned.get(int(layer), set()) | set(heads)
        self.config.pruned_heads = {k: sorted(v) for k, v in sorted(pruned.items())}

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Recompute each block's activations in backward (only in train mode; the cache is then off)."""
        self.base_model.gradient_checkpointing = True
        self.base_model._checkpoint_kwargs = {"use_reentrant": False, **(gradient_checkpointing_kwargs or {})}

    def gradient_checkpointing_disable(self) -> None:
        self.base_model.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.base_model.gradient_checkpointing


def _reject_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"{name}.forward() got unexpected keyword arguments {sorted(kwargs)}.")


def _check_ids(ids: torch.Tensor, limit: int, what: str, limit_name: str) -> None:
    if ids.numel() and (ids.min() < 0 or ids.max() >= limit):
        raise ValueError(f"{what} must lie in [0, {limit}) ({limit_name}={limit}); got values from "
                         f"{int(ids.min())} to {int(ids.max())}.")


class GPT2Model(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config, attn_implementation: str | None = None, _init: bool = True):
        super().__init__(config, attn_implementation)
        d = config.n_embd
        self.embed_dim = d
        self.wte = nn.Embedding(config.vocab_size, d)
        self.wpe = nn.Embedding(config.n_positions, d)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, layer_idx=i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(d, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing = False
        self._checkpoint_kwargs: dict[str, Any] = {"use_reentrant": False}
        self.first_device = self.last_device = "cpu"
        if _init:
            self.post_init()
        pruned = getattr(config, "pruned_heads", None) or {}
        for layer, heads in pruned.items():  # a pruned checkpoint: rebuild its shapes before loading
            self.h[int(layer)].attn.prune_heads(list(heads))

    # --- transformers 4.x's naive model parallelism ------------------------------------------------
    def parallelize(self, device_map: dict[Any, list[int]] | None = None) -> None:
        """Spread the blocks over devices, as transformers 4.x did: `device_map` maps a device (an int
        for `cuda:i`, or a name such as "cpu") to its block indices; by default the blocks are split in
        equal consecutive runs over the visible GPUs (the CPU without one). Deprecated there and here:
        load with `from_pretrained(..., device_map=...)` instead."""
        warnings.warn(
            f"`{type(self).__name__}.parallelize` is deprecated and will be removed: load the model with "
            "`from_pretrained(..., device_map='balanced')` (or a dict of module name -> device) instead.",
            FutureWarning, stacklevel=2,
        )
        devices = list(range(torch.cuda.device_count())) or ["cpu"]
        device_map = balanced_device_map(len(self.h), devices) if device_map is None else device_map
        check_device_map(device_map, len(self.h))
        self.device_map, self.model_parallel = device_map, True
        where = {layer: _device(key) for key, layers in device_map.items() for layer in layers}
        self.first_device, self.last_device = where[0], where[len(self.h) - 1]
        self.wte.to(self.first_device)
        self.wpe.to(self.first_device)
        for layer, device in where.items():
            self.h[layer].to(device)
        self.ln_f.to(self.last_device)

    def deparallelize(self) -> None:
        """Everything back on the CPU (transformers 4.x's deparallelize)."""
        warnings.warn("Like `parallelize`, `deparallelize` is deprecated and will be removed.", FutureWarning,
                      stacklevel=2)
        self.model_parallel, self.device_map = False, None
        self.first_device = self.last_device = "cpu"
        self.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _head_mask(self, head_mask: torch.Tensor | None) -> list[torch.Tensor | None]:
        """[N] or [L, N] -> per layer [1, N, 1, 1] multipliers of the attention probabilities."""
        if head_mask is None:
            return [None] * self.config.n_layer
        head_mask = head_mask.to(self.dtype)
        if head_mask.dim() == 1:
            head_mask = head_mask[None].expand(self.config.n_layer, -1)
        if head_mask.dim() != 2 or head_mask.shape[0] != self.config.n_layer:
            raise ValueError(f"head_mask must be [num_heads] or [n_layer={self.config.n_layer}, num_heads]; "
                             f"got shape {list(head_mask.shape)}.")
        out = []
        for i, block in enumerate(self.h):
            if head_mask.shape[1] != block.attn.num_heads:
                raise ValueError(f"head_mask has {head_mask.shape[1]} heads but layer {i} has "
                                 f"{block.attn.num_heads}.")
            out.append(head_mask[i][None, :, None, None])
        return out

    def _prepare_cache(self, past: Any, use_cache: bool) -> tuple[Any, bool]:
        """(cache to attend with / fill, whether the caller used legacy tuples)."""
        if isinstance(past, (tuple, list)) and len(past) > 0:
            check_legacy_past(past, self.config.n_layer)
            return DynamicCache.from_legacy_cache(past), True
        if past is None or isinstance(past, (tuple, list)):
            return (DynamicCache() if use_cache else None), isinstance(past, (tuple, list))
        if not is_cache(past):
            raise TypeError(f"past_key_values must be a Cache (with update() and get_seq_length()) or legacy "
                            f"tuples of (key, value) per layer; got {type(past).__name__}.")
        if isinstance(past, DynamicCache) and len(past) not in (0, self.config.n_layer):
            raise ValueError(f"past_key_values has {len(past)} layers but the model has "
                             f"n_layer={self.config.n_layer}; pass the cache this model returned.")
        return past, False

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        cache_position: torch.LongTensor | None = None,
        **kwargs: Any,
    ):
        _reject_kwargs(type(self).__name__, kwargs)
        cfg = self.config
        use_cache = cfg.use_cache if use_cache is None else use_cache
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = cfg.return_dict if return_dict is None else return_dict

        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
        if input_ids is not None:
            input_shape = input_ids.shape
            input_ids = input_ids.reshape(-1, input_shape[-1])  # [B, T]; DoubleHeads' choices fold into B
            _check_ids(input_ids, cfg.vocab_size, "input_ids", "vocab_size")
            inputs_embeds = self.wte(input_ids)
        else:
            input_shape = inputs_embeds.shape[:-1]
            inputs_embeds = inputs_embeds.reshape(-1, input_shape[-1], inputs_embeds.shape[-1])
        batch, seq = inputs_embeds.shape[:2]
        device = inputs_embeds.device

        if self.gradient_checkpointing and self.training and use_cache:
            if not getattr(self, "_warned_cache_off", False):
                logger.warning("use_cache=True is incompatible with gradient checkpointing; using use_cache=False.")
                self._warned_cache_off = True
            use_cache = False
        cache, legacy = self._prepare_cache(past_key_values, use_cache)
        past_len = cache.get_seq_length() if cache is not None else 0
        if past_len and (cached_batch := getattr(cache, "layers", None)) and hasattr(cached_batch[0], "keys"):
            if cached_batch[0].keys.shape[0] != batch:
                raise ValueError(f"past_key_values was built for batch size {cached_batch[0].keys.shape[0]}, but "
                                 f"the inputs have batch size {batch}. Pass the cache of this batch.")

        if position_ids is None:
            position_ids = (cache_position if cache_position is not None
                            else torch.arange(past_len, past_len + seq, device=device))[None]
        else:
            position_ids = position_ids.reshape(-1, seq)
        if past_len + seq > cfg.n_positions:
            raise ValueError(f"The cached ({past_len}) plus new ({seq}) tokens exceed n_positions={cfg.n_positions}, "
                             "the longest sequence GPT-2 has position embeddings for.")
        _check_ids(position_ids, cfg.n_positions, "position_ids", "n_positions")
        hidden = inputs_embeds + self.wpe(position_ids)
        if token_type_ids is not None:
            token_type_ids = token_type_ids.reshape(-1, seq)
            _check_ids(token_type_ids, cfg.vocab_size, "token_type_ids", "vocab_size")
            hidden = hidden + self.wte(token_type_ids)  # GPT-2 embeds token types with the token table
        hidden = self.drop(hidden)

        mask = self._self_attention_mask(attention_mask, batch, seq, past_len, hidden.dtype, device)
        encoder_mask = None
        if encoder_hidden_states is not None:
            encoder_mask = self._encoder_mask(encoder_attention_mask, encoder_hidden_states, hidden.dtype)
        head_masks = self._head_mask(head_mask)
        checkpointing = self.gradient_checkpointing and self.training
        all_hidden: tuple[torch.Tensor, ...] = ()
        all_attn: tuple[torch.Tensor, ...] = ()
        all_cross: tuple[torch.Tensor, ...] = ()
        for block, block_head_mask in zip(self.h, head_masks):
            if self.model_parallel:  # the block's inputs follow it to its device
                device = block.ln_1.weight.device
                hidden, mask = hidden.to(device), mask.to(device)
                block_head_mask = None if block_head_mask is None else block_head_mask.to(device)
                if encoder_hidden_states is not None:
                    encoder_hidden_states = encoder_hidden_states.to(device)
                    encoder_mask = None if encoder_mask is None else encoder_mask.to(device)
            if output_hidden_states:
                all_hidden += (hidden,)
            args = (hidden, None if checkpointing else cache, mask, block_head_mask, encoder_hidden_states,
                    encoder_mask, output_attentions)
            if checkpointing:
                hidden, weights, cross = checkpoint(block, *args, **self._checkpoint_kwargs)
            else:
                hidden, weights, cross = block(*args)
            if output_attentions:
                all_attn += (weights,)
                if cfg.add_cross_attention and cross is not None:
                    all_cross += (cross,)
        hidden = self.ln_f(hidden.to(self.ln_f.weight.device)).view(*input_shape, hidden.shape[-1])
        if output_hidden_states:
            all_hidden += (hidden,)
        past_out = (cache.to_legacy_cache() if legacy else cache) if use_cache else None
        out = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden,
            past_key_values=past_out,
            hidden_states=all_hidden if output_hidden_states else None,
            attentions=all_attn if output_attentions else None,
            cross_attentions=all_cross if output_attentions and cfg.add_cross_attention else None,
        )
        return out if return_dict else out.to_tuple()

    def _self_attention_mask(self, attention_mask, batch, seq, past_len, dtype, device) -> AttentionMask:
        total = past_len + seq
        if attention_mask is not None and attention_mask.dim() == 4:
            return AttentionMask(attention_mask, is_causal=False, dtype=dtype)  # the caller's own 4D mask
        if attention_mask is not None:
            attention_mask = attention_mask.reshape(batch, -1)
            if attention_mask.shape[1] != total:
                raise ValueError(
                    f"attention_mask covers {attention_mask.shape[1]} positions, but the cache holds {past_len} and "
                    f"the inputs add {seq}: pass a mask of length {total} (past and new tokens)."
                )
            if bool(attention_mask.all()):
                attention_mask = None
        if attention_mask is None and (past_len == 0 or seq == 1):
            # SDPA can mask the future itself (or there is nothing to mask); eager still needs the matrix.
            if self.config._attn_implementation == "sdpa":
                return _LazyCausal(seq, total, dtype, device)
        query_pos = torch.arange(past_len, total, device=device)
        allowed = (torch.arange(total, device=device)[None, :] <= query_pos[:, None])[None, None]  # [1, 1, T, S]
        if attention_mask is not None:
            allowed = allowed & attention_mask.bool()[:, None, None, :].to(device)  # [B, 1, T, S]
        return AttentionMask(allowed, is_causal=False, dtype=dtype)

    def _encoder_mask(self, encoder_attention_mask, encoder_hidden_states, dtype) -> AttentionMask | None:
        if encoder_attention_mask is None:
            return None
        if encoder_attention_mask.dim() == 4:
            return AttentionMask(encoder_attention_mask, is_causal=False, dtype=dtype)
        if tuple(encoder_attention_mask.shape) != tuple(encoder_hidden_states.shape[:2]):
            raise ValueError(f"encoder_attention_mask has shape {list(encoder_attention_mask.shape)}; expected "
                             f"{list(encoder_hidden_states.shape[:2])} (batch, encoder length).")
        if bool(encoder_attention_mask.all()):
            return None
        return AttentionMask(encoder_attention_mask.bool()[:, None, None, :], is_causal=False, dtype=dtype)


class _LazyCausal(AttentionMask):
    """No padding and no cache offset: SDPA uses is_causal; the matrix is built only if eager needs it."""

    def __init__(self, seq: int, total: int, dtype: torch.dtype, device: torch.device):
        super().__init__(None, is_causal=seq > 1, dtype=dtype)
        self._shape, self._device = (seq, total), device

    def to(self, device: torch.device) -> AttentionMask:
        return self if device == self._device else _LazyCausal(*self._shape, self.dtype, device)

    @property
    def additive(self) -> torch.Tensor | None:
        if self._additive is None:
            seq, total = self._shape
            query_pos = torch.arange(total - seq, total, device=self._device)
            allowed = torch.arange(total, device=self._device)[None, :] <= query_pos[:, None]
            zero = torch.zeros((), dtype=self.dtype, device=self._device)
            self._additive = torch.where(allowed, zero, torch.finfo(self.dtype).min)[None, None]
        return self._additive


# --- model parallelism ------------------------------------------------------------------------------
def balanced_device_map(n_layers: int, devices: list[Any]) -> dict[Any, list[int]]:
    """transformers 4.x's default map: equal runs of consecutive layers per device."""
    per_device = math.ceil(n_layers / len(devices))
    layers = list(range(n_layers))
    return {device: layers[i * per_device:(i + 1) * per_device] for i, device in enumerate(devices)
            if layers[i * per_device:(i + 1) * per_device]}


def check_device_map(device_map: dict[Any, list[int]], n_layers: int) -> None:
    """Every layer on exactly one device, and no layer that does not exist (4.x's assert_device_map)."""
    placed = [layer for layers in device_map.values() for layer in layers]
    duplicated = sorted({layer for layer in placed if placed.count(layer) > 1})
    missing = sorted(set(range(n_layers)) - set(placed))
    extra = sorted(set(placed) - set(range(n_layers)))
    problems = [f"{what}: {layers}" for what, layers in (("on more than one device", duplicated),
                ("on no device", missing), ("that do not exist", extra)) if layers]
    if problems:
        raise ValueError(f"device_map must place each of the {n_layers} layers on one device; layers "
                         + "; layers ".join(problems) + ".")


def _device(key: Any) -> torch.device:
    return torch.device(f"cuda:{key}" if isinstance(key, int) else key)


# --- losses ----------------------------------------------------------------------------------------
def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
    """Mean cross-entropy of token t+1 given tokens <= t; labels of -100 are ignored."""
    logits = logits.float()
    shifted = F.pad(labels.to(logits.device), (0, 1), value=-100)[..., 1:]  # [..., T]: the next token
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100,
                           reduction="sum" if num_items_in_batch is not None else "mean")
    return loss / num_items_in_batch if num_items_in_batch is not None else loss


def _lm_logits(model: nn.Module, hidden: torch.Tensor, logits_to_keep: int | torch.Tensor = 0) -> torch.Tensor:
    if isinstance(logits_to_keep, int):
        hidden = hidden[..., -logits_to_keep:, :] if logits_to_keep else hidden
    else:
        hidden = hidden[..., logits_to_keep, :]
    return model.lm_head(hidden.to(model.lm_head.weight.device))  # model parallel: the head is elsewhere


# --- heads -----------------------------------------------------------------------------------------
class GPT2LMHeadModel(GPT2PreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config, attn_implementation: str | None = None):
        super().__init__(config, attn_implementation)
        self.transformer = GPT2Model(config, attn_implementation, _init=False)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()
        self.generation_config = self._default_generation_config()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, encoder_hidden_states=None,
                encoder_attention_mask=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache_position=None,
                logits_to_keep: int | torch.Tensor = 0, num_items_in_batch=None, **kwargs):
        _reject_kwargs(type(self).__name__, kwargs)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        base = self.transformer(
            input_ids, past_key_values, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            encoder_hidden_states, encoder_attention_mask, use_cache, output_attentions, output_hidden_states,
            return_dict=True, cache_position=cache_position,
        )
        logits = _lm_logits(self, base.last_hidden_state, logits_to_keep)
        loss = causal_lm_loss(logits, labels, num_items_in_batch) if labels is not None else None
        out = CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=base.past_key_values, hidden_states=base.hidden_states,
            attentions=base.attentions, cross_attentions=base.cross_attentions,
        )
        return out if return_dict else out.to_tuple()


class GPT2DoubleHeadsModel(GPT2PreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config, attn_implementation: str | None = None):
        super().__init__(config, attn_implementation)
        config.num_labels = 1  # one score per choice, as transformers sets it
        self.transformer = GPT2Model(config, attn_implementation, _init=False)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.multiple_choice_head = GPT2SequenceSummary(config)
        self.post_init()
        self.generation_config = self._default_generation_config()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, mc_token_ids=None, labels=None,
                mc_labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, cache_position=None, **kwargs):
        _reject_kwargs(type(self).__name__, kwargs)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        base = self.transformer(
            input_ids, past_key_values, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            use_cache=use_cache, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=True, cache_position=cache_position,
        )
        hidden = base.last_hidden_state  # [B, C, T, D]
        lm_logits = _lm_logits(self, hidden)
        mc_logits = self.multiple_choice_head(hidden, mc_token_ids).squeeze(-1)  # [B, C]
        mc_loss = None
        if mc_labels is not None:
            mc_loss = F.cross_entropy(mc_logits.reshape(-1, mc_logits.shape[-1]), mc_labels.reshape(-1))
        loss = causal_lm_loss(lm_logits, labels) if labels is not None else None
        out = GPT2DoubleHeadsModelOutput(
            loss=loss, mc_loss=mc_loss, logits=lm_logits, mc_logits=mc_logits,
            past_key_values=base.past_key_values, hidden_states=base.hidden_states, attentions=base.attentions,
        )
        return out if return_dict else out.to_tuple()


class GPT2ForSequenceClassification(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config, attn_implementation: str | None = None):
        super().__init__(config, attn_implementation)
        self.num_labels = config.num_labels
        self.transformer = GPT2Model(config, attn_implementation, _init=False)
        self.score = nn.Linear(config.n_embd, self.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, cache_position=None,
                **kwargs):
        _reject_kwargs(type(self).__name__, kwargs)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        batch = (input_ids if input_ids is not None else inputs_embeds).shape[0]
        pad = self.config.pad_token_id
        if pad is None and batch != 1:
            raise ValueError(
                f"GPT2ForSequenceClassification pools each row on its last non-padding token, so a batch of {batch} "
                "needs config.pad_token_id (it is None). Set model.config.pad_token_id (e.g. to the tokenizer's "
                "pad or eos id), or pass one sequence at a time."
            )
        base = self.transformer(
            input_ids, past_key_values, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            use_cache=use_cache, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=True, cache_position=cache_position,
        )
        logits = self.score(base.last_hidden_state)  # [B, T, num_labels]
        if pad is not None and input_ids is not None:
            # The rightmost non-pad token, so left and right padding both work.
            positions = torch.arange(input_ids.shape[-1], device=logits.device, dtype=torch.int32)
            last = (positions * (input_ids != pad).to(logits.device, torch.int32)).argmax(-1)
        else:
            if pad is not None:
                logger.warning("Padding cannot be detected in inputs_embeds: pooling on the last position.")
            last = torch.full((batch,), -1, dtype=torch.long, device=logits.device)
        pooled = logits[torch.arange(batch, device=logits.device), last]  # [B, num_labels]
        loss = self._loss(pooled, labels) if labels is not None else None
        out = SequenceClassifierOutputWithPast(
            loss=loss, logits=pooled, past_key_values=base.past_key_values, hidden_states=base.hidden_states,
            attentions=base.attentions,
        )
        return out if return_dict else out.to_tuple()

    def _loss(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        labels = labels.to(pooled.device)
        if cfg.problem_type is None:  # inferred once and stored, as transformers does
            if self.num_labels == 1:
                cfg.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                cfg.problem_type = "single_label_classification"
            else:
                cfg.problem_type = "multi_label_classification"
        if cfg.problem_type == "regression":
            if self.num_labels == 1:
                return F.mse_loss(pooled.squeeze(), labels.squeeze().to(pooled.dtype))
            return F.mse_loss(pooled, labels.to(pooled.dtype))
        if cfg.problem_type == "single_label_classification":
            return F.cross_entropy(pooled.reshape(-1, self.num_labels), labels.reshape(-1))
        return F.binary_cross_entropy_with_logits(pooled, labels.to(pooled.dtype))


class GPT2ForTokenClassification(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config, attn_implementation: str | None = None):
        super().__init__(config, attn_implementation)
        self.num_labels = config.num_labels
        self.transformer = GPT2Model(config, attn_implementation, _init=False)
        dropout = next((p for p in (getattr(config, "classifier_dropout", None), getattr(config, "hidden_dropout", None))
                        if p is not None), 0.1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.n_embd, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, cache_position=None,
                **kwargs):
        _reject_kwargs(type(self).__name__, kwargs)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        base = self.transformer(
            input_ids, past_key_values, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            use_cache=use_cache, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=True, cache_position=cache_position,
        )
        logits = self.classifier(self.dropout(base.last_hidden_state))  # [B, T, num_labels]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, self.num_labels), labels.to(logits.device).reshape(-1))
        out = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=base.hidden_states,
                                    attentions=base.attentions)
        return out if return_dict else out.to_tuple()


class GPT2ForQuestionAnswering(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config, attn_implementation: str | None = None):
        super().__init__(config, attn_implementation)
        self.num_labels = config.num_labels
        self.transformer = GPT2Model(config, attn_implementation, _init=False)
        self.qa_outputs = nn.Linear(config.n_embd, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        _reject_kwargs(type(self).__name__, kwargs)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        base = self.transformer(
            input_ids, None, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            use_cache=False, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        start_logits, end_logits = (x.squeeze(-1).contiguous() for x in self.qa_outputs(base.last_hidden_state)
                                    .split(1, dim=-1))  # [B, T] each
        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the sequence are clamped to T and ignored.
            ignored = start_logits.shape[1]
            start = start_positions.reshape(-1).to(start_logits.device).clamp(0, ignored)
            end = end_positions.reshape(-1).to(end_logits.device).clamp(0, ignored)
            loss = (F.cross_entropy(start_logits, start, ignore_index=ignored)
                    + F.cross_entropy(end_logits, end, ignore_index=ignored)) / 2
        out = QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                           hidden_states=base.hidden_states, attentions=base.attentions)
        return out if return_dict else out.to_tuple()
