"""verify-app's `notices-missing`: an app that ships llama-server must reproduce its notices.

llama.cpp and the code it vendors are MIT-style licensed: their notices must ship with the app.
macOS shows Contents/Resources/Credits.html (or Credits.rtf / Credits.rtfd) in the standard
About window, so that, or any notices/licenses file in Resources, must mention llama.cpp.
Files are opened only when regular (mapped, never a FIFO) and read up to MAX_NOTICE bytes.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from llamabuild.errors import InputError
from llamabuild.findings import Finding, warning
from llamabuild.inspect.mapped import open_mapped

MAX_NOTICE = 16 * 1024 * 1024  # a notices file this big is not one
MAX_ENTRIES = 10_000  # files looked at in Resources and its *.lproj folders
NOTICE_NAME = re.compile(r"credits|notice|licen[cs]e|acknowledg|third.?party", re.I)
MENTION = re.compile(rb"llama[.\-_ ]?cpp", re.I)


def candidates(resources: Path) -> list[Path]:
    """Files in Resources (and Resources/*.lproj, Credits.rtfd) whose name says notices."""
    found: list[Path] = []
    folders = [resources]
    seen = 0
    while folders and seen < MAX_ENTRIES:
        folder = folders.pop(0)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries[:MAX_ENTRIES]:
            seen += 1
            name = entry.name
            if entry.is_dir(follow_symlinks=False):
                nested = folder == resources and name.endswith((".lproj", ".rtfd"))
                if nested or (name.endswith(".rtfd") and NOTICE_NAME.search(name)):
                    folders.append(Path(entry.path))
            elif NOTICE_NAME.search(name) or folder.name.endswith(".rtfd"):
                found.append(Path(entry.path))
    return found


def mentions_llama(path: Path) -> bool:
    try:
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):
            return False
        with open_mapped(path) as mm:
            return MENTION.search(mm[: min(len(mm), MAX_NOTICE)]) is not None
    except (InputError, OSError):
        return False


def check_notices(app: Path, helper: Path) -> list[Finding]:
    """`notices-missing` when the app ships the helper and no notices file names llama.cpp."""
    try:
        if not stat.S_ISREG(helper.lstat().st_mode):
            return []
    except OSError:
        return []  # no helper: helper-missing says so
    resources = app / "Contents" / "Resources"
    if any(mentions_llama(p) for p in candidates(resources)):
        return []
    return [
        warning(
            "notices-missing",
            "the app ships llama-server but no Credits.html, Credits.rtf or notices file in "
            "Contents/Resources mentions llama.cpp (its MIT license asks for the notice)",
            path=str(resources),
            hint="add dist/<recipe>/Credits.html from `llamabuild build` to the app's "
            "Resources (Copy Bundle Resources), or merge THIRD_PARTY_NOTICES.txt into yours",
        )
    ]
