#!/usr/bin/env python3
"""tests/check_html_links.py HTML_DIR — every local link and image of the site resolves.

Reads each .html and .svg file that Doxygen wrote under HTML_DIR and checks
every local reference in it: the href of <a> and <link>, the src of <img>,
<script> and <iframe>, the data of <object>, and the (xlink:)href of an SVG
<a>, <image> or <use> (the clickable nodes of a graphviz diagram).  A reference resolves
when the file it names exists under HTML_DIR; when it also names an anchor
(page.html#name), the page must have an element with that id or name.
References to other sites (http:, https:, mailto:, javascript:) are not
followed: the check needs no network and no browser.

Exits 0 when every reference resolves; 1 with one line per broken one;
77 (ctest's skip code) when HTML_DIR does not exist, i.e. the docs were not
built (`cmake --build --preset debug --target docs`, which ./dev test runs
before ctest).
"""
import html.parser
import os
import sys
import urllib.parse

EXTERNAL = ("http:", "https:", "mailto:", "javascript:", "ftp:", "data:")
LINK_ATTRS = {
    "a": ("href",), "link": ("href",), "area": ("href",),
    "img": ("src",), "script": ("src",), "iframe": ("src",), "object": ("data",),
}


class Page(html.parser.HTMLParser):
    """The references a page makes and the anchors it defines."""

    def __init__(self, svg):
        super().__init__(convert_charrefs=True)
        self.svg = svg
        self.refs = []      # (line, reference)
        self.anchors = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.anchors.add(attrs[key])
        names = LINK_ATTRS.get(tag, ())
        if self.svg:
            # In an SVG only these elements link or load: an href on a <path>
            # (Doxygen's own logo has one) refers to nothing.
            names = ("href", "xlink:href") if tag in ("a", "image", "use") else ()
        for name in names:
            value = attrs.get(name)
            if value:
                self.refs.append((self.getpos()[0], value))

    handle_startendtag = handle_starttag


def parse(path):
    page = Page(svg=path.endswith(".svg"))
    with open(path, encoding="utf-8", errors="replace") as f:
        page.feed(f.read())
    page.close()
    return page


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_html_links.py HTML_DIR")
    root = os.path.abspath(sys.argv[1])
    if not os.path.isdir(root):
        print(f"check_html_links: {root} does not exist: build the docs first "
              "(cmake --build --preset debug --target docs); skipped")
        return 77
    pages = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith((".html", ".svg")):
                path = os.path.join(dirpath, name)
                pages[path] = parse(path)
    broken = []
    checked = 0
    for path, page in sorted(pages.items()):
        for line, ref in page.refs:
            if ref.startswith(EXTERNAL):
                continue
            checked += 1
            parsed = urllib.parse.urlsplit(ref)
            target = path
            if parsed.path:
                target = os.path.normpath(os.path.join(os.path.dirname(path), urllib.parse.unquote(parsed.path)))
            rel = os.path.relpath(path, root)
            if not target.startswith(root + os.sep) or not os.path.isfile(target):
                broken.append(f"{rel}:{line}: {ref}: no file {os.path.relpath(target, root)}")
                continue
            anchor = urllib.parse.unquote(parsed.fragment)
            if anchor and target in pages and anchor not in pages[target].anchors:
                broken.append(f"{rel}:{line}: {ref}: no anchor #{anchor} in {os.path.relpath(target, root)}")
    for line in broken:
        print(line)
    print(f"check_html_links: {len(pages)} files, {checked} local references, {len(broken)} broken")
    return 1 if broken or not pages else 0


if __name__ == "__main__":
    sys.exit(main())
