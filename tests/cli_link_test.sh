#!/bin/sh
# The CLI links neither RocksDB nor prometheus-cpp: it reaches the farm over gRPC only. Nor libcurl:
# that is loaded when first used (common/s3/curl_loader.h), not at every command's start.
# With ASSAY_STATIC_CLI (cmake/StaticDeps.cmake) it loads no shared gRPC, protobuf, abseil, RE2 or
# yaml-cpp either: those are linked from their static archives, and never both kinds at once.
# $1: the assay binary; $2: the build directory; $3: CMake's make program; $4: `static` when the CLI
# links the archives. With Ninja, checks the link line of the `assay` target (what CMake's
# dependencies bring in, used or not); and always the libraries the binary loads (ldd).
set -eu
bin=$1 build=$2 make=$3 kind=${4:-shared}
bad=""
case "$make" in
  *ninja*)
    line=$("$make" -C "$build" -t commands assay | tail -1)
    printf '%s\n' "$line" | grep -q -- '-o cli/assay' || { echo "not the CLI's link line: $line"; exit 1; }
    bad=$(printf '%s\n' "$line" | tr ' ' '\n' | grep -Ei 'rocksdb|prometheus|curl' || true)
    [ -z "$bad" ] || { echo "the CLI's link line names libraries it must not link:"; echo "$bad"; exit 1; }
    ;;
esac
bad=$(ldd "$bin" | grep -Ei 'rocksdb|prometheus|curl' || true)
[ -z "$bad" ] || { echo "$bin loads libraries it must not:"; echo "$bad"; exit 1; }
if [ "$kind" = static ]; then
  bad=$(ldd "$bin" | grep -Ei 'libgrpc|libgpr|libupb|libprotobuf|libabsl|libre2|libyaml' || true)
  [ -z "$bad" ] || { echo "$bin loads shared libraries it links statically:"; echo "$bad"; exit 1; }
  "$bin" --help >/dev/null || { echo "$bin --help failed"; exit 1; }
  echo "$bin loads no shared gRPC, protobuf, abseil, RE2 or yaml-cpp"
fi
echo "$bin links neither RocksDB, prometheus-cpp nor libcurl"
