#!/usr/bin/env bash
# Installs everything dfss needs to build, test and benchmark, from Debian packages.
set -euo pipefail
packages=(cmake g++ make ninja-build python3-dev libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  nlohmann-json3-dev libdnnl-dev ocl-icd-opencl-dev libomp-dev clang python3 python3-numpy python3-matplotlib)
bash "$(dirname "$0")/apt-install.sh" "${packages[@]}"
