"""Find checkpoint files: a local directory, the Hugging Face cache, or a Hub download.

Nothing touches the network unless a repo id is not cached and `local_files_only` is off; when
neither works, the error says so and says how to pass a local path instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


class ModelNotFoundError(OSError):
    """Neither a local path nor a cached or downloadable Hub repo."""


def _not_found(path_or_repo_id: str, filename: str, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Could not find {filename!r} for {path_or_repo_id!r}: {why}. Pass the path of a local directory that "
        "holds config.json and the weights, or download the repo once with network access "
        "(`huggingface-cli download REPO_ID`) so that it is in the Hugging Face cache (HF_HOME)."
    )


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
    path_or_repo_id = os.fspath(path_or_repo_id)
    if os.path.isdir(path_or_repo_id):
        candidate = os.path.join(path_or_repo_id, subfolder, filename)
        if os.path.isfile(candidate):
            return candidate
        if required:
            raise ModelNotFoundError(f"{path_or_repo_id!r} is a directory but has no {filename!r} in it.")
        return None
    if os.path.isfile(path_or_repo_id) or path_or_repo_id.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"{path_or_repo_id!r} is not a directory. Pass the directory that holds {filename!r} and config.json."
        )

    import huggingface_hub
    from huggingface_hub import errors

    full_name = f"{subfolder}/{filename}" if subfolder else filename
    cached = huggingface_hub.try_to_load_from_cache(
        path_or_repo_id, full_name, cache_dir=cache_dir, revision=revision
    )
    if isinstance(cached, str) and not force_download:
        return cached
    if cached is huggingface_hub._CACHED_NO_EXIST and not force_download:
        if required:
            raise _not_found(path_or_repo_id, filename, "the cache records that the repo has no such file")
        return None
    offline = local_files_only or huggingface_hub.constants.HF_HUB_OFFLINE
    try:
        return huggingface_hub.hf_hub_download(
            path_or_repo_id, full_name, revision=revision, cache_dir=cache_dir, token=token,
            local_files_only=offline, force_download=force_download,
        )
    except errors.EntryNotFoundError:
        if required:
            raise _not_found(path_or_repo_id, filename, "the repo has no such file") from None
        return None
    except errors.RepositoryNotFoundError as e:
        raise _not_found(path_or_repo_id, filename, "it is not a local directory, and the Hub has no such repo "
                         "(or it is private: pass token=)") from e
    except errors.LocalEntryNotFoundError as e:
        if offline:
            if required:
                raise _not_found(path_or_repo_id, filename, "it is not a local directory and not in the Hugging "
                                 "Face cache, and downloads are off (local_files_only / HF_HUB_OFFLINE)") from e
            return None
        raise _not_found(path_or_repo_id, filename, "it is not a local directory or in the cache, and the Hub "
                         "cannot be reached") from e
    except (OSError, ValueError) as e:  # connection errors, bad repo ids
        raise _not_found(path_or_repo_id, filename, f"the Hub could not be asked ({type(e).__name__}: {e})") from e


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
