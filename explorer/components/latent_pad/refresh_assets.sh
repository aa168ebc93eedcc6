#!/bin/sh
# Refresh the vendored TensorFlow.js files in frontend/vendor/ from the npm registry (needs npm; run from anywhere).
# Only what the pad uses: the core ops, the CPU backend (fallback) and the WASM backend with its SIMD binary.
set -eu
VERSION=${1:-4.22.0}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
for pkg in tfjs-core tfjs-backend-cpu tfjs-backend-wasm; do
  npm pack --silent "@tensorflow/$pkg@$VERSION" >/dev/null
  mkdir "$pkg" && tar xzf "tensorflow-$pkg-$VERSION.tgz" -C "$pkg"
done
cp tfjs-core/package/dist/tf-core.es2017.min.js \
   tfjs-backend-cpu/package/dist/tf-backend-cpu.es2017.min.js \
   tfjs-backend-wasm/package/dist/tf-backend-wasm.es2017.min.js \
   tfjs-backend-wasm/package/dist/tfjs-backend-wasm-simd.wasm "$HERE/frontend/vendor/"
echo "$VERSION" > "$HERE/frontend/vendor/VERSION"
echo "vendored @tensorflow/tfjs-{core,backend-cpu,backend-wasm}@$VERSION into $HERE/frontend/vendor"
