#!/usr/bin/env bash
# Builds what the device check runs and packs it into .gpu_bundle/ (ignored
# by git), for a GPU machine that has a CUDA driver and runtime but neither
# Bazel nor this project's Debian libraries:
#   .gpu_bundle/bin/  every test tagged "cuda" and the decode benchmark,
#                     built with --config=opt --config=cuda (sm_80, sm_90);
#   .gpu_bundle/lib/  every shared library they load except the C library,
#                     the CUDA driver and CUDA's own libraries (cuBLAS,
#                     cudart, NCCL: hundreds of MB, found on the GPU machine
#                     by tests/gpu/device_check.sh).
# Needs the build tools of scripts/install_deps.sh and the CUDA toolkit at
# /usr/local/cuda. Prints the bundle's size: a device run carries it whole.
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=.gpu_bundle

# The kernel tests first: they are the quickest, and the device check runs
# the programs in this order against a deadline.
mapfile -t targets < <(
  bazel query --noshow_progress 'attr(tags, "cuda", tests(//kernels/...))'
  bazel query --noshow_progress 'attr(tags, "cuda", tests(//engine/...))'
)
targets+=(//engine/backend/cuda:decode_benchmark)
bazel build --config=opt --config=cuda "${targets[@]}"

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
binaries=()
for target in "${targets[@]}"; do
  path=${target#//}
  binaries+=(".bazel/bin/${path/://}")
  cp "${binaries[-1]}" "$bundle/bin/"
  echo "${binaries[-1]##*/}" >>"$bundle/manifest"
done

# Every library the built programs load (ldd there, where their run path
# finds Bazel's own libraries), less the C runtime's, the driver's and
# CUDA's.
system='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libcuda|libcublas|libcublasLt|libcudart|libnccl)\.'
loaded=$(ldd "${binaries[@]}")
if grep -q 'not found' <<<"$loaded"; then
  echo "make_bundle: a library was not found:" >&2
  grep 'not found' <<<"$loaded" >&2
  exit 1
fi
awk '$3 ~ /^\// {print $1, $3}' <<<"$loaded" | sort -u |
  while read -r name path; do
    if [[ ! $name =~ $system ]]; then cp -L "$path" "$bundle/lib/$name"; fi
  done
echo "make_bundle: $(wc -l <"$bundle/manifest") programs, $(du -sh "$bundle" | cut -f1) in $bundle"
