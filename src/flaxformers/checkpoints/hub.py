"""Find checkpoint files: a local directory, the Hugging Face cache, or a Hub download.

Nothing touches the network unless a repo id is not cached and `local_files_only` is off. A string
that is clearly a local path never goes to the Hub. Each way of failing (a path that does not
exist, downloads off with nothing cached, an unknown repo, a missing revision or file) has its own
message, which says what to do instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any


class ModelNotFoundError(OSError):
    """Neither a local path nor a cached or downloadable Hub repo."""


def upload_folder(folder: str | os.PathLike, repo_id: str, *, commit_message: str | None = None,
                  private: bool | None = None, token: str | bool | None = None, create_pr: bool = False,
                  revision: str | None = None, commit_description: str | None = None) -> Any:
    """`folder`'s files as one commit to the Hub repo `repo_id` (created if missing), by huggingface_hub, as
    transformers' `push_to_hub` does. Offline (`HF_HUB_OFFLINE=1`) it raises huggingface_hub's error."""
    import huggingface_hub

    api = huggingface_hub.HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    return api.upload_folder(repo_id=repo_id, folder_path=os.fspath(folder), revision=revision, create_pr=create_pr,
                             commit_message=commit_message or "Upload with flaxformers",
                             commit_description=commit_description)


HUB_UPLOAD_KWARGS = ("commit_message", "private", "create_pr", "revision", "commit_description")


def pop_upload_options(save_directory: str | os.PathLike, token: str | bool | None, kwargs: dict[str, Any]) -> dict:
    """What `save_pretrained(..., push_to_hub=True, repo_id=..., commit_message=...)` uploads with, taken out
    of its keywords: the repo defaults to the directory's name, as in transformers."""
    repo_id = kwargs.pop("repo_id", None) or os.path.basename(os.path.normpath(os.fspath(save_directory)))
    return {"repo_id": repo_id, "token": token, **{k: kwargs.pop(k) for k in HUB_UPLOAD_KWARGS if k in kwargs}}


class PushToHubMixin:
    """`push_to_hub(repo_id, ...)` for anything with `save_pretrained(directory, **kwargs)` (models, configs,
    tokenizers, processors): saved into a temporary directory, uploaded as one commit."""

    def push_to_hub(self, repo_id: str, use_temp_dir: bool | None = None, commit_message: str | None = None,
                    private: bool | None = None, token: str | bool | None = None, create_pr: bool = False,
                    revision: str | None = None, commit_description: str | None = None, **save_kwargs: Any) -> Any:
        """Upload what `save_pretrained` writes to the Hub repo `repo_id` (`user/name`); keywords such as
        `max_shard_size` and `safe_serialization` go to `save_pretrained`. Returns the commit info."""
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, **save_kwargs)
            return upload_folder(folder, repo_id, commit_message=commit_message, private=private, token=token,
                                 create_pr=create_pr, revision=revision, commit_description=commit_description)


def hub_cli() -> str:
    """The command line the installed huggingface_hub ships: `hf` (since 0.34), else `huggingface-cli`."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        scripts = {ep.name for ep in distribution("huggingface_hub").entry_points if ep.group == "console_scripts"}
    except PackageNotFoundError:
        scripts = set()
    return "hf" if "hf" in scripts else "huggingface-cli"


def _not_found(path_or_repo_id: str, filename: str, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Could not find {filename!r} for {path_or_repo_id!r}: {why}. Pass the path of a local directory that "
        f"holds config.json and the weights, or download the repo once with network access "
        f"(`{hub_cli()} download {path_or_repo_id}`) so that it is in the Hugging Face cache (HF_HOME)."
    )


def _local_path_problem(path: str) -> str | None:
    """Why `path`, which is not a directory, cannot be a model; None if it may be a Hub repo id.

    Absolute paths, `./`, `../` and `~` paths are local, and so is a path that exists or whose first
    component is a local directory: asking the Hub for them would only wait for its timeouts.
    """
    if os.path.isfile(path):
        if path.endswith(".gguf"):
            directory, name = os.path.split(os.path.abspath(path))
            return (f"{path!r} is a GGUF file. Pass its directory and the file as gguf_file=: "
                    f"from_pretrained({directory!r}, gguf_file={name!r})")
        return f"{path!r} is a file, not a model directory. Pass the directory that holds config.json and the weights."
    first = path.replace("\\", "/").split("/")[0]
    local = path.startswith(("/", "./", "../", "~", ".\\", "..\\")) or path in (".", "..") or os.path.isabs(path)
    if local or os.path.lexists(path):
        return f"{path!r} does not exist. Pass a model directory (it holds config.json and the weights) or a repo id."
    if first != path and os.path.isdir(first):
        return (f"{path!r} does not exist: {first!r} is a local directory, with no {path[len(first) + 1:]!r} in it. "
                f"(For the Hub repo {path!r}, run from a directory that has no {first!r} in it.)")
    return None


def resolve_file(
    path_or_repo_id: str | os.PathLike,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    subfolder: str = "",
    required: bool = True,
) -> str | None:
    """Path of `filename` inside a local directory or a Hub repo; None if absent and not `required`."""
    path_or_repo_id = os.path.expanduser(os.fspath(path_or_repo_id))
    if os.path.isdir(path_or_repo_id):
        candidate = os.path.join(path_or_repo_id, subfolder, filename)
        if os.path.isfile(candidate):
            return candidate
        if required:
            raise ModelNotFoundError(f"{path_or_repo_id!r} is a directory but has no {filename!r} in it.")
        return None
    problem = _local_path_problem(path_or_repo_id)
    if problem is not None:
        raise ModelNotFoundError(problem)
    return _resolve_hub_file(path_or_repo_id, filename, revision=revision, cache_dir=cache_dir,
                             local_files_only=local_files_only, token=token, force_download=force_download,
                             subfolder=subfolder, required=required)


def _resolve_hub_file(repo_id: str, filename: str, *, revision, cache_dir, local_files_only, token, force_download,
                      subfolder, required) -> str | None:
    import huggingface_hub
    from huggingface_hub import errors

    full_name = f"{subfolder}/{filename}" if subfolder else filename
    at_revision = f" at revision {revision!r}" if revision not in (None, "main") else ""
    offline = local_files_only or huggingface_hub.constants.HF_HUB_OFFLINE
    try:
        cached = huggingface_hub.try_to_load_from_cache(repo_id, full_name, cache_dir=cache_dir, revision=revision)
        if isinstance(cached, str) and not force_download:
            return cached
        if cached is huggingface_hub._CACHED_NO_EXIST and not force_download:
            if required:
                raise _not_found(repo_id, filename, f"the cache records that the repo has no such file{at_revision}")
            return None
        return huggingface_hub.hf_hub_download(
            repo_id, full_name, revision=revision, cache_dir=cache_dir, token=token, local_files_only=offline,
            force_download=force_download,
        )
    except errors.HFValidationError as e:
        raise ModelNotFoundError(
            f"{repo_id!r} is not a local directory, and not a valid Hub repo id either ({e}). Pass an existing "
            "directory, or a repo id like 'org/name'."
        ) from None
    except errors.LocalEntryNotFoundError as e:  # before EntryNotFoundError, which it subclasses
        if not offline:
            raise _not_found(repo_id, filename, "it is not a local directory or in the cache, and the Hub "
                             "cannot be reached") from e
        cached_repo = _repo_in_cache(repo_id, cache_dir)
        if cached_repo and not required:
            return None
        why = ("downloads are off (local_files_only / HF_HUB_OFFLINE) and the Hugging Face cache holds "
               + (f"this repo, but not {full_name!r}{at_revision}" if cached_repo else "nothing of this repo"))
        raise _not_found(repo_id, filename, why) from e
    except errors.GatedRepoError as e:  # before RepositoryNotFoundError, which it subclasses
        raise ModelNotFoundError(
            f"{repo_id!r} is a gated repo: accept its terms on huggingface.co, then pass token= (or log in)."
        ) from e
    except errors.RepositoryNotFoundError as e:
        raise ModelNotFoundError(
            f"{repo_id!r} is not a local directory, and the Hub has no repo of that name (or it is private: pass "
            "token=). Check the spelling of the repo id."
        ) from e
    except errors.RevisionNotFoundError as e:
        raise ModelNotFoundError(
            f"The Hub repo {repo_id!r} has no revision {revision!r}. Check the branch, tag or commit hash, or leave "
            "out revision= for 'main'."
        ) from e
    except errors.EntryNotFoundError:
        if required:
            raise _not_found(repo_id, filename, f"the repo has no such file{at_revision}") from None
        return None
    except OSError as e:  # connection errors
        raise _not_found(repo_id, filename, f"the Hub could not be asked ({type(e).__name__}: {e})") from e


def _repo_in_cache(repo_id: str, cache_dir: str | os.PathLike | None) -> bool:
    import huggingface_hub

    folder = "models--" + repo_id.replace("/", "--")
    return os.path.isdir(os.path.join(cache_dir or huggingface_hub.constants.HF_HUB_CACHE, folder))


def resolve_first(
    path_or_repo_id: str | os.PathLike, filenames: Sequence[str], **hub_kwargs
) -> tuple[str, str] | None:
    """The first of `filenames` that the directory or repo has: `(filename, local path)`."""
    for name in filenames:
        try:
            path = resolve_file(path_or_repo_id, name, required=False, **hub_kwargs)
        except ModelNotFoundError:
            if name == filenames[-1]:
                raise
            continue
        if path is not None:
            return name, path
    return None
