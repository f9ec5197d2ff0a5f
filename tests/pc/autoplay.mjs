// Whether a page may play a sound with nobody having tapped it, in Chromium started as the kiosk and
// display PCs' unit starts it. Prints `played` or `refused:<error name>`. Used by tests/pc/check.sh.
//
//   node autoplay.mjs URL SOUND COMMAND [ARGS...]
//
// COMMAND ARGS is the browser's command line without the page (tests/pc/cdp.mjs adds it). Chromium
// applies its policies a moment after it starts, so the page is asked a second after it loaded (a display
// plays its first sound at the first call, long after that).
import { open, sleep } from './cdp.mjs';

const [url, sound, ...command] = process.argv.slice(2);
if (!url || !sound || command.length === 0) {
  console.error('usage: node autoplay.mjs URL SOUND COMMAND [ARGS...]');
  process.exit(2);
}
const browser = await open(command, url);
await browser.waitFor("document.readyState === 'complete'", 20000);
await sleep(1000);
console.log(
  await browser.evaluate(
    `new Audio(${JSON.stringify(sound)}).play().then(() => 'played', (e) => 'refused:' + e.name)`,
  ),
);
await browser.close();
process.exit(0);
