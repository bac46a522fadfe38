#!/usr/bin/env bash
# Installs the Debian packages Assay needs to build, test and run its example.
# Safe to run again: it only installs what is missing.
#   scripts/install-deps.sh            build + tests + example toolchains
#   ASSAY_WITH_BAZEL=0 scripts/...     skip Bazel (used by the REAPI interoperability tests)
#   ASSAY_WITH_BROWSER=0 scripts/...   skip Debian's chromium (used by the dashboard's browser tests)
#   ASSAY_APT_LOCK_TIMEOUT=600         how long to wait, in seconds, while another program holds the
#                                      package manager's lock (on a fresh machine that is often
#                                      unattended-upgrades); then it gives up, naming the holder
#   ASSAY_INSTALL_DEPS_FORCE=1         call apt-get install even when every package is present (it
#                                      installs nothing then; checks that the package manager answers)
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ lld pkg-config ccache git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libfmt-dev librocksdb-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev
  libyaml-cpp-dev libcli11-dev libssl-dev libcurl4-openssl-dev nlohmann-json3-dev prometheus-cpp-dev libre2-dev
  # example firmware and its emulators; the Rust example's toolchain (Debian's offline Rust 1.96 with
  # the standard library's sources, which `-Zbuild-std=core` compiles for the embedded targets)
  gcc-arm-none-eabi gcc-riscv64-unknown-elf qemu-system-arm qemu-system-misc
  rustc-web cargo-web rust-web-src libstd-rust-web-dev
  # tests (clang and its runtimes for the libFuzzer targets)
  procps coreutils openssl clang libclang-rt-14-dev libxml2-utils
  # workers: the sandbox executor
  bubblewrap
  # deploy/: container images built offline, the compose file, the private daemon its test starts
  docker.io docker-compose debootstrap iproute2 util-linux busybox-static
  # the Podman executor (runc: crun refuses this kind of host's hybrid cgroups)
  podman runc conmon containernetworking-plugins
  # the S3 tests' server: a one-node Ceph cluster (monitor, one memstore OSD) with its S3 gateway
  ceph-mon ceph-osd radosgw ceph-common
  # the web dashboard: npm installs its pinned libraries (web/package-lock.json); Node runs its browser tests
  nodejs
)
# Debian's npm, unless npm is there already (NodeSource's nodejs brings its own and conflicts with Debian's).
command -v npm >/dev/null || packages+=(npm)
if [[ "${ASSAY_WITH_BAZEL:-1}" == 1 ]]; then
  packages+=(bazel-bootstrap bazel-rules-java)
fi
if [[ "${ASSAY_WITH_BROWSER:-1}" == 1 ]]; then
  packages+=(chromium)  # headless, for tests/browser/
fi

# The dashboard's libraries (htm with Preact, uPlot, ansi_up; playwright-core for the tests), pinned by
# web/package-lock.json and served from web/node_modules/: `npm ci` when node_modules is missing or was
# installed from another lock file (a stamp records the lock's hash). Never at build or test time.
web_modules() {
  local web lock stamp sum
  web="$(cd "$(dirname "$0")/.." && pwd)/web"
  lock="$web/package-lock.json"
  stamp="$web/node_modules/.assay-package-lock.sha256"
  [[ -f "$lock" ]] || return 0
  sum=$(sha256sum "$lock" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
    echo "install-deps: web/node_modules matches web/package-lock.json"
    return 0
  fi
  echo "install-deps: npm ci in web/ (the dashboard's libraries, as web/package-lock.json pins them)"
  npm ci --prefix "$web" --ignore-scripts --no-audit --no-fund
  echo "$sum" >"$stamp"
}

# One dpkg-query for every package (one call each took 9 s for 43 packages).
declare -A installed=()
while read -r name state; do
  [[ "$state" == "install ok installed" ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
  [[ -n "${installed[$p]:-}" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 && "${ASSAY_INSTALL_DEPS_FORCE:-0}" != 1 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  web_modules
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
lock_timeout=${ASSAY_APT_LOCK_TIMEOUT:-600}
deadline=$((SECONDS + lock_timeout))

# apt-get, waiting for the package manager's locks up to ASSAY_APT_LOCK_TIMEOUT in all. apt-get can wait
# for dpkg's lock itself (DPkg::Lock::Timeout) but not for the package lists' lock (`apt-get update` fails at
# once while another apt holds it), so a run that failed on a lock is tried again, saying once what it waits
# for, until the deadline; any other failure ends the script with apt's own message.
lock_errors='^E: (Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock)'
apt_get() {
  local log status waited=0
  log=$(mktemp)
  while true; do
    set +e
    "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=0 "$@" 2>&1 | tee "$log" | grep -Ev "$lock_errors"
    status=${PIPESTATUS[0]}
    set -e
    if [[ $status -eq 0 ]]; then
      ((waited)) && echo "install-deps: the package manager is free again; apt-get $1 done"
      rm -f "$log"; return 0
    fi
    if ! grep -Eq "$lock_errors" "$log"; then rm -f "$log"; return "$status"; fi
    if ((SECONDS >= deadline)); then
      grep -E "$lock_errors" "$log" >&2
      echo "install-deps: gave up after ${lock_timeout} s waiting for the package manager's lock" \
           "(another program holds it; raise ASSAY_APT_LOCK_TIMEOUT or let it finish)" >&2
      rm -f "$log"; return "$status"
    fi
    if ((!waited)); then
      echo "install-deps: waiting up to ${lock_timeout} s for the package manager: $(grep -Em1 "$lock_errors" "$log" | cut -c4-)"
      waited=1
    fi
    sleep 2  # another program holds the lock; apt offers nothing to wait on, so ask again
  done
}

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present; asking apt-get anyway (ASSAY_INSTALL_DEPS_FORCE=1)"
  apt_get install -y -qq --no-install-recommends --no-upgrade "${packages[@]}"
  web_modules
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${missing[@]}"
web_modules
echo "install-deps: done"
