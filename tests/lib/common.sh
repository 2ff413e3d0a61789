# Sourced by tests/*.sh (after MAE=$1 SRC=$2): PY (Debian's python3 when present: it has torch and numpy), tmp
# (a scratch folder removed on exit) and the ok/bad counters each script reports at its end.
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
ok() { echo "ok   $1"; passes=$((passes + 1)); }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
