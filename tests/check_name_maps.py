#!/usr/bin/env python3
"""tests/check_name_maps.py TAGFILE DOCS_DIR — every public name of the headers has a row.

The docs' name maps (docs/*_map.md, and the name map of docs/mainpage.md)
give, for each Python name, its C++ twin.  This check goes the other way: it
fails when a public C++ name of a header is in no table, so that a name added
to a header must be added to its module's table too.

What counts as a public name: the names Doxygen lists in its tag file
(TAGFILE, written by the docs build) that a header declares
(multiprocessing.hpp, multiprocessing/**.hpp; not a .cpp file) and that are
  - a class or struct named multiprocessing::...;  a template specialization
    (a name with '<', such as Convert<Bytes>) is covered by its primary
    template's row;
  - a public member function of such a class, except its constructors, its
    destructor and its operators (operator[], operator==...: the tables name
    those by the Python spelling, `sl[i]`, `==`);
  - a function of namespace multiprocessing or of a namespace inside it.
Private and protected members are not in the tag file (EXTRACT_PRIVATE=NO).

What counts as a row for it: its unqualified name, as a whole word, on a
line of a Markdown table (a line that starts with '|') in any page of
DOCS_DIR.  The match is by name, not by class: one row that says what every
exception's python_name() is covers them all.

Exits 0 when every name has a row, 1 listing the names without one (grouped
by header), 77 (ctest's skip code) when TAGFILE does not exist, i.e. the docs
were not built.
"""
import collections
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def public_names(tagfile):
    """{qualified name: header} for every public name, as the docstring says."""
    root = ET.parse(tagfile).getroot()
    header_of = {}  # class name or namespace function -> header
    for c in root.findall("compound"):
        if c.get("kind") != "file":
            continue
        header = os.path.join(c.findtext("path") or "", c.findtext("name"))
        for cls in c.findall("class"):
            header_of[cls.text] = header
        for ns in c.findall("namespace"):
            header_of.setdefault(ns.text, header)
        for m in c.findall("member"):
            if m.get("kind") == "function":
                header_of.setdefault(f"{m.findtext('anchorfile')}#{m.findtext('anchor')}", header)
    names = {}
    for c in root.findall("compound"):
        kind, cname = c.get("kind"), c.findtext("name")
        if not cname.startswith("multiprocessing::") and cname != "multiprocessing":
            continue
        if "<" in cname or "@" in cname:
            continue
        if kind in ("class", "struct"):
            header = header_of.get(cname, "?")
            if not header.endswith(".hpp"):
                continue  # a class of a .cpp file: not public
            names[cname] = header
            short = cname.split("::")[-1]
            for m in c.findall("member"):
                if m.get("kind") != "function" or m.get("protection") not in (None, "public"):
                    continue
                n = m.findtext("name")
                if n in (short, "~" + short) or n.startswith("operator"):
                    continue
                names[f"{cname}::{n}"] = header
        elif kind == "namespace":
            for m in c.findall("member"):
                if m.get("kind") != "function":
                    continue
                header = header_of.get(f"{m.findtext('anchorfile')}#{m.findtext('anchor')}", "?")
                if header.endswith(".hpp"):  # not a function of a .cpp file
                    names[f"{cname}::{m.findtext('name')}"] = header
    return names


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_name_maps.py TAGFILE DOCS_DIR")
    tagfile, docs = sys.argv[1:]
    if not os.path.isfile(tagfile):
        print(f"check_name_maps: {tagfile} does not exist: build the docs first "
              "(cmake --build --preset debug --target docs); skipped")
        return 77
    rows = []
    for page in sorted(glob.glob(os.path.join(docs, "*.md"))):
        with open(page, encoding="utf-8") as f:
            rows += [line for line in f if line.startswith("|")]
    words = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", "".join(rows)))
    names = public_names(tagfile)
    missing = collections.defaultdict(list)
    for qualified, header in sorted(names.items()):
        if qualified.split("::")[-1] not in words:
            missing[header].append(qualified)
    for header, qualified in sorted(missing.items()):
        print(f"{header}: no table row for: {', '.join(qualified)}")
    count = sum(len(v) for v in missing.values())
    print(f"check_name_maps: {len(names)} public names, {count} without a table row in {docs}")
    if count:
        print("check_name_maps: add each to its module's table (docs/*_map.md or the main page's name map)")
    return 1 if count or not names else 0


if __name__ == "__main__":
    sys.exit(main())
