#!/usr/bin/env python3
"""tests/check_reading_order.py DOCS_DIR — every page is reached from the main page.

Each page of DOCS_DIR (a .md or .md.in file whose first line ends with its
{#id}) must be named by a \\subpage line of DOCS_DIR/mainpage.md, so that the
site's tree and the main page list it; and each walkthrough (walkthrough_*.md)
must be an item of the main page's numbered reading order (a line
"N. \\subpage id ..." under the heading {#mainpage_reading_order}).

Exits 0 when they all are, 1 naming each page that is not.
"""
import glob
import os
import re
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_reading_order.py DOCS_DIR")
    docs = sys.argv[1]
    with open(os.path.join(docs, "mainpage.md"), encoding="utf-8") as f:
        main_page = f.read()
    subpages = set(re.findall(r"\\subpage ([A-Za-z0-9_]+)", main_page))
    order_start = main_page.find("{#mainpage_reading_order}")
    order_text = main_page[order_start:main_page.find("\n# ", order_start)] if order_start >= 0 else ""
    in_order = re.findall(r"^[0-9]+\. \\subpage ([A-Za-z0-9_]+)", order_text, re.M)
    missing = []
    pages = sorted(glob.glob(os.path.join(docs, "*.md")) + glob.glob(os.path.join(docs, "*.md.in")))
    for page in pages:
        name = os.path.basename(page)
        if name == "mainpage.md":
            continue
        with open(page, encoding="utf-8") as f:
            m = re.search(r"\{#([A-Za-z0-9_]+)\}\s*$", f.readline())
        if not m:
            continue
        if m.group(1) not in subpages:
            missing.append(f"{name}: its page {m.group(1)} is not a \\subpage of mainpage.md")
        if name.startswith("walkthrough_") and m.group(1) not in in_order:
            missing.append(f"{name}: the walkthrough {m.group(1)} is not in the main page's reading order")
    for line in missing:
        print(line)
    print(f"check_reading_order: {len(pages) - 1} pages, {len(in_order)} in the reading order, "
          f"{len(missing)} problems")
    return 1 if missing or not in_order else 0


if __name__ == "__main__":
    sys.exit(main())
