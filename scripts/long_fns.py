#!/usr/bin/env python3
"""Production Rust functions longer than a limit (issue 20: none over 100).

    python3 scripts/long_fns.py [--limit 100] [PATH ...]

PATH is a crate's `src` folder or a single `.rs` file; without one, every
`crates/*/src` under the current directory. Prints one line per function
whose body is longer than the limit, longest first:

    187  crates/levee-mail/src/session/imap.rs:40  run

The length counts the lines from the one with `fn` to the one with the
body's closing `}`, both included (doc comments and attributes not). Test code is left out: items under `#[cfg(test)]` or `#[test]`
(a whole `mod tests { ... }`, and the file of a `#[cfg(test)] mod tests;`),
and any file under a `tests/` folder. A function nested in another is listed
on its own and is counted in the outer one too.

No dependencies beyond Python 3. It matches braces in source text with
comments, strings and character literals blanked out; it does not run the
compiler, so functions written by macros are not seen.
"""

import argparse
import glob
import os
import re
import sys


RAW = re.compile(r'b?r(#*)"')


def blank(src):
    """The source with comments and literal contents turned into spaces.

    Newlines are kept, so offsets and line numbers stay those of `src`."""
    out = list(src)
    i, n = 0, len(src)

    def wipe(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            end = src.find("\n", i)
            end = n if end < 0 else end
            wipe(i, end)
            i = end
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            wipe(i, j)
            i = j
        elif c in "br" and (raw := RAW.match(src, i)):
            if i > 0 and (src[i - 1].isalnum() or src[i - 1] == "_"):
                i += 1
                continue
            close = '"' + raw.group(1)
            end = src.find(close, raw.end())
            end = n if end < 0 else end + len(close)
            wipe(raw.end(), end - len(close))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            wipe(i + 1, j)
            i = j + 1
        elif c == "'":
            # A character literal ('x', '\n', '\u{7f}', '{'), or a lifetime.
            if src.startswith("\\", i + 1):
                end = src.find("'", i + 3)
            elif i + 2 < n and src[i + 2] == "'":
                end = i + 2
            else:
                i += 1
                continue
            wipe(i + 1, end)
            i = end + 1
        else:
            i += 1
    return "".join(out)


def item_body(code, start):
    """The body of the item whose signature starts at `start`: the offsets
    of its `{` and its matching `}`, or None if a `;` ends the item first
    (a declaration, `mod x;`). Braces inside `(...)` or `[...]` of the
    signature do not count."""
    depth = 0
    for i in range(start, len(code)):
        c = code[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == ";" and depth == 0:
            return None
        elif c == "{" and depth == 0:
            return i, close_brace(code, i)
    return None


def close_brace(code, open_at):
    """Offset of the `}` that closes the `{` at `open_at`."""
    depth = 0
    for i in range(open_at, len(code)):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(code) - 1


TEST_ATTR = re.compile(r"#\[\s*(?:cfg\s*\(\s*test\s*\)|test)\s*\]")
ATTR = re.compile(r"\s*#\[[^\]]*\]")
FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")
MOD_DECL = re.compile(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;")


def test_spans(code):
    """(start, end) offsets of items marked test, and the names of test
    modules declared without a body (`#[cfg(test)] mod tests;`)."""
    spans, mods = [], []
    for m in TEST_ATTR.finditer(code):
        at = m.end()
        while attr := ATTR.match(code, at):
            at = attr.end()
        if decl := MOD_DECL.match(code, at):
            mods.append(decl.group(1))
        body = item_body(code, at)
        spans.append((m.start(), body[1] if body else at))
    return spans, mods


def long_functions(path, limit, skip_files):
    with open(path, encoding="utf-8") as f:
        code = blank(f.read())
    spans, mods = test_spans(code)
    here = os.path.dirname(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    child_dir = here if stem in ("lib", "main", "mod") else os.path.join(here, stem)
    for name in mods:
        skip_files.add(os.path.normpath(os.path.join(child_dir, name)))
    found = []
    for m in FN.finditer(code):
        if any(a <= m.start() < b for a, b in spans):
            continue
        body = item_body(code, m.end())
        if body is None:
            continue  # a declaration without a body, in a trait
        first = code.count("\n", 0, m.start()) + 1
        length = code.count("\n", 0, body[1]) + 1 - first + 1
        if length > limit:
            found.append((length, path, first, m.group(1)))
    return found


def rust_files(paths):
    for p in paths:
        if p.endswith(".rs"):
            yield p
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if d != "tests")
            for name in sorted(files):
                if name.endswith(".rs"):
                    yield os.path.join(root, name)


def is_test_module(path, skip):
    """Whether `path` is the file of a test module, or of a module inside
    one: `skip` holds test modules as paths without `.rs`."""
    module = os.path.splitext(os.path.normpath(path))[0]
    if os.path.basename(module) == "mod":
        module = os.path.dirname(module)
    while module and module not in skip:
        parent = os.path.dirname(module)
        if parent == module:
            return False
        module = parent
    return bool(module)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("paths", nargs="*")
    args = ap.parse_args()
    paths = args.paths or sorted(glob.glob("crates/*/src"))
    if not paths:
        sys.exit("no crates/*/src here; run from the workspace root or name paths")
    files = list(rust_files(paths))
    skip, found = set(), []
    # Parents before children, so a file declared `#[cfg(test)] mod x;`
    # is known to be test code before it is read.
    files.sort(key=lambda p: (p.count(os.sep), p))
    for path in files:
        if is_test_module(path, skip):
            skip.add(os.path.splitext(os.path.normpath(path))[0])
            continue
        found += long_functions(path, args.limit, skip)
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    for length, path, line, name in found:
        print(f"{length:5}  {path}:{line}  {name}")
    print(f"{len(found)} functions over {args.limit} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
