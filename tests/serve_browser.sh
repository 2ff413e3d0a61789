#!/usr/bin/env bash
# The page of `mae serve` in a real browser: headless Debian chromium driven by puppeteer-core from npm (in the
# git-ignored test-tools/: tools/setup.sh --test installs it; no browser is downloaded) — load, upload, move the
# slider, new mask, panels and classes shown, nothing fetched from elsewhere, a screenshot. Skipped (77) without
# chromium, node or puppeteer-core.
#   MAE_SERVE_CHECKPOINT / MAE_SERVE_CLASSIFIER / MAE_SERVE_IMAGE: serve these instead of the test's tiny models
#   MAE_SCREENSHOT=PATH: keep the screenshot there (the README's docs/serve.png is one)
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
MODULES="$SRC/test-tools/node_modules"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "chromium not installed ($CHROMIUM): skipped"; exit 77; }
command -v node >/dev/null || { echo "node not installed: skipped"; exit 77; }
[ -d "$MODULES/puppeteer-core" ] ||
  { echo "puppeteer-core not in test-tools/ (tools/setup.sh --test installs it): skipped"; exit 77; }
"$MAE" serve --help >/dev/null 2>&1 || { echo "mae built without serve (-DMAE_SERVE=OFF): skipped"; exit 77; }

if [ -n "${MAE_SERVE_CHECKPOINT:-}" ]; then
  MAE_CK=$MAE_SERVE_CHECKPOINT FT=${MAE_SERVE_CLASSIFIER:-} IMG_A=$MAE_SERVE_IMAGE
else
  source "$SRC/tests/lib/serve_models.sh"
fi
source "$SRC/tests/lib/serve_start.sh"
serve_start --checkpoint "$MAE_CK" ${FT:+--classifier "$FT"} --threads 2
echo "server: $URL"
shot=${MAE_SCREENSHOT:-$tmp/page.png}
CHROMIUM=$CHROMIUM NODE_PATH="$MODULES" timeout 180 node "$SRC/tests/serve_page.js" "$URL" "$IMG_A" "$shot"
rc=$?
[ $rc = 0 ] || { echo "server log:"; tail -20 "$tmp/serve.err"; }
exit $rc
