#!/usr/bin/python3
"""Holds shipped code to its size rules: no file over 500 lines, no function over 80 lines.

Usage: size_check.py [--max-file-lines N] [--max-function-lines N] ROOT...
       size_check.py --self-test FIXTURE_DIR

Scans the .cc/.h/.cpp/.hpp files under each ROOT (recursively) and prints one line per offender,
  path:line: file has N lines (over 500)
  path:line: function Name is N lines (over 80)
then exits 1 if there was any (0 otherwise).

A function's length counts the lines from the one holding its name to the one holding its closing
brace, both included. Functions are found without a compiler: comments, string and character
literals (raw strings too) are blanked out, then the braces are matched; a brace at namespace or class
scope opens a function body when the text before it (since the previous `;`, `{` or `}`) holds a
parameter list and is not a class, namespace, enum or `= {` initialiser. Braces inside a function
(lambdas, blocks) count towards that function; a constructor's member initialisers in braces are
recognised by what follows them (`,` or `{`).

Data tables are excepted: a function whose body is a table of data carries the comment
  // size-check: data table
on the line of its name, the line above it, or anywhere in its body, and is not reported.
"""

import argparse
import os
import re
import sys

MARKER = "size-check: data table"
EXTENSIONS = (".cc", ".h", ".cpp", ".hpp")


def blank(text):
    """Returns text with comments and string/char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def keep_lines(s):
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(keep_lines(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(keep_lines(text[i:j]))
            i = j
        elif c == "R" and i + 1 < n and text[i + 1] == '"' and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^()\\ ]{0,16})\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i + m.end())
            end = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + keep_lines(text[i + 2:end]))
            i = end
        elif c in "\"'":
            # A digit separator (1'000) is not a character literal.
            if c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum():
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + keep_lines(text[i + 1:j - 1]) + c)
            i = j
        elif c == "#" and (i == 0 or text[text.rfind("\n", 0, i) + 1:i].strip() == ""):
            # A preprocessor line (and its continuations): blanked, so macros do not unbalance braces.
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != "\\":
                    break
                j = k + 1
            out.append(keep_lines(text[i:k]))
            i = k
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_parens(header):
    """The header with each top-level (...) group reduced to "()" and <...> left as is."""
    out, depth = [], 0
    for c in header:
        if c == "(":
            if depth == 0:
                out.append("(")
            depth += 1
        elif c == ")":
            depth = max(depth - 1, 0)
            if depth == 0:
                out.append(")")
        elif depth == 0:
            out.append(c)
    return "".join(out)


NAME_RE = re.compile(r"(~?[A-Za-z_][\w:]*(?:<[^()]*>)?(?:::~?[A-Za-z_]\w*)*|operator\s*[^\s(]+(?:\s*\(\))?)\s*\($")


def function_name(header):
    """The name before the first top-level '(' of a function header, or None."""
    flat = " ".join(header.split())
    flat = re.sub(r"^\s*template\s*<.*?>\s*", "", flat)
    if re.match(r"^\s*(class|struct|union|enum|namespace|extern)\b", flat):
        return None
    m = re.search(r"operator\s*(\(\)|[^\s(]+)\s*\(", flat)
    if m:
        pre = flat[: m.start()]
        q = re.search(r"([\w:]*::)?$", pre)
        return (q.group(0) if q else "") + "operator" + m.group(1)
    depth = 0
    for i, c in enumerate(flat):
        if c == "(":
            if depth == 0:
                m = re.search(r"(~?[A-Za-z_]\w*(?:\s*<[^()]*?>)?(?:\s*::\s*~?[A-Za-z_]\w*(?:\s*<[^()]*?>)?)*)\s*$", flat[:i])
                if not m:
                    return None
                return re.sub(r"\s+", "", m.group(1))
            depth += 1
        elif c == ")":
            depth -= 1
    return None


def is_function_header(header):
    stripped = header.strip()
    if "(" not in stripped:
        return False
    if re.search(r"[=(,\[]\s*$", stripped):  # = {...}, f({...}), {a, {b}}, [{...}]
        return False
    flat = strip_parens(stripped)
    if re.search(r"(?<![=!<>+\-*/%&|^])=(?!=)", flat) and "operator" not in flat:
        return False  # an initialiser: auto x = f(...) {  (not C++), or a lambda assigned at namespace scope
    return function_name(stripped) is not None


def find_functions(text):
    """Yields (name, first_line, last_line) of each function body at namespace or class scope."""
    code = blank(text)
    line_at = []
    line = 1
    for c in code:
        line_at.append(line)
        if c == "\n":
            line += 1
    results = []
    stack = []  # "scope" (namespace, class, extern, other) entries outside functions
    header_start = 0
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "{":
            header = code[header_start:i]
            if is_function_header(header):
                # Match the body; in a constructor's initialiser list, a braced member initialiser is
                # followed by ',' or '{': keep looking for the body after it.
                depth, j = 0, i
                while j < n:
                    if code[j] == "{":
                        depth += 1
                    elif code[j] == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                k = j + 1
                while k < n and code[k].isspace():
                    k += 1
                if k < n and code[k] in ",{":
                    i = j + 1
                    continue
                name = function_name(header)
                first = header_start + len(header) - len(header.lstrip())
                results.append((name, line_at[first], line_at[min(j, n - 1)]))
                i = j + 1
                header_start = i
                continue
            stack.append(i)
            header_start = i + 1
        elif c == "}":
            if stack:
                stack.pop()
            header_start = i + 1
        elif c == ";":
            header_start = i + 1
        elif c == ":" and not (i + 1 < n and code[i + 1] == ":") and not (i > 0 and code[i - 1] == ":"):
            # public: / private: / protected: end a header; a constructor's ':' does not.
            if re.search(r"\b(public|private|protected)\s*$", code[header_start:i]):
                header_start = i + 1
        i += 1
    return results


def check_file(path, display, max_file, max_function):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    lines = text.split("\n")
    count = len(lines) - (1 if text.endswith("\n") else 0)
    found = []
    if count > max_file:
        found.append((display, 1, f"file has {count} lines (over {max_file})"))
    for name, first, last in find_functions(text):
        length = last - first + 1
        if length <= max_function:
            continue
        around = "\n".join(lines[max(first - 2, 0): last])
        if MARKER in around:
            continue
        found.append((display, first, f"function {name} is {length} lines (over {max_function})"))
    return found


def scan(roots, base, max_file, max_function):
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(EXTENSIONS):
                    path = os.path.join(dirpath, name)
                    found += check_file(path, os.path.relpath(path, base), max_file, max_function)
    return found


def self_test(fixture_dir):
    """The check on its fixtures: it must report exactly what they hold."""
    found = scan([fixture_dir], fixture_dir, 500, 80)
    got = sorted(f"{p}:{l}: {m}" for p, l, m in found)
    want = sorted([
        "long_function.cc:9: function LongFunction is 84 lines (over 80)",
        "long_function.cc:205: function Widget::Build is 82 lines (over 80)",
        "long_file.h:1: file has 503 lines (over 500)",
    ])
    for line in got:
        print(line)
    # The table is long too: only its marker keeps it out of the report.
    with open(os.path.join(fixture_dir, "long_function.cc"), encoding="utf-8") as f:
        table = [(n, b - a + 1) for n, a, b in find_functions(f.read()) if n == "Name"]
    if table != [("Name", 95)]:
        print(f"size_check self-test FAILED: the marked data table Name was measured as {table}, not 95 lines")
        return 1
    if got != want:
        print("size_check self-test FAILED: expected exactly:\n  " + "\n  ".join(want))
        return 1
    print("size_check self-test passed: the long function, the long method and the long file are reported;"
          " the short functions, the marked data table and the braces in strings and comments are not")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-file-lines", type=int, default=500)
    parser.add_argument("--max-function-lines", type=int, default=80)
    parser.add_argument("--base", default=None, help="paths are printed relative to this folder")
    parser.add_argument("--self-test", metavar="FIXTURE_DIR")
    parser.add_argument("roots", nargs="*")
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.self_test)
    if not args.roots:
        parser.error("no folder to check")
    base = args.base or os.path.commonpath([os.path.abspath(r) for r in args.roots] + [os.getcwd()])
    found = scan(args.roots, base, args.max_file_lines, args.max_function_lines)
    for path, line, message in found:
        print(f"{path}:{line}: {message}")
    if found:
        print(f"{len(found)} over the size rules (files <= {args.max_file_lines} lines, functions <= "
              f"{args.max_function_lines} lines; a data table is marked `// {MARKER}`)")
        return 1
    print("size rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
