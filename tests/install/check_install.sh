#!/usr/bin/env bash
# Install the library from build dir $1 into a temporary prefix, then build the
# consumer project $2 against it twice: with find_package and with pkg-config.
set -euo pipefail
build=$1 consumer=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$consumer" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
libdir=$(ls -d "$work"/prefix/lib*/pkgconfig | head -n1)
PKG_CONFIG_PATH=$libdir g++ "$consumer/main.cpp" -o "$work/consumer_pc" \
  $(PKG_CONFIG_PATH=$libdir pkg-config --cflags --libs multiprocessing)
"$work/consumer_pc"
echo "install_and_consume: OK"
