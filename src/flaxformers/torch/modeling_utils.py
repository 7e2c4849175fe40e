"""TorchPreTrainedModel: from_pretrained / save_pretrained for the PyTorch twin.

Reading and writing go through flaxformers' shared checkpoint code (`flaxformers.checkpoints`), so
a directory written by either twin (safetensors, sharded safetensors, `pytorch_model.bin`, or a Flax
`flax_model.msgpack`) loads in both, and what we save loads in transformers' own classes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from flaxformers.checkpoints import io
from flaxformers.checkpoints.convert import (
    ConversionRules,
    LoadReport,
    flatten,
    flax_to_state_dict,
    normalize_names,
    unexpected_names,
)
from flaxformers.checkpoints.hub import PushToHubMixin, pop_upload_options, upload_folder
from flaxformers.configuration_utils import HUB_KWARGS, PretrainedConfig

logger = logging.getLogger(__name__)


def to_torch(array: Any) -> torch.Tensor:
    """numpy (bf16 as ml_dtypes) -> a CPU tensor that owns its memory."""
    array = np.asarray(array)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(array).view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.array(array, copy=True))


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _torch_dtype(array: Any) -> torch.dtype:
    dtype = np.asarray(array).dtype
    return torch.bfloat16 if dtype.name == "bfloat16" else torch.from_numpy(np.zeros(0, dtype)).dtype


def _resolve_dtype(dtype: Any) -> torch.dtype | str | None:
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.")
    if isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    raise ValueError(f"dtype={dtype!r} is not a torch dtype; pass e.g. torch.float32, 'bfloat16' or 'auto'.")


def dispatch(model: nn.Module, device_map: str | dict[str, Any] | int | torch.device) -> None:
    """Place `model` by a device map through accelerate (hooks move activations between devices);
    a string map is worked out from the devices' free memory, keeping `_no_split_modules` whole."""
    try:
        from accelerate import dispatch_model, infer_auto_device_map
        from accelerate.utils import get_balanced_memory
    except ImportError as e:
        raise ImportError("device_map= needs accelerate: pip install accelerate") from e
    no_split = list(getattr(model, "_no_split_modules", []))
    if isinstance(device_map, str) and device_map in DEVICE_MAP_STRATEGIES:
        memory = None if device_map == "sequential" else get_balanced_memory(
            model, no_split_module_classes=no_split, low_zero=device_map == "balanced_low_0")
        device_map = infer_auto_device_map(model, max_memory=memory, no_split_module_classes=no_split)
    elif not isinstance(device_map, dict):
        device_map = {"": device_map}  # one device for everything
    model.tie_weights()
    dispatch_model(model, device_map=device_map)
    model.hf_device_map = device_map


DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


class TorchPreTrainedModel(nn.Module, PushToHubMixin):
    config_class: type[PretrainedConfig] = PretrainedConfig
    base_model_prefix = ""
    _tied_weights_keys: dict[str, str] = {}  # our name -> the name it shares a tensor with
    _keys_to_ignore_on_load_unexpected: tuple[str, ...] = ()

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}; "
                f"build one with {self.config_class.__name__}(...) or {self.config_class.__name__}.from_pretrained(path)."
            )
        self.config = config

    # --- init and tying -----------------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
        raise NotImplementedError

    def post_init(self) -> None:
        """Initialise every weight at random, then tie."""
        self.apply(self._init_weights)
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        return dict(self._tied_weights_keys) if getattr(self.config, "tie_word_embeddings", False) else {}

    def tie_weights(self) -> None:
        for name, target in self.tied_weights().items():
            owner_name, _, attr = name.rpartition(".")
            setattr(self.get_submodule(owner_name), attr, self.get_parameter(target))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    # --- loading a state dict by name ---------------------------------------------------------------
    def load_checkpoint_state(
        self, state: dict[str, Any], *, ignore_mismatched_sizes: bool = False
    ) -> LoadReport:
        """Copy checkpoint tensors into the model by name: the base-model prefix is added or stripped,
        legacy names renamed, tied copies and old buffers ignored. Shapes must fit (or be skipped with
        `ignore_mismatched_sizes=True`); the rest is reported, not raised."""
        own = self.state_dict()
        tied = self.tied_weights()
        rules = ConversionRules(self.base_model_prefix, ignore_unexpected=self._keys_to_ignore_on_load_unexpected, tied=tied)
        renamed = normalize_names(state, [tuple(k.split(".")) for k in own], rules)  # the Flax side's rules
        report = LoadReport()
        with torch.no_grad():
            for name, param in own.items():
                if name in tied:
                    continue  # shares its tensor with `tied[name]`, which is loaded
                if name not in renamed:
                    report.missing.append(name)
                    continue
                value = renamed[name]
                value = value if isinstance(value, torch.Tensor) else to_torch(value)
                if tuple(value.shape) != tuple(param.shape):
                    report.mismatched.append((name, tuple(value.shape), tuple(param.shape)))
                    continue
                param.copy_(value.to(param.dtype))
        report.unexpected = unexpected_names(renamed, set(own), rules)
        report.check_shapes(ignore_mismatched_sizes, type(self).__name__)
        self.tie_weights()
        return report

    # --- from_pretrained / save_pretrained ----------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *model_args: Any,
        config: PretrainedConfig | str | os.PathLike | None = None,
        dtype: Any = None,
        torch_dtype: Any = None,
        ignore_mismatched_sizes: bool = False,
        allow_pickle: bool = False,
        cache_dir: str | os.PathLike | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        revision: str = "main",
        subfolder: str = "",
        output_loading_info: bool = False,
        device_map: str | dict[str, Any] | int | torch.device | None = None,
        **kwargs: Any,
    ):
        """Load config.json and the weights from a local directory, the HF cache or the Hub.

        Keyword arguments that name config keys override the config; the others go to the
        constructor (e.g. `attn_implementation`). `dtype="auto"` keeps the checkpoint's dtype;
        the default is float32. The model comes back in eval mode, as in transformers; with
        `output_loading_info=True`, as `(model, {missing_keys, unexpected_keys, mismatched_keys})`.
        `device_map` ("auto", "balanced", "balanced_low_0", "sequential", a device, or a dict of module
        name -> device) spreads the model over devices with accelerate's big-model utilities.
        """
        from flaxformers.checkpoints import load
        from flaxformers.checkpoints.hub import resolve_file

        path = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token,
                          force_download=force_download, subfolder=subfolder)
        model_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in cls._constructor_kwargs}
        if not isinstance(config, PretrainedConfig):
            config = cls.config_class.from_pretrained(config if config is not None else path, **hub_kwargs)
        for key in list(kwargs):
            if hasattr(config, key) or key in type(config).attribute_map:
                setattr(config, key, kwargs.pop(key))
        if kwargs:
            raise TypeError(
                f"{cls.__name__}.from_pretrained got unknown arguments {sorted(kwargs)}: they are neither config "
                f"keys nor constructor arguments ({sorted(cls._constructor_kwargs)})."
            )
        model = cls(config, *model_args, **model_kwargs)

        name, paths = load.resolve_weights(path, {k: v for k, v in hub_kwargs.items() if k in HUB_KWARGS})
        kind, content = load.read_checkpoint(name, paths, allow_pickle=allow_pickle)
        state = flax_to_state_dict(flatten(content), None) if kind == "flax" else content
        checkpoint_dtype = next((_torch_dtype(v) for v in state.values() if _torch_dtype(v).is_floating_point), None)
        report = model.load_checkpoint_state(state, ignore_mismatched_sizes=ignore_mismatched_sizes)
        report.log(logger, cls.__name__, path)
        model.loading_report = report

        dtype = _resolve_dtype(dtype if dtype is not None else torch_dtype)
        if dtype == "auto":
            dtype = checkpoint_dtype
        if dtype is not None:
            model.to(dtype)
        if device_map is not None:
            dispatch(model, device_map)
        if getattr(model, "generation_config", None) is not None:
            from flaxformers.generation.config import GENERATION_CONFIG_NAME, GenerationConfig

            gen_path = resolve_file(path, GENERATION_CONFIG_NAME, required=False, **hub_kwargs)
            if gen_path is not None:
                model.generation_config = GenerationConfig.from_pretrained(os.path.dirname(gen_path))
        model.eval()
        if output_loading_info:
            return model, {"missing_keys": report.missing, "unexpected_keys": report.unexpected,
                           "mismatched_keys": report.mismatched}
        return model

    _constructor_kwargs: frozenset[str] = frozenset()

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        state_dict: dict[str, torch.Tensor] | None = None,
        safe_serialization: bool = True,
        max_shard_size: int | str = "10GB",
        push_to_hub: bool = False,
        **kwargs: Any,
    ) -> None:
        """Write config.json (and generation_config.json) and the weights in transformers' layout:
        safetensors by default, `pytorch_model.bin` with `safe_serialization=False`; sharded past
        `max_shard_size`. The weights replace those of an earlier save (of any format) atomically as a
        whole (`io.save_weights`). Tied copies are left out, as transformers does."""
        upload = pop_upload_options(save_directory, kwargs.pop("token", None), kwargs) if push_to_hub else None
        if kwargs:
            raise TypeError(f"save_pretrained got unknown arguments {sorted(kwargs)}.")
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory={save_directory!r} is a file; pass a directory.")
        os.makedirs(save_directory, exist_ok=True)
        self.config.architectures = [type(self).__name__]
        self.config.save_pretrained(save_directory)
        if getattr(self, "generation_config", None) is not None:
            self.generation_config.save_pretrained(save_directory)
        state = self.state_dict() if state_dict is None else state_dict
        tied = self.tied_weights()
        tensors = {name: to_numpy(t) for name, t in state.items() if name not in tied}
        io.save_weights(tensors, save_directory, "safetensors" if safe_serialization else "bin", max_shard_size)
        if upload is not None:
            upload_folder(save_directory, **upload)
