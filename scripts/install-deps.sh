#!/usr/bin/env bash
# Installs everything dfss needs to build, test and benchmark, from Debian packages.
set -euo pipefail
packages=(cmake g++ make ninja-build libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  nlohmann-json3-dev libdnnl-dev ocl-icd-opencl-dev libomp-dev clang python3 python3-numpy python3-matplotlib)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
