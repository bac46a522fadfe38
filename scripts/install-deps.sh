#!/usr/bin/env bash
# Installs the Debian packages Assay needs to build, test and run its example.
# Safe to run again: it only installs what is missing.
#   scripts/install-deps.sh            build + tests + example toolchains
#   ASSAY_WITH_BAZEL=0 scripts/...     skip Bazel (used by the REAPI interoperability tests)
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config ccache git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libfmt-dev librocksdb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev libcli11-dev libssl-dev nlohmann-json3-dev prometheus-cpp-dev libre2-dev
  # example firmware and its emulators
  gcc-arm-none-eabi gcc-riscv64-unknown-elf qemu-system-arm qemu-system-misc
  # tests (clang and its runtimes for the libFuzzer targets)
  procps coreutils openssl clang libclang-rt-14-dev libxml2-utils
  # workers: the sandbox executor
  bubblewrap
  # deploy/: container images built offline, the compose file, the private daemon its test starts
  docker.io docker-compose debootstrap iproute2 util-linux busybox-static
  # the Podman executor (runc: crun refuses this kind of host's hybrid cgroups)
  podman runc conmon containernetworking-plugins
)
if [[ "${ASSAY_WITH_BAZEL:-1}" == 1 ]]; then
  packages+=(bazel-bootstrap bazel-rules-java)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
