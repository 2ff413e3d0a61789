// The page of `mae serve` in headless Chromium (puppeteer-core driving Debian's /usr/bin/chromium; nothing is
// downloaded): load it, upload an image, move the mask-ratio slider, draw a new mask, wait for the panels (and the
// classes when a classifier is loaded), check that every request stayed on the server, save a screenshot.
//   node serve_page.js URL IMAGE SCREENSHOT.png
const puppeteer = require("puppeteer-core");
const [url, image, shot] = process.argv.slice(2);

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  let failed = false;
  const ok = (name) => console.log("ok   " + name);
  const bad = (name) => { console.log("FAIL " + name); failed = true; };
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 760 });
    const origin = new URL(url).origin;
    const foreign = [];
    page.on("request", (r) => {
      const u = r.url();
      if (!u.startsWith(origin) && !u.startsWith("data:")) foreign.push(u);
    });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url, { waitUntil: "load", timeout: 30000 });
    await page.waitForSelector("body[data-ready='1']", { timeout: 30000 });
    ok("page loaded, /info read: " + (await page.$eval("#model", (e) => e.textContent)));

    const input = await page.$("#file");
    await input.uploadFile(image);
    await page.waitForSelector("body[data-renders='1']", { timeout: 60000 });
    const size = await page.$eval("#grid", (e) => [e.naturalWidth, e.naturalHeight]);
    size[0] > 0 && size[1] > 0 ? ok(`panels shown after the upload (${size[0]}×${size[1]} PNG)`) : bad("no panels");

    // the slider to 40 %: the page asks for a new reconstruction and shows its mask count
    await page.$eval("#ratio", (e) => { e.value = "0.4"; e.dispatchEvent(new Event("input", { bubbles: true })); });
    await page.waitForFunction(() => Number(document.body.dataset.renders) >= 2 && document.body.dataset.state === "idle",
                               { timeout: 60000 });
    const stats = await page.$eval("#stats", (e) => e.textContent);
    const m = /^(\d+) of (\d+) patches removed/.exec(stats);  // len_keep = int(L · (1 − 0.4))
    m && Number(m[1]) === Number(m[2]) - Math.floor(Number(m[2]) * (1 - 0.4)) ? ok("slider at 40 %: " + stats)
                                                                              : bad("slider: stats say " + stats);

    await page.click("#reseed");
    await page.waitForFunction(() => Number(document.body.dataset.renders) >= 3 && document.body.dataset.state === "idle",
                               { timeout: 60000 });
    ok("new mask drawn (seed " + (await page.$eval("#seedval", (e) => e.textContent)) + ")");

    const hasClassifier = await page.evaluate(async () => (await (await fetch("/info")).json()).can.classify);
    if (hasClassifier) {
      await page.waitForSelector("body[data-classified='1']", { timeout: 60000 });
      const rows = await page.$$eval("#classtable tr", (trs) => trs.map((t) => t.innerText.replace(/\s+/g, " ")));
      rows.length > 0 ? ok("top classes shown: " + rows.join(" | ")) : bad("no classes shown");
    }
    const status = await page.$eval("#status", (e) => e.textContent);
    status === "" ? ok("no error shown") : bad("the page shows an error: " + status);
    errors.length === 0 ? ok("no script errors") : bad("script errors: " + errors.join("; "));
    foreign.length === 0 ? ok("every request went to the server (works offline)") : bad("foreign requests: " + foreign);
    await page.screenshot({ path: shot, fullPage: true });
    ok("screenshot " + shot);
  } catch (e) {
    bad(String(e));
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
})();
