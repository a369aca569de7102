#!/usr/bin/env bash
# One binary must run on every x86-64: code compiled for AVX2 or AVX-512 may only run after
# the CPUID check. A weak (vague-linkage) function emitted by a per-ISA object file (a
# non-inlined inline helper or template instance outside the ISA's own namespace) may be the
# copy the linker keeps for the whole program, and the scalar path would then execute
# AVX-512 instructions. This fails when any per-ISA object defines such a symbol.
#   scripts/check-isa-objects.sh OBJECT...   (a ';'-separated list is split too)
set -euo pipefail
status=0
checked=0
for list in "$@"; do
  IFS=';' read -r -a objects <<< "$list"
  for object in "${objects[@]}"; do
    case "$object" in
      *_avx2.cc.o | *_avx512.cc.o | *_avx512bf16.cc.o) ;;
      *) continue ;;
    esac
    checked=$((checked + 1))
    # W: weak function; i: GNU indirect function. Both may be resolved to this object's copy.
    leaks=$(nm -C --defined-only "$object" | awk '$2 == "W" || $2 == "i"' |
      grep -v -E 'dfss::kernels::(avx2|avx512|avx512bf16|avx512_bf16)::' || true)
    if [ -n "$leaks" ]; then
      echo "$object: weak functions outside the per-ISA namespace (give them internal linkage" \
        "or move them into the ISA namespace):" >&2
      echo "$leaks" >&2
      status=1
    fi
  done
done
if [ "$checked" -eq 0 ]; then
  echo "check-isa-objects: no per-ISA object files among the arguments" >&2
  exit 1
fi
if [ "$status" -eq 0 ]; then
  echo "check-isa-objects: $checked per-ISA object files, no weak functions outside their namespace"
fi
exit $status
