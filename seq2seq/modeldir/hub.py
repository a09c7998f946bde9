"""Model directories on the Hugging Face Hub: resolve `org/name` to a local snapshot, and upload one.

`resolve_model_dir` turns what a user gives as a model (a directory, or the id of a model
repository on the Hub) into a local directory: an existing path always wins; an id that is not a
local path is downloaded with `huggingface_hub.snapshot_download` into its cache (HF_HUB_CACHE or
HF_HOME, or `cache_dir`), at `revision` (a branch, tag or commit; default main), and with
HF_HUB_OFFLINE=1 it is taken from the cache without any network access. `seq2seq-upload DIR
org/name` publishes a model directory. This module imports no torch, so the command line can
resolve a model before it decides which runtime loads it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger("seq2seq")

# The resume state (optimizer, RNG states) sits beside the weights in a run's last/ directory:
# translation never needs it, so it is neither uploaded nor downloaded.
NOT_PUBLISHED = ["training_state.pt", "*.tmp", ".*"]
# What every model directory holds (seq2seq.modeldir.checkpoint writes them); an upload without them is refused.
REQUIRED = ("config.json", "meta.json")
# Hub repository ids: `name` or `org/name`, letters, digits, '-', '_', '.'. Only `org/name` is
# tried on the Hub here, so a bare word stays a local path.
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9_]")


class HubError(ValueError):
    """A model cannot be found on, downloaded from or uploaded to the Hub; the message says what to do."""


def is_repo_id(name: str) -> bool:
    """Whether `name` has the shape of a Hub model id, `org/name` (which a local path may also have)."""
    return bool(_REPO_ID.fullmatch(name)) and ".." not in name


def resolve_model_dir(model: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """A local model directory for `model`: itself when it exists (or is a Path, or is not an `org/name`
    id: loading then reports what is missing), else the Hub snapshot of that id, downloaded if needed."""
    path = Path(model)
    if path.exists() or isinstance(model, Path) or not is_repo_id(str(model)):
        if revision is not None:
            log.warning("--revision %s is for models on the Hub; %s is a local path, used as it is", revision, model)
        return path
    return download_model_dir(str(model), revision=revision, cache_dir=cache_dir)


def download_model_dir(repo_id: str, *, revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """The local snapshot of a Hub model repository, downloaded into the cache unless it is there already."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    from seq2seq import __version__

    cache = str(cache_dir or constants.HF_HUB_CACHE)
    at = f" at revision {revision!r}" if revision else ""
    log.info("%s is not a local directory: fetching the model %s%s from the Hugging Face Hub (cache %s)", repo_id, repo_id, at, cache)
    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, cache_dir=cache_dir, ignore_patterns=NOT_PUBLISHED, library_name="seq2seq", library_version=__version__
            )
        )
    except RevisionNotFoundError:
        raise HubError(f"the model {repo_id} on the Hugging Face Hub has no revision {revision!r}; give a branch, tag or commit it has") from None
    except RepositoryNotFoundError:
        raise HubError(
            f"{repo_id} is neither a local directory nor a model on the Hugging Face Hub that you can access: check the path "
            "or the id (a private or gated model needs a token: `hf auth login` or HF_TOKEN)"
        ) from None
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise HubError(
                f"{repo_id} is not a local directory, and the model {repo_id}{at} is not in the Hugging Face cache ({cache}) "
                "while HF_HUB_OFFLINE=1 forbids downloading it: unset HF_HUB_OFFLINE where the Hub can be reached, "
                "point HF_HUB_CACHE at a cache that holds it, or give the path of a model directory"
            ) from None
        raise HubError(
            f"{repo_id} is not a local directory, and the Hugging Face Hub ({constants.ENDPOINT}) could not be reached to download "
            f"the model {repo_id}{at}, which is not in the cache ({cache}): check the network (and HF_ENDPOINT), or download "
            "it where the Hub can be reached and copy the cache (HF_HUB_CACHE) or the model directory here; "
            "with the model in the cache, HF_HUB_OFFLINE=1 skips the network"
        ) from None
    except HFValidationError as err:
        raise HubError(f"{repo_id} is neither a local directory nor a valid Hub model id ({err})") from None
    except Exception as err:  # the Hub client also raises its HTTP library's own errors (a proxy's, a TLS failure), which differ by version
        raise HubError(
            f"could not download the model {repo_id}{at} from the Hugging Face Hub ({type(err).__name__}: {err}); "
            "check the network (and HF_ENDPOINT), or give the path of a model directory"
        ) from None


def upload_model_dir(
    model_dir: str | Path, repo_id: str, *, revision: str | None = None, private: bool = False, message: str | None = None, token: str | None = None
) -> str:
    """Publish a model directory as the Hub model repository `repo_id` (created if need be), on
    branch `revision` (default main); the resume state is left out. Returns the commit's URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import LocalTokenNotFoundError

    model_dir = Path(model_dir)
    missing = [name for name in REQUIRED if not (model_dir / name).is_file()]
    if missing:
        raise HubError(f"{model_dir} is not a model directory (it lacks {', '.join(missing)}); give one that seq2seq-train wrote, e.g. runs/NAME/best")
    if not is_repo_id(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub model id; give ORG/NAME (letters, digits, '-', '_', '.')")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=model_dir,
            revision=revision,
            ignore_patterns=NOT_PUBLISHED,
            commit_message=message or f"Upload {model_dir.name} with seq2seq-upload",
        )
    except LocalTokenNotFoundError:
        raise HubError("uploading needs a Hugging Face token with write access: run `hf auth login`, or set HF_TOKEN") from None
    except Exception as err:  # HfHubHTTPError, or the HTTP library's own errors (connection refused), which differ by version
        raise HubError(
            f"could not upload {model_dir} to the Hugging Face Hub ({api.endpoint}) as {repo_id} ({type(err).__name__}: {err}); "
            "check the network (and HF_ENDPOINT) and that your token may write to that repository"
        ) from None
    return info.commit_url
