# Sourced by the Bazel benchmarks: writes the generated C++ workspace they build.
#   make_workspace DIR: DIR/rules_cc (the offline @rules_cc, re-exporting the native rules) and DIR/ws,
#   10 libraries x 20 files (each file a few functions over std::map and std::vector: ~0.3-0.7 s of
#   g++ each) and a binary using them all. Prints nothing.
make_workspace() {
  local work=$1
  mkdir -p "$work/rules_cc/cc" "$work/ws"
  echo 'workspace(name = "rules_cc")' >"$work/rules_cc/WORKSPACE"
  : >"$work/rules_cc/BUILD"
  echo 'exports_files(["defs.bzl"])' >"$work/rules_cc/cc/BUILD"
  for rule in cc_binary cc_library cc_test cc_import cc_proto_library cc_toolchain cc_toolchain_suite fdo_profile \
              fdo_prefetch_hints objc_library objc_import; do
    echo "$rule = native.$rule" >>"$work/rules_cc/cc/defs.bzl"
  done
  : >"$work/ws/WORKSPACE"
  {
    for lib in $(seq 0 9); do
      echo "cc_library(name = \"lib$lib\", srcs = glob([\"lib$lib/*.cc\"]), hdrs = glob([\"lib$lib/*.h\"]))"
    done
    echo "cc_binary(name = \"app\", srcs = [\"main.cc\"], deps = [$(for l in $(seq 0 9); do printf '":lib%s", ' "$l"; done)])"
  } >"$work/ws/BUILD"
  for lib in $(seq 0 9); do
    mkdir -p "$work/ws/lib$lib"
    for f in $(seq 0 19); do
      name="l${lib}_f${f}"
      echo "#include <string>
std::string ${name}(int n);" >"$work/ws/lib$lib/$name.h"
      {
        echo "#include \"lib$lib/$name.h\""
        echo "#include <map>"
        echo "#include <vector>"
        echo "#include <algorithm>"
        echo "std::string ${name}(int n) { std::map<int, std::vector<std::string>> m;"
        echo "  for (int i = 0; i < n; ++i) m[i % 7].push_back(std::to_string(i * $f + $lib));"
        echo "  std::string out; for (auto& [k, v] : m) { std::sort(v.begin(), v.end()); for (auto& s : v) out += s; }"
        echo "  return out; }"
      } >"$work/ws/lib$lib/$name.cc"
    done
  done
  {
    echo "#include <cstdio>"
    for lib in $(seq 0 9); do echo "#include \"lib$lib/l${lib}_f0.h\""; done
    echo "int main() { size_t n = 0;"
    for lib in $(seq 0 9); do echo "  n += l${lib}_f0(10).size();"; done
    echo "  std::printf(\"%zu\\n\", n); }"
  } >"$work/ws/main.cc"
}
