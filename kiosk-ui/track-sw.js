// Vuoro phone page's service worker: shows the notices the daemon pushes to this browser ("your turn is
// near", "you are called", "the service closed") and, on a tap, brings the ticket page forward. track.js
// registers it for the scope /kiosk/track.html only, after "Notify this browser". It has no fetch handler:
// the page always loads from the daemon.
//
// A push's payload is JSON {"title": <ticket number>, "body": <notice text>, "kind": "near"|"called"|"closed"};
// anything else is shown as plain text.

const CACHE = 'vuoro-track';
const TICKET = '/kiosk/track-sw-ticket'; // the ticket page's address, put there by track.js
const PAGE = '/kiosk/track.html';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

/** The notification for a push message's data (a PushMessageData, or null). */
function noticeOf(data) {
  let title = 'Vuoro';
  let body = '';
  let kind = '';
  if (data) {
    let d = null;
    try {
      d = data.json();
    } catch (e) {
      d = null;
    }
    if (d && typeof d === 'object' && !Array.isArray(d)) {
      if (d.title !== undefined && d.title !== null && String(d.title)) title = String(d.title);
      body = d.body === undefined || d.body === null ? '' : String(d.body);
      kind = typeof d.kind === 'string' ? d.kind : '';
    } else {
      body = data.text();
    }
  }
  return {
    title,
    options: {
      body,
      // One notification per ticket: "called" replaces "near", and still alerts.
      tag: `vuoro-${title}`,
      renotify: true,
      requireInteraction: kind === 'called',
      data: { kind },
    },
  };
}

self.addEventListener('push', (event) => {
  const n = noticeOf(event.data);
  event.waitUntil(self.registration.showNotification(n.title, n.options));
});

/** The ticket page: an open one focused, else the remembered address opened. */
async function openTicket() {
  const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const open = wins.find((c) => new URL(c.url).pathname === PAGE);
  if (open) return open.focus();
  let url = PAGE;
  try {
    const cache = await caches.open(CACHE);
    const saved = await cache.match(TICKET);
    const text = saved ? await saved.text() : '';
    if (text.startsWith(self.location.origin + PAGE)) url = text;
  } catch (e) {
    /* the page without a ticket says how to find it */
  }
  return self.clients.openWindow(url);
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(openTicket());
});
