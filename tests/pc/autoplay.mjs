// Starts Chromium with a page on its command line, as the kiosk and display PCs' unit does, and asks over
// the DevTools pipe (no packages needed) whether that page may play a sound with nobody having tapped it.
// Prints `played` or `refused:<error name>`. Used by tests/pc/check.sh.
//
//   node autoplay.mjs URL SOUND COMMAND [ARGS...]
//
// COMMAND ARGS is the browser's command line without the page; --remote-debugging-pipe and URL are added.
// Chromium applies its policies a moment after it starts, so the page is asked a second after it loaded
// (a display plays its first sound at the first call, long after that).
import { spawn } from 'node:child_process';

const [url, sound, ...command] = process.argv.slice(2);
if (!url || !sound || command.length === 0) {
  console.error('usage: node autoplay.mjs URL SOUND COMMAND [ARGS...]');
  process.exit(2);
}
const child = spawn(command[0], [...command.slice(1), '--remote-debugging-pipe', url], {
  stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'],
});
const deadline = setTimeout(() => {
  console.error('autoplay.mjs: no answer from Chromium within 45 s');
  child.kill('SIGKILL');
  process.exit(3);
}, 45000);
child.on('exit', (code) => {
  console.error(`autoplay.mjs: Chromium exited (${code}) before answering`);
  process.exit(3);
});

// The pipe carries JSON messages, each ended by a NUL byte (fd 3 to Chromium, fd 4 from it).
const toBrowser = child.stdio[3];
let buffer = '';
let lastId = 0;
const pending = new Map();
child.stdio[4].on('data', (chunk) => {
  buffer += chunk.toString();
  for (let end = buffer.indexOf('\0'); end >= 0; end = buffer.indexOf('\0')) {
    const message = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    if (message.id && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  }
});
function send(method, params = {}, sessionId = undefined) {
  return new Promise((resolve, reject) => {
    const id = ++lastId;
    pending.set(id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result)));
    toBrowser.write(JSON.stringify({ id, method, params, sessionId }) + '\0');
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let page = null;
for (let i = 0; i < 200 && !page; i++) {
  const { targetInfos } = await send('Target.getTargets');
  page = targetInfos.find((t) => t.type === 'page' && t.url.startsWith(url));
  if (!page) await sleep(100);
}
if (!page) {
  console.error(`autoplay.mjs: Chromium never opened ${url}`);
  process.exit(3);
}
const { sessionId } = await send('Target.attachToTarget', { targetId: page.targetId, flatten: true });
for (let i = 0; i < 200; i++) {
  const { result } = await send('Runtime.evaluate', { expression: 'document.readyState' }, sessionId);
  if (result.value === 'complete') break;
  await sleep(100);
}
await sleep(1000);
const { result } = await send(
  'Runtime.evaluate',
  {
    expression: `new Audio(${JSON.stringify(sound)}).play().then(() => 'played', (e) => 'refused:' + e.name)`,
    awaitPromise: true,
  },
  sessionId,
);
console.log(result.value);
clearTimeout(deadline);
// Chromium closes on SIGTERM; waiting for it (at most 10 s) lets it finish writing its profile first.
child.removeAllListeners('exit');
const exited = new Promise((r) => child.once('exit', r));
child.kill();
await Promise.race([exited, sleep(10000)]);
process.exit(0);
