#!/usr/bin/env python3
"""Fails when a file includes a header of a library its CMake target does not depend on.

Each library of common/ is one target, assay_<lib> (its files: COMMON_FILES below, as in
common/CMakeLists.txt; a file under common/<lib>/ belongs to <lib>); coordinator/ is
assay_coordinator_lib, worker/ assay_worker_lib, cli/ assay_cli_lib. DEPS lists each target's
direct dependencies among them, as the CMakeLists.txt files link them; a file may include the
headers of its own library and of every library its target reaches through DEPS. Prints each
offence as file:line: the include, and what its library may use. Run by ctest (label unit) with
the source root as its argument.
"""
import os
import re
import sys

# Direct dependencies, as in the CMakeLists.txt files (keep the two in step).
DEPS = {
    "common/base": [],
    "common/digest": ["common/base"],
    "common/tree": ["common/digest", "common/base"],
    "common/pipeline": ["common/base"],
    "common/task": ["common/pipeline"],
    "common/cas": ["common/digest", "common/base", "common/pipeline"],
    "common/rocksdb": ["common/cas"],
    "common/remote": ["common/tree", "common/cas", "common/digest", "common/base"],
    "common/security": ["common/base"],
    "common/metrics": ["common/base"],
    "cli": ["common/task", "common/remote", "common/tree", "common/pipeline", "common/security", "common/base"],
    "coordinator": ["common/base", "common/digest", "common/tree", "common/pipeline", "common/task", "common/cas",
                    "common/rocksdb", "common/security", "common/metrics"],
    "worker": ["common/base", "common/digest", "common/tree", "common/pipeline", "common/task", "common/cas",
               "common/rocksdb", "common/remote", "common/security", "common/metrics"],
}
# The files of each library of common/ (paths under common/), as in common/CMakeLists.txt.
COMMON_FILES = {
    "base": ["clock.h", "daemon.cc", "daemon.h", "file_util.cc", "file_util.h", "latency_histogram.h", "log_format.h", "retrier.cc", "retrier.h", "status_util.cc", "status_util.h", "thread_pool.cc", "thread_pool.h"],
    "digest": ["digest.cc", "digest.h", "resource_name.cc", "resource_name.h"],
    "tree": ["merkle.cc", "merkle.h", "safe_fs.cc", "safe_fs.h", "tree_limit_flags.h", "tree_validator.cc", "tree_validator.h", "tree_writer.cc", "tree_writer.h"],
    "pipeline": ["line_pattern.cc", "line_pattern.h", "pipeline.cc", "pipeline.h", "pipeline_firmware.cc", "pipeline_matrix.cc", "pipeline_output.cc", "pipeline_parser.h"],
    "cas": ["blob_pinner.h", "blob_store.cc", "blob_store.h", "disk_space.cc", "disk_space.h", "evictable_blob_store.h", "evicting_blob_store.cc", "evicting_blob_store.h", "memory_blob_store.cc", "memory_blob_store.h"],
    "rocksdb": ["blob_store_stack.cc", "blob_store_stack.h", "database.cc", "database.h", "rocksdb_blob_store.cc", "rocksdb_blob_store.h"],
    "remote": ["cas_client.cc", "cas_client.h"],
    "security": ["auth.cc", "auth.h", "security.cc", "security.h", "security_flags.h"],
    "metrics": ["metrics_exposer.cc", "metrics_exposer.h"],
    "task": ["task/platform_properties.h", "task/qemu_spec.cc", "task/qemu_spec.h", "task/task_states.cc", "task/task_states.h"],
}
FILE_LIBRARY = {f"common/{name}": f"common/{lib}" for lib, names in COMMON_FILES.items() for name in names}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def reachable(lib):
    seen, todo = set(), [lib]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(DEPS[current])
    return seen


def library_of(path):
    """The library (a DEPS key) a repository-relative path belongs to, or None."""
    if path in FILE_LIBRARY:
        return FILE_LIBRARY[path]
    for lib in sorted(DEPS, key=len, reverse=True):
        if path.startswith(lib + "/"):
            return lib
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    offences, checked = [], 0
    for top in ("common", "coordinator", "worker", "cli"):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".h", ".cc")):
                    continue
                path = os.path.relpath(os.path.join(folder, name), root)
                lib = library_of(path)
                if lib is None:
                    offences.append(f"{path}: in no library (add it to COMMON_FILES or DEPS, as in CMake)")
                    continue
                allowed = reachable(lib)
                checked += 1
                with open(os.path.join(root, path), encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m or not m.group(1).startswith(("common/", "coordinator/", "worker/", "cli/")):
                            continue
                        target = library_of(m.group(1))
                        if target is None:
                            offences.append(f'{path}:{number}: #include "{m.group(1)}": a header of no library')
                            continue
                        if target not in allowed:
                            offences.append(f'{path}:{number}: #include "{m.group(1)}": {lib} does not depend on '
                                            f'{target} (it may use {", ".join(sorted(allowed))})')
    for offence in offences:
        print(offence)
    if offences:
        print(f"{len(offences)} include(s) outside their target's dependencies")
        return 1
    print(f"{checked} files checked: every include is within its target's dependencies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
