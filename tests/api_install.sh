#!/usr/bin/env bash
# The C++ API as a user gets it: `cmake --install` of this build into a fresh prefix (the mae command, libmae.so,
# include/mae/mae.h, lib/pkgconfig/mae.pc), then examples/ built against that prefix alone — by its CMakeLists.txt
# (pkg-config) and by a plain g++ line — and run: it prints an MAE's features and a classifier's classes, the same
# numbers `mae serve`'s /embed gives (the one API underneath). libmae.so exports mae::api and nothing else.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
BUILD=$(dirname "$MAE")
command -v pkg-config >/dev/null || { echo "pkg-config not installed: skipped"; exit 77; }
source "$SRC/tests/lib/serve_models.sh"

cmake --install "$BUILD" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
pc=$(find "$tmp/prefix" -name mae.pc)
hdr="$tmp/prefix/include/mae/mae.h"
lib=$(find "$tmp/prefix" -name 'libmae.so*' -type f | head -1)
[ -f "$hdr" ] && [ -n "$pc" ] && [ -n "$lib" ] && [ -x "$tmp/prefix/bin/mae" ] &&
  ok "installed: bin/mae, ${lib#"$tmp/prefix/"}, include/mae/mae.h, ${pc#"$tmp/prefix/"}" || bad "install: $(ls -R "$tmp/prefix")"
total=$(nm -D --defined-only "$lib" | c++filt | grep -c " mae::")
outside=$(nm -D --defined-only "$lib" | c++filt | grep ' mae::' | grep -vc ' mae::api::')
[ "$total" -gt 0 ] && [ "$outside" = 0 ] && ok "libmae.so exports $total mae::api symbols and no internal one" ||
  bad "libmae.so exports $outside symbols outside mae::api"

export PKG_CONFIG_PATH=$(dirname "$pc")
cmake -S "$SRC/examples" -B "$tmp/example" -G Ninja >"$tmp/example.log" 2>&1 &&
  cmake --build "$tmp/example" >>"$tmp/example.log" 2>&1 && ok "examples/ built with CMake + pkg-config" ||
  { bad "examples/ build"; tail -20 "$tmp/example.log"; }
g++ -std=c++17 "$SRC/examples/embed_image.cpp" $(pkg-config --cflags --libs mae) -o "$tmp/embed_plain" \
  2>"$tmp/gpp.log" && ok "examples/embed_image.cpp built with g++ \$(pkg-config --cflags --libs mae)" ||
  { bad "g++ build"; cat "$tmp/gpp.log"; }

out=$(OMP_NUM_THREADS=2 "$tmp/example/embed_image" "$MAE_CK" "$IMG_A" --mean 2>&1)
echo "$out"
grep -qE "^features \(mean of patches, 128\): -?[0-9.]+" <<<"$out" && ok "the example prints an MAE's features" ||
  bad "example: $out"
out2=$(OMP_NUM_THREADS=2 "$tmp/embed_plain" "$FT" "$IMG_B" 2>&1)
echo "$out2"
grep -q "^class blob_bottom_right: \|^class blob_top_left: " <<<"$out2" && ok "the example prints a classifier's classes" ||
  bad "example on the classifier: $out2"
"$tmp/embed_plain" "$MAE_CK" "$SRC/README.md" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "not a JPEG or PNG" "$tmp/err" && ok "a non-image: Error(bad_input), exit 1" || bad "non-image: exit $rc $(cat "$tmp/err")"

# The same features through mae serve (the one API underneath): the first 8 printed values agree.
source "$SRC/tests/lib/serve_start.sh"
serve_start --checkpoint "$MAE_CK" --threads 2
served=$($PY -c "
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
c.request('POST', '/embed?pool=mean', open(sys.argv[2], 'rb').read(), {'Content-Type': 'image/png'})
print(' '.join('%.5f' % v for v in json.loads(c.getresponse().read())['features'][0][:8]))" "$URL" "$IMG_A")
printed=$(sed -n 's/^features (mean of patches, 128): \(.*\) \.\.\.$/\1/p' <<<"$out")
[ -n "$printed" ] && [ "$served" = "$printed" ] && ok "/embed gives the example's features" ||
  bad "/embed: '$served' vs example '$printed'"

echo "api_install: $passes passed, $fails failed"
[ $fails = 0 ]
