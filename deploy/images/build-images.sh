#!/usr/bin/env bash
# Builds Assay's container images offline, from Debian packages only:
#   assay-base:bookworm        Debian 12 (debootstrap, minbase) with the libraries the binaries use
#   assay-toolchain:bookworm   the base plus the examples' cross toolchains, QEMU, make, bubblewrap,
#                              and Debian's Rust 1.96 (rustc-web, cargo-web: examples/karatos-rs)
#   assay-coordinator:TAG      FROM assay-base, with assay-coordinator and assay
#   assay-worker:TAG           FROM assay-toolchain, with assay-worker and assay
# The root filesystems come from the apt mirror this host already uses (read from /etc/apt), never
# from a registry; the Rust toolchain, which only bookworm-security has in version 1.96, is fetched
# by this host's apt (its sources must list bookworm-security, and `apt-get update` must have run).
# Each rootfs is kept as a tarball in ASSAY_IMAGE_CACHE (default /var/cache/assay/images), keyed by
# its package lists, so a second run skips debootstrap.
#
#   deploy/images/build-images.sh [--engine docker|podman] [--tag TAG] [--bin DIR] [--rootfs-only]
#     --engine E     the engine that gets the images (default docker; DOCKER_HOST selects its daemon,
#                    CONTAINERS_CONF / CONTAINERS_STORAGE_CONF configure podman)
#     --bin DIR      where assay-coordinator, assay-worker and assay are (default: build/release, built
#                    by scripts/run-example.sh or cmake)
#     --rootfs-only  only assay-base and assay-toolchain (enough for pipelines with `image:`)
# Needs root, debootstrap, apt-get and the engine.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DOCKER_BUILDKIT=0  # the classic builder: no buildx plugin needed
tag=latest
bin=build/release
engine=docker
rootfs_only=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --engine) engine=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --rootfs-only) rootfs_only=1; shift ;;
    *) echo "usage: $0 [--engine docker|podman] [--tag TAG] [--bin DIR] [--rootfs-only]" >&2; exit 2 ;;
  esac
done
case "$engine" in
  docker|podman) ;;
  *) echo "--engine $engine: docker or podman" >&2; exit 2 ;;
esac
cache=${ASSAY_IMAGE_CACHE:-/var/cache/assay/images}
mkdir -p "$cache"

# The libraries of assay-coordinator, assay-worker and assay (Debian 12 package names).
runtime="ca-certificates,libabsl20220623,libc-ares2,libcivetweb1,libfmt9,libgrpc++1.51,libgrpc29,\
libprometheus-cpp-core1.0,libprometheus-cpp-pull1.0,libprotobuf32,libre2-9,libspdlog1.10,libssl3,\
libyaml-cpp0.7,libsnappy1v5,liblz4-1,libzstd1,libbz2-1.0,zlib1g,libcurl4"
toolchain="$runtime,bubblewrap,make,gcc-arm-none-eabi,gcc-riscv64-unknown-elf,\
qemu-system-arm,qemu-system-misc"
# Debian's Rust toolchain for no_std firmware (examples/karatos-rs builds core with -Zbuild-std from
# rust-web-src, offline). bookworm itself has 1.85; the 1.96 that the example and the hosts use (and
# its libllvm22, libgit2-1.5) is in bookworm-security only, which debootstrap cannot take packages
# from (one suite of one mirror): security_packages installs it into the rootfs afterwards.
rust="rustc-web,cargo-web,rust-web-src,libstd-rust-web-dev"
rust_version=1.96

# The first Debian mirror of this host's apt sources (one-line or deb822 format).
mirror() {
  local uri
  uri=$(grep -hoE '^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+' \
          /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security |
        awk '{print $NF}' | head -n1 || true)
  if [[ -z "$uri" ]]; then
    uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security |
          awk '{print $2}' | head -n1 || true)
  fi
  [[ -n "$uri" ]] || { echo "no Debian mirror found in /etc/apt" >&2; exit 1; }
  echo "$uri"
}

# security_packages ROOTFS PACKAGES: installs PACKAGES (comma-separated) into ROOTFS at the versions
# this host's apt would pick, bookworm-security included. The host's apt resolves them against the
# rootfs's own package status and downloads the missing .debs (with the host's apt configuration);
# dpkg installs them inside the rootfs. Nothing in the rootfs needs the network.
security_packages() {
  local root=$1 packages=$2 debs
  debs="$root/var/cache/apt/archives/security"
  mkdir -p "$debs/partial"
  # shellcheck disable=SC2086
  apt-get -q -y --download-only --no-install-recommends -o Debug::NoLocking=true \
    -o Dir::State::status="$root/var/lib/dpkg/status" -o Dir::Cache::archives="$debs" \
    install ${packages//,/ } >"$root/../security.log" 2>&1 ||
    { tail -n 30 "$root/../security.log" >&2; return 1; }
  ls "$debs"/*.deb >/dev/null 2>&1 || { echo "apt-get downloaded nothing for $packages" >&2; return 1; }
  chroot "$root" sh -c 'dpkg -i /var/cache/apt/archives/security/*.deb' >>"$root/../security.log" 2>&1 ||
    { tail -n 30 "$root/../security.log" >&2; return 1; }
  rm -rf "$debs"
}

# rootfs NAME PACKAGES [SECURITY_PACKAGES CHECK]: imports NAME:bookworm from a cached or fresh
# debootstrap tarball; SECURITY_PACKAGES are added with security_packages, then CHECK (a shell
# command run in the rootfs) must succeed.
rootfs() {
  local name=$1 packages=$2 extra=${3:-} check=${4:-} key tarball dir
  key=$(echo "$packages${extra:+;$extra}" | sha256sum | cut -c1-12)
  tarball="$cache/$name-$key.tar"
  # One builder at a time per tarball (two engines' tests may ask at once); the others wait, then use it.
  local lock
  exec {lock}>"$tarball.lock"
  flock "$lock"
  if [[ ! -s "$tarball" ]]; then
    dir=$(mktemp -d)
    echo "== debootstrap $name (from $(mirror))"
    debootstrap --variant=minbase --include="$packages" bookworm "$dir/rootfs" "$(mirror)" >"$dir/log" 2>&1 ||
      { tail -n 30 "$dir/log" >&2; rm -rf "$dir"; exit 1; }
    if [[ -n "$extra" ]]; then
      echo "== $name: $extra (this host's apt, bookworm-security included)"
      security_packages "$dir/rootfs" "$extra" || { rm -rf "$dir"; exit 1; }
      chroot "$dir/rootfs" sh -c "$check" ||
        { echo "$name: '$check' failed in the new rootfs" >&2; rm -rf "$dir"; exit 1; }
    fi
    rm -rf "$dir/rootfs/var/cache/apt/archives/"*.deb "$dir/rootfs/var/lib/apt/lists/"*
    tar --numeric-owner -C "$dir/rootfs" -cf "$tarball.tmp.$$" .
    mv "$tarball.tmp.$$" "$tarball"
    rm -rf "$dir"
  fi
  exec {lock}>&-
  echo "== import $name:bookworm"
  local out  # (podman reports its progress on stderr: shown only when the import fails)
  out=$("$engine" import "$tarball" "$name:bookworm" 2>&1) || { echo "$out" >&2; exit 1; }
}

# The coordinator's image also serves the dashboard (cpp-httplib); the workers' toolchain image does not.
rootfs assay-base "$runtime,libcpp-httplib0.11"
rootfs assay-toolchain "$toolchain" "$rust" \
  "rustc --version | grep -q ' $rust_version\.' && cargo --version | grep -q ' $rust_version\.' && \
   test -d /usr/lib/rustlib/src/rust/library/vendor || { echo 'want Rust $rust_version (is bookworm-security in this host'\''s apt sources, and apt-get update done?):'; rustc --version; exit 1; }"
if [[ $rootfs_only == 1 ]]; then
  echo "images: assay-base:bookworm assay-toolchain:bookworm"
  exit 0
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
for b in coordinator/assay-coordinator worker/assay-worker cli/assay; do
  [[ -x "$bin/$b" ]] || { echo "missing $bin/$b: build first (scripts/run-example.sh or cmake --build $bin)" >&2; exit 1; }
  cp "$bin/$b" "$context/"
done
# The dashboard's page and its three libraries (scripts/install-deps.sh installed them with npm ci).
mkdir -p "$context/web/node_modules"
cp -r web/index.html web/app "$context/web/"
for library in htm uplot ansi_up; do
  [[ -d "web/node_modules/$library" ]] || { echo "missing web/node_modules/$library: run scripts/install-deps.sh" >&2; exit 1; }
  cp -r "web/node_modules/$library" "$context/web/node_modules/"
done
for image in coordinator worker; do
  echo "== build assay-$image:$tag"
  "$engine" build -q -f "deploy/docker/Dockerfile.$image" -t "assay-$image:$tag" "$context" >/dev/null
done
echo "images: assay-coordinator:$tag assay-worker:$tag"
