#!/usr/bin/env bash
# Includes point only down the layers (docs/architecture.md §1):
#   core ← io, data, dist ← ops ← model ← eval ← train ← api ← serve ← cli
# (include/mae/mae.h, the public API header, is outside src/: any layer from api up may include it.)
# A file may include headers of its own layer and of the layers before it. Prints every include that points up
# (file:line: layer → layer) and exits 1 if there is any. Usage: tools/check_includes.sh [SRC_DIR]
set -euo pipefail
src=${1:-"$(dirname "$0")/../src"}
rank() {
  case $1 in
    core) echo 0 ;; io | data | dist) echo 1 ;; ops) echo 2 ;; model) echo 3 ;; eval) echo 4 ;; train) echo 5 ;;
    api) echo 6 ;; serve) echo 7 ;; cli) echo 8 ;; *) echo -1 ;;
  esac
}
bad=0 n=0
while IFS= read -r hit; do
  file=${hit%%:*} rest=${hit#*:} line=${rest%%:*}
  inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$rest")
  from=${file#"$src"/} from=${from%%/*} to=${inc%%/*}
  rf=$(rank "$from") rt=$(rank "$to")
  n=$((n + 1))
  [ "$rt" = -1 ] && continue  # a file of the same folder named without its layer, or a system-style header
  if [ "$rf" = -1 ]; then echo "${file#"$src"/}:$line: file outside the known layers"; bad=1; continue; fi
  # io, data and dist share a rank but do not include each other
  if [ "$rt" -gt "$rf" ] || { [ "$rt" = 1 ] && [ "$rf" = 1 ] && [ "$from" != "$to" ]; }; then
    echo "${file#"$src"/}:$line: $from includes $inc ($to is not below $from)"
    bad=1
  fi
done < <(grep -rnE '^\s*#\s*include "' "$src" --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' --include='*.inc')
[ $bad = 0 ] && echo "check_includes: $n includes, all point down the layers"
exit $bad
