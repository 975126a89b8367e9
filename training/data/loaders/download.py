"""Fetch an official MovieLens zip from GroupLens (for people with internet; tests never call it)."""

from __future__ import annotations

import logging
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from explainrec.errors import ConfigError, DataError

log = logging.getLogger("explainrec.data")

BASE_URL = "https://files.grouplens.org/datasets/movielens"
OFFICIAL_NAMES = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest", "ml-latest-small")


def check_name(name: str) -> str:
    """The official release name, or ConfigError listing the valid ones."""
    normalised = name.strip().lower()
    if normalised not in OFFICIAL_NAMES:
        raise ConfigError(
            f"--download {name!r}: not an official MovieLens release; "
            f"expected one of {', '.join(OFFICIAL_NAMES)}"
        )
    return normalised


def release_url(name: str) -> str:
    return f"{BASE_URL}/{check_name(name)}.zip"


def _fetch(url: str, target: Path) -> None:
    from tqdm import tqdm

    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                part.open("wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar,
            ):
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise DataError(
            f"could not download {url}: {exc}; download and unzip it yourself, "
            "then run prepare with --path pointing at the folder"
        ) from None
    part.replace(target)


def _extract(archive: Path, dest: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DataError(f"{archive}: corrupt member {bad}; delete the file and download again")
            roots = {Path(n).parts[0] for n in zf.namelist() if Path(n).parts}
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a valid zip ({exc}); delete it and download again") from None
    if len(roots) != 1:
        raise DataError(f"{archive}: expected one top-level folder, found {sorted(roots)}")
    return dest / roots.pop()


def download_movielens(name: str, dest: Path) -> Path:
    """Download (unless present) and unzip release `name` under `dest`; returns the release folder."""
    url = release_url(name)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"{check_name(name)}.zip"
    if archive.is_file():
        log.info("using %s downloaded earlier", archive)
    else:
        log.info("downloading %s", url)
        _fetch(url, archive)
    folder = _extract(archive, dest)
    if not folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        raise DataError(f"{archive}: unzipped, but {folder} is not a folder")
    return folder
