#!/usr/bin/env python3
"""include_deps_test.py on small made-up trees: it passes an include its CMake target allows, and
fails (naming file, line and the missing dependency) on one it does not, on a file outside every
library, and on a docs/architecture.md table of libraries that contradicts CMake or misses one."""
import os
import subprocess
import sys
import tempfile

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "include_deps_test.py")


def tree(files):
    root = tempfile.mkdtemp()
    for path, text in files.items():
        os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(root, path), "w", encoding="utf-8") as f:
            f.write(text)
    return root


def run(files):
    result = subprocess.run([sys.executable, CHECK, tree(files)], capture_output=True, text=True)
    return result.returncode, result.stdout


BASE = {
    "common/a/CMakeLists.txt": "add_library(assay_a STATIC a.cc)\n",
    "common/a/a.h": "#pragma once\n",
    "common/b/b.h": '#pragma once\n#include "common/a/a.h"\n',
}
failures = []
code, out = run({**BASE, "common/b/CMakeLists.txt": "add_library(assay_b STATIC b.cc)\n"
                 "target_link_libraries(assay_b PUBLIC assay_a)\n"})
if code != 0:
    failures.append(f"an allowed include was refused: {out}")
code, out = run({**BASE, "common/b/CMakeLists.txt": "add_library(assay_b STATIC b.cc)\n"
                 "# target_link_libraries(assay_b PUBLIC assay_a)\n"})
if code == 0 or 'common/b/b.h:2: #include "common/a/a.h": assay_b does not depend on assay_a' not in out:
    failures.append(f"an include outside the dependencies passed: {out}")
code, out = run({**BASE, "common/b/CMakeLists.txt": "add_library(assay_b STATIC b.cc)\n"
                 "target_link_libraries(assay_b PUBLIC assay_a)\n", "common/loose.h": "#pragma once\n"})
if code == 0 or "common/loose.h: in no library" not in out:
    failures.append(f"a file outside every library passed: {out}")
GOOD = {**BASE, "common/b/CMakeLists.txt": "add_library(assay_b STATIC b.cc)\n"
        "target_link_libraries(assay_b PUBLIC assay_a)\n"}
TABLE = "| target | files | depends on | third-party |\n|---|---|---|---|\n| `assay_a` (`common/a/`) | `a` | | |\n"
code, out = run({**GOOD, "docs/architecture.md": TABLE + "| `assay_b` (`common/b/`) | `b` | a | |\n"})
if code != 0:
    failures.append(f"a true table of libraries was refused: {out}")
code, out = run({**GOOD, "docs/architecture.md": TABLE + "| `assay_b` (`common/b/`) | `b` | | |\n"})
if code == 0 or "docs/architecture.md:4: assay_b is said to depend on nothing; CMake says assay_a" not in out:
    failures.append(f"a table that contradicts CMake passed: {out}")
code, out = run({**GOOD, "docs/architecture.md": TABLE})
if code == 0 or "no row for assay_b" not in out:
    failures.append(f"a table missing a library passed: {out}")
for failure in failures:
    print(failure)
print("include_deps_test.py: " + ("FAILED" if failures else "passes what CMake allows, fails what it does not"))
sys.exit(1 if failures else 0)
