#!/usr/bin/env python3
"""Fails when a file includes a header of a library its CMake target does not depend on.

The libraries and their dependencies are read from the CMakeLists.txt files themselves, so the two
cannot drift apart: each folder of common/ (common/<lib>/) and each of coordinator/, worker/ and
cli/ has one add_library(); a file belongs to the library of the nearest folder above it that
declares one (a program's main.cc to its folder's library, which the program links). A file may
include the headers of its own library and of every library its target reaches through its
target_link_libraries() (PUBLIC or PRIVATE, among the project's own libraries). Prints each offence
as file:line: the include, and what its library may use. It also holds docs/architecture.md to the
same truth: each row of its table of common/'s libraries must name the dependencies CMake gives that
target. Run by ctest (label unit) with the source root as its argument.
"""
import os
import re
import sys

TOPS = ("common", "coordinator", "worker", "cli")
ADD_LIBRARY = re.compile(r"add_library\(\s*(assay_\w+)\s+(STATIC|SHARED|OBJECT)\b")
LINK = re.compile(r"target_link_libraries\(\s*(assay_\w+)\b([^)]*)\)", re.S)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
DOC_ROW = re.compile(r"^\| `(assay_\w+)` \(`common/\w+/`\) \|[^|]*\|\s*([^|]*?)\s*\|")


def doc_offences(root, folder_target, deps):
    """Rows of docs/architecture.md's library table whose "depends on" differs from CMake's."""
    path = os.path.join(root, "docs", "architecture.md")
    if not os.path.exists(path):
        return []
    offences, rows = [], set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            m = DOC_ROW.match(line)
            if not m:
                continue
            target, written = m.group(1), m.group(2)
            rows.add(target)
            said = {"assay_" + w for w in re.findall(r"\b[a-z][a-z0-9]*\b", written.split(";")[0])}
            actual = deps.get(target, set()) & (set(folder_target.values()) | {"assay_proto"})
            if said != actual:
                offences.append(f"docs/architecture.md:{number}: {target} is said to depend on "
                                f"{', '.join(sorted(said)) or 'nothing'}; CMake says {', '.join(sorted(actual)) or 'nothing'}")
    for folder, target in folder_target.items():
        if folder.startswith("common/") and target not in rows:
            offences.append(f"docs/architecture.md: no row for {target} ({folder}/) in the table of common/'s libraries")
    return offences


def read_targets(root):
    """(folder -> library target, target -> its direct project dependencies)."""
    folder_target, deps = {}, {}
    for top in TOPS:
        for folder, _, files in os.walk(os.path.join(root, top)):
            if "CMakeLists.txt" not in files:
                continue
            with open(os.path.join(folder, "CMakeLists.txt"), encoding="utf-8") as f:
                text = re.sub(r"#[^\n]*", "", f.read())
            libraries = ADD_LIBRARY.findall(text)
            if len(libraries) > 1:
                sys.exit(f"{folder}/CMakeLists.txt: declares {len(libraries)} libraries; this check expects one")
            if libraries:
                folder_target[os.path.relpath(folder, root)] = libraries[0][0]
            for target, args in LINK.findall(text):
                deps.setdefault(target, set()).update(re.findall(r"\bassay_\w+\b", args))
    return folder_target, deps


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder_target, deps = read_targets(root)

    def target_of(path):
        folder = os.path.dirname(path)
        while folder:
            if folder in folder_target:
                return folder_target[folder]
            folder = os.path.dirname(folder)
        return None

    def reachable(target):
        seen, todo = set(), [target]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(deps.get(current, ()))
        return seen

    offences, checked = [], 0
    for top in TOPS:
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".h", ".cc")):
                    continue
                path = os.path.relpath(os.path.join(folder, name), root)
                target = target_of(path)
                if target is None:
                    offences.append(f"{path}: in no library (no CMakeLists.txt with an add_library above it)")
                    continue
                allowed = reachable(target)
                checked += 1
                with open(os.path.join(root, path), encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m or not m.group(1).startswith(tuple(t + "/" for t in TOPS)):
                            continue
                        included = m.group(1)
                        if not os.path.exists(os.path.join(root, included)):
                            offences.append(f'{path}:{number}: #include "{included}": no such file')
                            continue
                        owner = target_of(included)
                        if owner not in allowed:
                            offences.append(f'{path}:{number}: #include "{included}": {target} does not depend on '
                                            f'{owner} (it may use {", ".join(sorted(allowed))})')
    offences += doc_offences(root, folder_target, deps)
    for offence in offences:
        print(offence)
    if offences:
        print(f"{len(offences)} problem(s): includes outside their target's dependencies, or docs that say otherwise")
        return 1
    print(f"{checked} files in {len(folder_target)} libraries checked: every include is within its target's "
          "dependencies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
