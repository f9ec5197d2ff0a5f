// The kiosk page in Chromium started as the kiosk PC's unit starts it: which screen it comes to, and, with
// a token, staff's enrolment on that screen. Prints the screen the kiosk shows at the end
// (`window.vuoroKiosk.S.screen`: `enrol`, `services`, ...). Used by tests/pc/check.sh.
//
//   node enrol.mjs URL TOKEN|- COMMAND [ARGS...]
//
// With a TOKEN the kiosk must ask for it first; it is typed into the enrolment form and saved. With `-`
// nothing is typed. The browser is then closed as systemd stops it (SIGTERM).
import { open, sleep } from './cdp.mjs';

const [url, token, ...command] = process.argv.slice(2);
if (!url || !token || command.length === 0) {
  console.error('usage: node enrol.mjs URL TOKEN|- COMMAND [ARGS...]');
  process.exit(2);
}
const screen = 'window.vuoroKiosk && window.vuoroKiosk.S.screen';
const settled = `(${screen}) && !['boot', 'offline'].includes(${screen}) && (${screen})`;
const browser = await open(command, url);
let shown = await browser.waitFor(settled, 20000);
if (token !== '-') {
  if (shown !== 'enrol') {
    console.error(`enrol.mjs: the kiosk shows '${shown}', not its enrolment screen`);
    process.exit(1);
  }
  await browser.evaluate(`(() => {
    document.querySelector('#enrol-token').value = ${JSON.stringify(token)};
    document.querySelector('.enrol').requestSubmit();
  })()`);
  shown = await browser.waitFor(`(${settled}) !== 'enrol' && (${settled})`, 20000);
}
await sleep(500);
console.log(shown || (await browser.evaluate(screen)));
await browser.close();
process.exit(0);
