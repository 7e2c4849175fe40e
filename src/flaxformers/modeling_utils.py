"""FlaxPreTrainedModel: transformers 4.57's Flax model contract, over our checkpoint code.

A model object holds a config, a Linen `module` and (unless `_do_init=False`) its `params`.
Families subclass it with a `module_class`, a `config_class`, `base_model_prefix`, the dummy inputs
that `init` needs, and a `__call__` with their exact signature that ends in `self._apply`.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core.frozen_dict import FrozenDict, freeze, unfreeze

from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import ConversionRules, flatten, flax_to_state_dict, unflatten
from flaxformers.checkpoints.hub import PushToHubMixin, pop_upload_options, upload_folder
from flaxformers.configuration_utils import CONFIG_NAME, HUB_KWARGS, PretrainedConfig
from flaxformers.generation.mixin import GenerationMixin

logger = logging.getLogger("flaxformers")


def cache_length(cache: Any, input_shape: tuple[int, ...] | None = None) -> int | None:
    """Number of slots of an `init_cache` tree (`cached_key` is [(L,) B, S, K, H]; scan-over-layers
    stacks a leading layer axis), None without a cache.

    With `input_shape` [B, T] it also checks that the cache fits these inputs: built for B rows,
    with room for T more tokens. A full cache would otherwise clamp its writes and give wrong
    logits without a word. (Under a trace the filled length is unknown; the batch is still checked.)
    """
    if not cache:
        return None
    flat = flatten(unfreeze(cache))
    keys = [leaf for path, leaf in flat.items() if path[-1] == "cached_key"]
    if not keys:
        raise ValueError("past_key_values holds no `cached_key`: pass the dict that `model.init_cache(...)` returned.")
    rows, length = (int(n) for n in jnp.shape(keys[0])[-4:-2])
    if input_shape is None:
        return length
    batch, new_tokens = input_shape[0], input_shape[-1]
    if rows != batch:
        raise ValueError(
            f"past_key_values was built for batch size {rows}, but the input has {batch} rows. Build the cache "
            f"for this batch: model.init_cache({batch}, max_length)."
        )
    index = next(leaf for path, leaf in flat.items() if path[-1] == "cache_index")
    if not isinstance(index, jax.core.Tracer):
        filled = int(np.max(np.asarray(index)))  # scan-over-layers: one (equal) index per layer
        if filled + new_tokens > length:
            raise ValueError(
                f"past_key_values has room for {length} positions (init_cache max_length={length}) and holds "
                f"{filled}, so these {new_tokens} more need {filled + new_tokens}. Build a larger cache: "
                f"model.init_cache(batch_size, max_length={filled + new_tokens}) or more."
            )
    return length


# from_pretrained arguments transformers 4.57 accepted that change nothing here: the weights format is
# read from the files (`from_pt`), and there is no remote code, proxy or resumable download to set up.
_IGNORED_457_KWARGS = ("from_pt", "resume_download", "proxies", "trust_remote_code", "mirror", "_from_pipeline",
                       "_from_auto", "_commit_hash", "adapter_kwargs")


def _takes(module: nn.Module, argument: str) -> bool:
    """Whether a module's `__call__` has this keyword (image models without attention take no
    `output_attentions`); a `**kwargs` head passes everything on."""
    parameters = inspect.signature(type(module).__call__).parameters
    return argument in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def call_with_accepted(module: nn.Module, **kwargs: Any) -> Any:
    """A module called with the keywords its `__call__` takes (a composite model's part: BERT-like text
    towers take `token_type_ids`, image models without attention no `output_attentions`)."""
    return module(**{k: v for k, v in kwargs.items() if _takes(module, k)})


class FlaxPreTrainedModel(GenerationMixin, PushToHubMixin):
    config_class: ClassVar[type[PretrainedConfig]]
    module_class: ClassVar[type[nn.Module]]
    base_model_prefix: ClassVar[str] = ""
    main_input_name: ClassVar[str] = "input_ids"
    # Checkpoint names (regexes) that a PyTorch checkpoint may hold and this class does not use.
    _keys_to_ignore_on_load_unexpected: ClassVar[tuple[str, ...]] = ()
    # PyTorch names that hold a copy of another weight when `tie_word_embeddings` is set.
    _tied_weights_keys: ClassVar[dict[str, str]] = {}
    # (regex, replacement) from the name a Flax path spells to the checkpoint's (4.57 Flax's `lm_head` is
    # PyTorch's `proj_out` in some speech models)
    _checkpoint_renames: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Variable collections kept next to `params` (batch norm's `batch_stats`). With any, `model.params`
    # is the whole state `{"params": ..., "batch_stats": ...}`, as transformers 4.x Flax kept it, and
    # `train=True` returns `(outputs, {"batch_stats": ...})` with the updated statistics.
    _state_collections: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: PretrainedConfig,
        input_shape: tuple[int, ...] | None = None,
        seed: int = 0,
        dtype: jnp.dtype = jnp.float32,
        _do_init: bool = True,
        **kwargs: Any,
    ):
        if config is None:
            raise ValueError("config cannot be None: pass a config object, e.g. GPT2Config().")
        scan_layers = kwargs.pop("scan_layers", None)
        if scan_layers is not None:  # stacked layer params (nn/stack.py); checkpoints stay per-layer
            config = copy.deepcopy(config)
            config.scan_layers = bool(scan_layers)
        self._config = config
        self._module = self.module_class(config=config, dtype=dtype, **kwargs)
        self._module_kwargs = kwargs
        self.key = jax.random.PRNGKey(seed)
        self.dtype = dtype
        self.input_shape = self.default_input_shape(config) if input_shape is None else input_shape
        self.generation_config = self._default_generation_config()
        self._is_initialized = _do_init
        self._missing_keys: set[tuple[str, ...]] = set()
        init_fn = lambda rng: self.init_weights(rng, self.input_shape)  # noqa: E731
        self._params_shape_tree = jax.eval_shape(init_fn, self.key)
        self._required_params = set(flatten(unfreeze(self._params_shape_tree)))
        if _do_init:
            self.params = init_fn(self.key)

    # --- what families provide -----------------------------------------------------------------
    @staticmethod
    def default_input_shape(config: PretrainedConfig) -> tuple[int, ...]:
        """The `input_shape` that `init` traces when none is given: one token."""
        return (1, 1)

    def dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, jax.Array]:
        """Keyword inputs of `module.init` for `input_shape`."""
        input_ids = jnp.zeros(input_shape, dtype="i4")
        return {"input_ids": input_ids, "attention_mask": jnp.ones_like(input_ids)}

    # --- init ------------------------------------------------------------------------------------
    def init_weights(self, rng: jax.Array, input_shape: tuple[int, ...], params: Any = None) -> dict:
        params_rng, dropout_rng = jax.random.split(rng)
        # One compiled init: tracing it is much faster than running the model op by op.
        init = jax.jit(lambda rngs, inputs: self.module.init(rngs, **inputs, return_dict=False))
        variables = init({"params": params_rng, "dropout": dropout_rng}, self.dummy_inputs(input_shape))
        collections = ("params", *self._state_collections)
        state = variables["params"] if len(collections) == 1 else {c: variables[c] for c in collections}
        random_params = unfreeze(state)
        if params is None:
            return random_params
        flat, random_flat = flatten(unfreeze(params)), flatten(random_params)
        for path in self._missing_keys:
            flat[path] = random_flat[path]
        self._missing_keys = set()
        return unflatten(flat)

    def init_cache(self, batch_size: int, max_length: int) -> dict:
        """A zeroed static KV cache for `max_length` positions, in transformers 4.x Flax's layout."""
        inputs = self.dummy_inputs((batch_size, max_length))

        def init(rng):
            return self.module.init(rng, **inputs, init_cache=True, return_dict=False)["cache"]

        shapes = jax.eval_shape(init, jax.random.PRNGKey(0))
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), unfreeze(shapes))

    def enable_gradient_checkpointing(self, policy: Any = None) -> None:
        """Recompute each layer's activations in the backward pass (`nn.remat`)."""
        self._module = self.module_class(
            config=self.config, dtype=self.dtype, gradient_checkpointing=True, remat_policy=policy,
            **self._module_kwargs,
        )

    # --- properties ------------------------------------------------------------------------------
    @property
    def framework(self) -> str:
        return "flax"

    @property
    def config(self) -> PretrainedConfig:
        return self._config

    @property
    def module(self) -> nn.Module:
        return self._module

    @property
    def params(self) -> dict:
        if not self._is_initialized:
            raise ValueError(
                "`params` cannot be accessed from a model created with `_do_init=False`. Keep the params that "
                "from_pretrained returned (or call `init_weights`) and pass them as `params=`."
            )
        return self._params

    @params.setter
    def params(self, params: dict) -> None:
        if not self._is_initialized:
            raise ValueError(
                "`params` cannot be set on a model created with `_do_init=False`; pass them as `params=`."
            )
        if isinstance(params, FrozenDict):
            params = unfreeze(params)
        flat = flatten(params)
        missing = self.required_params - set(flat)
        if missing:
            raise ValueError(f"Some parameters are missing: {sorted('/'.join(p) for p in missing)}.")
        expected = flatten(unfreeze(self._params_shape_tree))
        wrong = [
            f"{'/'.join(p)}: got {tuple(np.shape(flat[p]))}, expected {tuple(expected[p].shape)}"
            for p in expected
            if tuple(np.shape(flat[p])) != tuple(expected[p].shape)
        ]
        if wrong:
            raise ValueError("Some parameters have the wrong shape:\n  " + "\n  ".join(wrong))
        self._params = params

    @property
    def required_params(self) -> set:
        return self._required_params

    @property
    def params_shape_tree(self) -> dict:
        return self._params_shape_tree

    # --- dtype casts -----------------------------------------------------------------------------
    def _cast_floating_to(self, params: dict, dtype: jnp.dtype, mask: Any = None) -> dict:
        def cast(x):
            return x.astype(dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x

        if mask is None:
            return jax.tree_util.tree_map(cast, unfreeze(params) if isinstance(params, FrozenDict) else params)
        flat = flatten(unfreeze(params))
        flat_mask = jax.tree_util.tree_leaves(mask)
        for do_cast, path in zip(flat_mask, sorted(flat)):
            if do_cast:
                flat[path] = cast(flat[path])
        return unflatten(flat)

    def to_bf16(self, params: dict, mask: Any = None) -> dict:
        return self._cast_floating_to(params, jnp.bfloat16, mask)

    def to_fp16(self, params: dict, mask: Any = None) -> dict:
        return self._cast_floating_to(params, jnp.float16, mask)

    def to_fp32(self, params: dict, mask: Any = None) -> dict:
        return self._cast_floating_to(params, jnp.float32, mask)

    # --- calling ---------------------------------------------------------------------------------
    def accepted_inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The entries of a tokenizer's batch that this model's `__call__` takes (a model without segment
        embeddings takes no `token_type_ids`)."""
        import inspect

        names = inspect.signature(self.__call__).parameters
        return {k: v for k, v in batch.items() if k in names}

    @property
    def _token_config(self) -> PretrainedConfig:
        """The config token ids are checked against (a text-and-image model: its text tower's)."""
        return self.config

    @property
    def _source_config(self) -> PretrainedConfig:
        """The config an encoder-decoder's source token ids are checked against (a composite: its encoder's)."""
        return self._token_config

    def _check_input_ids(self, input_ids: Any, position_ids: Any = None, config: PretrainedConfig | None = None) -> None:
        """Clear errors for token ids out of range and sequences longer than the positions (of `config`,
        by default the one the model's tokens are checked against)."""
        config = config or self._token_config
        if isinstance(input_ids, jax.core.Tracer):
            return
        ids = np.asarray(input_ids)
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, sequence], got shape {ids.shape}.")
        vocab = config.vocab_size
        if ids.size and (ids.max() >= vocab or ids.min() < 0):
            raise ValueError(
                f"input_ids holds token ids outside [0, vocab_size={vocab}) (min {ids.min()}, max {ids.max()}). "
                "Check that the tokenizer belongs to this model."
            )
        max_positions = config.position_limit
        if max_positions is not None and position_ids is not None and not isinstance(position_ids, jax.core.Tracer):
            top = int(np.asarray(position_ids).max(initial=0))
            if top >= max_positions:
                raise ValueError(
                    f"Position {top} is past the model's max_position_embeddings={max_positions}. "
                    f"Truncate the input to at most {max_positions} tokens."
                )

    @staticmethod
    def _attention_mask(input_shape: tuple[int, ...], attention_mask: Any, past_key_values: Any) -> jax.Array:
        """The padding mask over every key: the input's tokens, or every cache slot with a cache.

        With a cache, slots past the ones written so far are hidden by causality, so all ones is the
        right default; generation passes 1 for real tokens (past, current and future), 0 for padding.
        """
        cache_len = cache_length(past_key_values, input_shape)
        expected = (*input_shape[:-1], cache_len or input_shape[-1])
        if attention_mask is None:
            return jnp.ones(expected, dtype="i4")
        if tuple(jnp.shape(attention_mask)) != expected:
            covers = "the cache length max_length" if cache_len else "the input length"
            raise ValueError(
                f"attention_mask has shape {tuple(jnp.shape(attention_mask))}, expected {expected} (the input's "
                f"leading axes and {covers}). "
                + ("With past_key_values the mask covers the whole cache: 1 for real tokens (past, current and "
                   "future), 0 for padding." if cache_len else "")
            )
        return jnp.asarray(attention_mask, dtype="i4")

    def _token_inputs(
        self, input_ids: Any, attention_mask: Any = None, position_ids: Any = None, past_key_values: Any = None,
        *, with_positions: bool = True,
    ) -> dict[str, jax.Array]:
        """`input_ids`, `attention_mask` and `position_ids` with transformers' defaults, checked and cast."""
        batch_size, seq_len = jnp.shape(input_ids)
        if with_positions and position_ids is None:
            if past_key_values is not None:
                raise ValueError("Make sure to provide `position_ids` when passing `past_key_values`.")
            position_ids = jnp.broadcast_to(jnp.arange(seq_len)[None, :], (batch_size, seq_len))
        self._check_input_ids(input_ids, position_ids)
        inputs = {"input_ids": jnp.asarray(input_ids, dtype="i4"),
                  "attention_mask": self._attention_mask(jnp.shape(input_ids), attention_mask, past_key_values)}
        if with_positions:
            inputs["position_ids"] = jnp.asarray(position_ids, dtype="i4")
        return inputs

    def _apply(
        self,
        inputs: dict[str, Any],
        *,
        params: dict | None,
        past_key_values: dict | None,
        dropout_rng: jax.Array | None,
        train: bool,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
        return_dict: bool | None,
        rngs: dict[str, jax.Array] | None = None,
        method: str | None = None,
    ):
        """Apply the module (`method`: one of its methods, e.g. an encoder-decoder's `encode`); `rngs` adds
        named PRNG streams beside `dropout`; with `past_key_values` the updated cache joins the outputs."""
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = cfg.return_dict if return_dict is None else return_dict
        params = params if params is not None else self.params
        variables: dict[str, Any] = dict(params) if self._state_collections else {"params": params}
        mutable: Any = False
        if past_key_values:
            variables["cache"] = past_key_values
            mutable = ["cache"]
        if train and self._state_collections:  # batch statistics update in training
            mutable = list(self._state_collections)
        rngs = {**({"dropout": dropout_rng} if dropout_rng is not None else {}), **(rngs or {})}
        flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        outputs = self.module.apply(
            variables,
            **inputs,
            deterministic=not train,
            **{k: v for k, v in flags.items() if _takes(self.module, k)},
            return_dict=return_dict,
            rngs=rngs,
            mutable=mutable,
            **({"method": method} if method is not None else {}),
        )
        if train and self._state_collections:
            outputs, updated = outputs
            return outputs, unfreeze(updated)
        if past_key_values is not None and mutable:
            outputs, updated = outputs
            cache = unfreeze(updated["cache"])
            if return_dict:
                outputs["past_key_values"] = cache
            else:
                outputs = outputs[:1] + (cache,) + outputs[1:]
        return outputs

    # --- generation hooks ------------------------------------------------------------------------
    @classmethod
    def can_generate(cls) -> bool:
        return getattr(cls, "is_causal_lm", False) or getattr(cls, "is_seq2seq_lm", False)

    def _default_generation_config(self):
        if not self.can_generate():
            return None
        from flaxformers.generation.config import GenerationConfig

        return GenerationConfig.from_model_config(self.config)

    # --- checkpoints -----------------------------------------------------------------------------
    def constant_tensors(self) -> dict[str, np.ndarray]:
        """Fixed tensors that PyTorch checkpoints hold as weights and this model computes (a sinusoidal
        position table): written on save so transformers finds every weight it expects."""
        return {}

    @classmethod
    def _conversion_rules(cls, config: PretrainedConfig) -> ConversionRules:
        tied = cls._tied_weights_keys if getattr(config, "tie_word_embeddings", False) else {}
        return ConversionRules(
            base_model_prefix=cls.base_model_prefix,
            renames=cls._checkpoint_renames,
            ignore_unexpected=cls._keys_to_ignore_on_load_unexpected,
            tied=dict(tied),
            collections=("params", *cls._state_collections) if cls._state_collections else (),
        )

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        dtype: jnp.dtype = jnp.float32,
        *model_args: Any,
        config: PretrainedConfig | str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        ignore_mismatched_sizes: bool = False,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        revision: str = "main",
        _do_init: bool = True,
        allow_pickle: bool = False,
        gguf_file: str | None = None,
        subfolder: str = "",
        mesh: Any = None,
        **kwargs: Any,
    ):
        """Load a model from a local directory, the HF cache or the Hub.

        Extra keyword arguments that name config keys override the config; the rest go to the model.
        With `_do_init=False` it returns `(model, params)`, as transformers does. `mesh=` (a
        `jax.sharding.Mesh`) places each tensor sharded by the family's rules as it is read
        (`flaxformers.training.sharding`); `scan_layers=True` stacks the layers for `nn.scan`.
        """
        path = os.fspath(pretrained_model_name_or_path)
        token = kwargs.pop("use_auth_token", token)  # transformers 4.x's older name
        for name in _IGNORED_457_KWARGS:
            kwargs.pop(name, None)
        hub_kwargs = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token,
                          force_download=force_download, subfolder=subfolder)
        state_dict = None
        if gguf_file is not None:
            from flaxformers.auto import gguf_path
            from flaxformers.checkpoints.gguf_mapping import load_gguf_checkpoint

            gguf_config, state_dict = load_gguf_checkpoint(gguf_path(path, gguf_file),
                                                           model_type=cls.config_class.model_type)
            if config is None:
                config = cls.config_class.from_dict(gguf_config)
        config_keys = {k for k in kwargs if k not in ("input_shape", "seed") and not k.startswith("_")}
        if not isinstance(config, PretrainedConfig):
            config_path = config if config is not None else path
            probe = cls.config_class.from_pretrained(config_path, **hub_kwargs)
            config_keys = {k for k in config_keys if hasattr(probe, k) or k in type(probe).attribute_map}
            config = cls.config_class.from_pretrained(
                config_path, **hub_kwargs, **{k: kwargs.pop(k) for k in config_keys}
            )
        else:
            for k in [k for k in config_keys if hasattr(config, k)]:
                setattr(config, k, kwargs.pop(k))
        model = cls(config, *model_args, dtype=dtype, _do_init=False, **kwargs)
        model._load_generation_config(path, hub_kwargs)

        from flaxformers.checkpoints.load import load_params
        from flaxformers.nn.stack import is_scanned, stack_layer_params, unstack_layer_params

        shape_tree = unfreeze(model.params_shape_tree)
        scanned = is_scanned(shape_tree)  # checkpoints hold per-layer params; stack them after loading
        shapes = flatten(unstack_layer_params(shape_tree) if scanned else shape_tree)
        # Each tensor goes to its device(s) as it is converted: no second host copy of the weights.
        place = lambda _, array: jnp.asarray(array)  # noqa: E731
        if mesh is not None:
            from flaxformers.training.sharding import param_placer

            place = param_placer(model, mesh)
        flat, report = load_params(
            path, shapes, cls._conversion_rules(config), hub_kwargs={k: v for k, v in hub_kwargs.items()
                                                                    if k in HUB_KWARGS},
            ignore_mismatched_sizes=ignore_mismatched_sizes, allow_pickle=allow_pickle, state_dict=state_dict,
            place=place,
        )
        report.log(logger, cls.__name__, path)
        missing = {p for p in shapes if p not in flat}  # absent, or mismatched and ignored
        params = unflatten(flat)
        if scanned:  # a stacked param with any layer missing counts as missing
            params = stack_layer_params(params, shape_tree)
            missing = set(flatten(shape_tree)) - set(flatten(params))
        model._missing_keys = missing
        model.loading_report = report
        if _do_init and missing:
            params = model.init_weights(model.key, model.input_shape, params)
        if mesh is not None:
            from flaxformers.training.sharding import shard_params

            params = shard_params(params, model, mesh)  # stacked and newly initialised params too
        if _do_init:
            model._is_initialized = True
            model.params = params
            return model
        return model, params

    @classmethod
    def load_flax_weights(cls, resolved_archive_file: str | os.PathLike) -> dict:
        """4.57's: the nested param tree of one `flax_model.msgpack` file."""
        return io.read_msgpack(resolved_archive_file)

    @classmethod
    def load_flax_sharded_weights(cls, shard_files: list[str | os.PathLike]) -> dict:
        """4.57's: the nested param tree of the shards a `flax_model.msgpack.index.json` names."""
        from flaxformers.checkpoints.load import read_msgpack_shards

        return read_msgpack_shards(shard_files)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        params: dict | None = None,
        push_to_hub: bool = False,
        max_shard_size: int | str = "10GB",
        token: str | bool | None = None,
        safe_serialization: bool = True,
        **kwargs: Any,
    ) -> None:
        """Write config.json and weights: PyTorch-layout safetensors (default), or Flax msgpack
        with `safe_serialization=False`, sharded past `max_shard_size`. The weights replace those of an
        earlier save atomically as a whole (`io.save_weights`). With `push_to_hub=True` the directory is then
        uploaded to `repo_id=` (default: the directory's name)."""
        upload = pop_upload_options(save_directory, token, kwargs) if push_to_hub else None
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory={save_directory!r} is a file; pass a directory.")
        os.makedirs(save_directory, exist_ok=True)
        params = self.params if params is None else params
        from flaxformers.nn.stack import unstack_layer_params

        params = unstack_layer_params(unfreeze(params))  # scan-over-layers params are saved per layer
        self.config.architectures = [type(self).__name__.removeprefix("Flax")]
        self.config.save_pretrained(save_directory)
        if self.generation_config is not None:
            self.generation_config.save_pretrained(save_directory)
        flat = {p: np.asarray(jax.device_get(v)) for p, v in flatten(unfreeze(params)).items()}
        if safe_serialization:
            io.save_weights({**flax_to_state_dict(flat, self._conversion_rules(self.config)), **self.constant_tensors()},
                            save_directory,
                            "safetensors", max_shard_size)
        else:  # msgpack shards hold flat '/'-joined names, as transformers 4.x wrote them
            io.save_weights({"/".join(p): v for p, v in flat.items()}, save_directory, "msgpack", max_shard_size)
        if upload is not None:
            upload_folder(save_directory, **upload)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(config={type(self.config).__name__}, dtype={jnp.dtype(self.dtype).name})"


class FlaxCrossAttendingDecoderModel(FlaxPreTrainedModel):
    """4.57's call of a decoder-only model that may attend to given encoder states (XGLM; a BART-like
    decoder alone): the encoder mask defaults to all ones when states come without one."""

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        train: bool = False,
        params: dict | None = None,
        past_key_values: dict | None = None,
        dropout_rng: jax.Array | None = None,
    ):
        if encoder_hidden_states is not None and encoder_attention_mask is None:
            encoder_attention_mask = jnp.ones(jnp.shape(encoder_hidden_states)[:2], dtype="i4")
        inputs = self._token_inputs(input_ids, attention_mask, position_ids, past_key_values)
        inputs["encoder_hidden_states"] = encoder_hidden_states
        inputs["encoder_attention_mask"] = encoder_attention_mask
        return self._apply(
            inputs, params=params, past_key_values=past_key_values, dropout_rng=dropout_rng, train=train,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=return_dict,
        )


__all__ = ["FlaxPreTrainedModel", "FlaxCrossAttendingDecoderModel", "CONFIG_NAME", "freeze"]
