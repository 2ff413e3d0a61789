#!/usr/bin/env bash
# Copies what our build needs from THIS Debian machine into gpu_deps/ (git-ignored), for a GPU machine that has
# nvcc, CMake, ninja and a C++ compiler but no apt and no internet (see tools/gpu_check.sh). Configure there with
#   cmake -S . -B build-gpu -G Ninja -DMAE_DEPS_PREFIX=gpu_deps
# What goes in:
#   headers + CMake configs: nlohmann-json, CLI11 (header-only)
#   headers + shared libs:   OpenBLAS (OpenMP build; + libgfortran, libquadmath), libpng16, libjpeg, zlib
#   sources:                 GoogleTest (built there with the local compiler: no prebuilt C++ ABI to match)
# The shared libraries are C/Fortran libraries of Debian 12 (glibc 2.36); gpu_check.sh puts gpu_deps/lib on
# LD_LIBRARY_PATH. OpenMP (libgomp) comes with the GPU machine's own compiler.
# Usage: tools/gpu_bundle.sh [dest]   (default: gpu_deps in the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/gpu_deps}
arch=x86_64-linux-gnu
rm -rf "$dest"
mkdir -p "$dest"/{include/openblas,lib,share/cmake,src}

# No symbolic links in the bundle (the copy to the GPU machine may not keep them): plain files under each name.
copy() { cp -rL "$@"; }
# copy_lib DIR SONAME [DEVNAME]: the library under its run-time name, and under the link-time name if given
copy_lib() {
  cp -L "$1/$2" "$dest/lib/$2"
  if [ -n "${3:-}" ]; then cp -L "$1/$2" "$dest/lib/$3"; fi
}

# header-only libraries with their CMake package configs (relative _IMPORT_PREFIX: they relocate)
copy -r /usr/include/nlohmann "$dest/include/"
copy -r /usr/share/cmake/nlohmann_json "$dest/share/cmake/"
copy -r /usr/include/CLI "$dest/include/"
copy -r /usr/share/cmake/CLI11 "$dest/share/cmake/"

# OpenBLAS, OpenMP build (what CMakeLists.txt expects: lib/libopenblas.so, include/openblas/cblas.h)
copy /usr/include/$arch/openblas-openmp/*.h "$dest/include/openblas/"
# (36 MB: one copy only, under its soname; CMakeLists.txt also looks for libopenblas.so.0 by that name)
copy_lib /usr/lib/$arch/openblas-openmp libopenblas.so.0
copy_lib /usr/lib/$arch libgfortran.so.5
copy_lib /usr/lib/$arch libquadmath.so.0

# libpng16, libjpeg(-turbo), zlib: headers and shared libraries
cp -L /usr/include/libpng16/png.h /usr/include/libpng16/pngconf.h /usr/include/libpng16/pnglibconf.h "$dest/include/"
copy_lib /usr/lib/$arch libpng16.so.16 libpng16.so
cp -L /usr/include/jpeglib.h /usr/include/jmorecfg.h /usr/include/jerror.h /usr/include/$arch/jconfig.h "$dest/include/"
copy_lib /usr/lib/$arch libjpeg.so.62 libjpeg.so
cp -L /usr/include/zlib.h /usr/include/zconf.h "$dest/include/"
copy_lib /usr/lib/$arch libz.so.1 libz.so

# GoogleTest sources (Debian's googletest package)
copy -r /usr/src/googletest "$dest/src/googletest"

links=$(find "$dest" -type l | wc -l)
[ "$links" = 0 ] || { echo "gpu_bundle: $links symbolic links left in $dest" >&2; exit 1; }
du -sh "$dest"
echo "bundle ready: $dest  (configure with -DMAE_DEPS_PREFIX=$(realpath --relative-to="$root" "$dest"))"
