#!/usr/bin/env bash
# Includes point only down the layers (tools/check_includes.sh; docs/architecture.md §1). The checker itself is
# checked on a small tree with one include that points up.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
"$SRC/tools/check_includes.sh" "$SRC/src" >"$tmp/out" 2>&1 && ok "$(cat "$tmp/out")" || bad "includes that point up:
$(cat "$tmp/out")"
mkdir -p "$tmp/src/io" "$tmp/src/model" "$tmp/src/core"
printf '#include "core/error.h"\n' >"$tmp/src/io/ok.h"
printf '#pragma once\n#include "model/config.h"\n' >"$tmp/src/io/up.h"
printf '#include "io/ok.h"\n' >"$tmp/src/model/config.h"
if "$SRC/tools/check_includes.sh" "$tmp/src" >"$tmp/out2" 2>&1; then bad "the checker missed io/up.h → model/config.h"
elif grep -q "^io/up.h:2: io includes model/config.h" "$tmp/out2" && [ "$(wc -l <"$tmp/out2")" = 1 ]; then
  ok "the checker names the include that points up: $(cat "$tmp/out2")"
else bad "checker output: $(cat "$tmp/out2")"; fi
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
