// Chromium driven over its DevTools pipe, with no packages: the browser is started with a page on its
// command line, as the kiosk and display PCs' unit starts it, and that page is then read and driven.
// Used by tests/pc/autoplay.mjs and tests/pc/enrol.mjs.
import { spawn } from 'node:child_process';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts COMMAND (the browser's command line without the page), adding --remote-debugging-pipe and URL,
 * and attaches to the page. Every wait is bounded; a browser that never answers is killed after 60 s.
 */
export async function open(command, url) {
  const child = spawn(command[0], [...command.slice(1), '--remote-debugging-pipe', url], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'],
  });
  const deadline = setTimeout(() => {
    console.error('cdp.mjs: no answer from Chromium within 60 s');
    child.kill('SIGKILL');
    process.exit(3);
  }, 60000);
  const died = (code) => {
    console.error(`cdp.mjs: Chromium exited (${code}) before it was closed`);
    process.exit(3);
  };
  child.on('exit', died);

  // JSON messages, each ended by a NUL byte (fd 3 to Chromium, fd 4 from it).
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
  const send = (method, params = {}, sessionId = undefined) =>
    new Promise((resolve, reject) => {
      const id = ++lastId;
      pending.set(id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result)));
      toBrowser.write(JSON.stringify({ id, method, params, sessionId }) + '\0');
    });

  let page = null;
  for (let i = 0; i < 200 && !page; i++) {
    const { targetInfos } = await send('Target.getTargets');
    page = targetInfos.find((t) => t.type === 'page' && t.url.startsWith(url));
    if (!page) await sleep(100);
  }
  if (!page) throw new Error(`Chromium never opened ${url}`);
  const { sessionId } = await send('Target.attachToTarget', { targetId: page.targetId, flatten: true });

  /** The value of a JavaScript expression in the page (awaited when it is a promise). */
  const evaluate = async (expression) => {
    const { result, exceptionDetails } = await send(
      'Runtime.evaluate',
      { expression, awaitPromise: true, returnByValue: true },
      sessionId,
    );
    if (exceptionDetails) throw new Error(`${expression}: ${exceptionDetails.text}`);
    return result.value;
  };
  /** Waits (at most MS) until the expression is truthy; returns its last value. */
  const waitFor = async (expression, ms) => {
    let value;
    for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
      value = await evaluate(expression).catch(() => undefined);
      if (value) return value;
    }
    return value;
  };
  /** Closes the browser as systemd stops it (SIGTERM) and waits (at most 10 s) until it has exited, so
   * that its profile is written. */
  const close = async () => {
    clearTimeout(deadline);
    child.off('exit', died);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10000)]);
  };
  return { evaluate, waitFor, close };
}
