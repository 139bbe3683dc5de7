#!/usr/bin/env python3
"""Make the site ``asv publish`` wrote render offline: load its JavaScript and CSS locally.

asv 0.6's ``index.html`` loads jQuery, Flot and its plugins, stupidtable,
blueimp-md5 and Bootstrap from CDNs. The same packages, pinned in
``package.json``/``package-lock.json`` beside this script, are installed from the
npm registry (``npm ci`` in this folder; ``make html`` does it), copied to
``<html>/vendor/<package>/`` and the page's tags are pointed at the copies::

    python3 tools/asv_offline/rewrite.py [HTML_DIR] [--node-modules DIR]

Where the CDN file is the very file npm installs (jQuery, Bootstrap, md5,
orderBars) its Subresource-Integrity hash from asv's page is checked against the
copy, so a changed package fails loudly. Flot 0.8.3 is the unminified build and
stupidtable is 1.1.3 (1.0.1 was never on npm, same API); those are not hash-checked.
The integrity/crossorigin attributes are dropped: they are for cross-origin
loads, and Chrome refuses crossorigin scripts from file:// pages.

It also adds a "sparsekit report" link to asv's navigation bar (the report lives
in ``<html>/report/``). Running it again on a rewritten page changes nothing. A
CDN address it does not know (a newer asv) is an error naming it. Standard
library only. Exit status: 0 done, 1 error (message on stderr).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: CDN address in asv's page -> (npm package, file inside it, whether it is the identical file)
ASSETS = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery", "dist/jquery.min.js", True),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": ("flot", "jquery.flot.js", False),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": ("flot", "jquery.flot.time.js", False),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": ("flot", "jquery.flot.selection.js", False),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": ("flot", "jquery.flot.categories.js", False),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": ("flot-orderbars", "js/jquery.flot.orderBars.js", True),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": ("stupid-table-plugin", "stupidtable.min.js", False),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5", "js/md5.min.js", True),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": ("bootstrap", "dist/js/bootstrap.min.js", True),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": ("bootstrap", "dist/css/bootstrap.min.css", True),
}
#: files copied besides the ones the page names (bootstrap's CSS loads ../fonts/*)
EXTRA_FILES = [("bootstrap", "dist/fonts"), ("jquery", "LICENSE.txt"), ("flot", "LICENSE.txt"),
               ("bootstrap", "LICENSE"), ("blueimp-md5", "LICENSE.txt"), ("stupid-table-plugin", "LICENSE")]
VENDOR = "vendor"
REPORT_LINK = '<li id="nav-li-sparsekit-report"><a href="report/index.html">sparsekit report</a></li>'
#: the nav item the report link goes after
NAV_ANCHOR = re.compile(r'(<li id="nav-li-regressions">.*?</li>)', re.S)
_TAG = re.compile(r"<(script|link)\b[^>]*>", re.I)
_URL = re.compile(r'\b(src|href)="(https?://[^"]+)"', re.I)
_DROP = re.compile(r'\s+(integrity|crossorigin|referrerpolicy)(="[^"]*")?', re.I)
_INTEGRITY = re.compile(r'\bintegrity="([^"]+)"', re.I)


class RewriteError(Exception):
    pass


def sri_ok(data: bytes, integrity: str) -> bool:
    """Whether data matches one of the ``sha256-…``/``sha384-…``/``sha512-…`` hashes of an integrity attribute."""
    for token in integrity.split():
        algo, _, digest = token.partition("-")
        if algo in ("sha256", "sha384", "sha512"):
            if base64.b64encode(hashlib.new(algo, data).digest()).decode() == digest:
                return True
    return False


def local_path(package: str, inner: str) -> str:
    return f"{VENDOR}/{package}/{inner}"


def rewrite_page(text: str, node_modules: Path) -> tuple[str, list[str]]:
    """(new text, local paths used). Raises RewriteError on an unknown CDN address or a hash mismatch."""
    used: list[str] = []

    def tag(m: re.Match) -> str:
        t = m.group(0)
        u = _URL.search(t)
        if not u:
            return t
        url = u.group(2)
        if m.group(1).lower() == "link" and not re.search(r'rel="?stylesheet', t, re.I):
            return t  # an ordinary link (not a resource the page loads)
        if url not in ASSETS:
            raise RewriteError(f"unknown CDN address in asv's page: {url} (asv changed? add it to ASSETS in {__file__})")
        package, inner, identical = ASSETS[url]
        src = node_modules / package / inner
        if not src.is_file():
            raise RewriteError(f"{src} is missing: run `npm ci` in {HERE} (make html does)")
        integ = _INTEGRITY.search(t)
        if identical and integ and not sri_ok(src.read_bytes(), integ.group(1)):
            raise RewriteError(f"{src} does not match the integrity hash asv's page gives for {url}")
        used.append(local_path(package, inner))
        t = t[: u.start(2)] + local_path(package, inner) + t[u.end(2):]
        return _DROP.sub("", t)

    text = _TAG.sub(tag, text)
    if REPORT_LINK not in text:
        text, n = NAV_ANCHOR.subn(lambda m: m.group(1) + "\n\t" + REPORT_LINK, text, count=1)
    return text, used


def copy_vendor(html_dir: Path, node_modules: Path, used: list[str]) -> None:
    wanted = {(p.split("/")[1], "/".join(p.split("/")[2:])) for p in used} | set(EXTRA_FILES)
    for package, inner in sorted(wanted):
        src = node_modules / package / inner
        dst = html_dir / VENDOR / package / inner
        if not src.exists():
            if (package, inner) in EXTRA_FILES:
                continue  # a licence file a package version may name differently
            raise RewriteError(f"{src} is missing: run `npm ci` in {HERE}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dst)


def rewrite(html_dir: Path, node_modules: Path) -> list[Path]:
    """Rewrite every top-level page of the site; returns the pages changed."""
    html_dir = Path(html_dir)
    if not (html_dir / "index.html").is_file():
        raise RewriteError(f"no asv site in {html_dir} (no index.html): run `asv publish` first")
    changed, used = [], []
    for page in sorted(html_dir.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        new, u = rewrite_page(text, node_modules)
        used += u
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
    if not used:  # an already rewritten page names local files only: find them to refresh the copies
        used = [local_path(p, i) for p, i, _ in ASSETS.values()]
    copy_vendor(html_dir, node_modules, used)
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html_dir", nargs="?", default="html", help="the folder asv publish wrote (default: html)")
    ap.add_argument("--node-modules", default=str(HERE / "node_modules"), help="where npm ci installed package.json")
    args = ap.parse_args(argv)
    try:
        changed = rewrite(Path(args.html_dir), Path(args.node_modules))
    except RewriteError as e:
        print(f"asv_offline: {e}", file=sys.stderr)
        return 1
    what = ", ".join(p.name for p in changed) or "nothing to change (already offline)"
    print(f"asv_offline: {args.html_dir}: {what}; vendor files in {Path(args.html_dir) / VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
