// Vuoro phone page: the one feedback question after a finished visit ("How did it go?", five faces with
// words, an optional comment). One answer per visit: the daemon refuses a second one (409), and this page
// remembers that it sent one. Anonymous: the ticket's token is the only key. Hooked to track.js by one
// event (`vuoro:track-render`) after each render; the ticket, its language and the strings are track.js's.
import { api } from '/shared/vuoro.js';

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get('t');
const SENT_KEY = token ? `vuoro.track.${token.slice(0, 8)}.feedback` : null;
/** The longest comment the daemon keeps (characters). */
export const COMMENT_MAX = 500;
/** The five answers, worst first: the mouth of each face (an SVG path on a 24 x 24 box). */
const FACES = [
  { rating: 1, mouth: 'M7 17 Q12 12 17 17' },
  { rating: 2, mouth: 'M8 16.5 Q12 14 16 16.5' },
  { rating: 3, mouth: 'M8 15.5 L16 15.5' },
  { rating: 4, mouth: 'M8 14.5 Q12 17 16 14.5' },
  { rating: 5, mouth: 'M7 14 Q12 19.5 17 14' },
];

const F = {
  built: false,
  rating: null,
  status: 'asking', // asking | sending | sent | failed
};

function t(key, vars) {
  const S = window.vuoroTrack && window.vuoroTrack.S;
  const pickFrom = (lang) => S && S.strings[lang] && S.strings[lang][key];
  let s = pickFrom(S && S.lang) ?? pickFrom('en') ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

function face(mouth) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('fb-face');
  const parts = [
    ['circle', { cx: 12, cy: 12, r: 10.5 }],
    ['circle', { cx: 8.5, cy: 9.5, r: 1.3, class: 'fb-eye' }],
    ['circle', { cx: 15.5, cy: 9.5, r: 1.3, class: 'fb-eye' }],
    ['path', { d: mouth }],
  ];
  for (const [tag, attrs] of parts) {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.append(el);
  }
  return svg;
}

function build() {
  const form = $('feedback-form');
  const group = $('fb-faces');
  for (const f of FACES) {
    const id = `fb-r${f.rating}`;
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'rating';
    input.value = String(f.rating);
    input.id = id;
    input.className = 'fb-radio';
    input.addEventListener('change', () => {
      F.rating = f.rating;
      render();
    });
    const label = document.createElement('label');
    label.htmlFor = id;
    label.className = 'fb-choice';
    label.dataset.rating = String(f.rating);
    const text = document.createElement('span');
    text.className = 'fb-word';
    text.id = `fb-w${f.rating}`;
    label.append(face(f.mouth), text);
    group.append(input, label);
  }
  $('fb-comment').maxLength = COMMENT_MAX;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });
  F.built = true;
}

async function send() {
  if (!F.rating || F.status === 'sending') return;
  F.status = 'sending';
  render();
  const comment = $('fb-comment').value.trim();
  try {
    await api(`/api/v1/tickets/${encodeURIComponent(token)}/feedback`, {
      method: 'POST',
      body: comment ? { rating: F.rating, comment } : { rating: F.rating },
    });
    F.status = 'sent';
  } catch (e) {
    // Answered already (another tab, or the page was reloaded): thanked all the same.
    F.status = e.status === 409 && e.code === 'feedback_given' ? 'sent' : 'failed';
  }
  if (F.status === 'sent' && SENT_KEY) localStorage.setItem(SENT_KEY, '1');
  render();
  if (F.status === 'sent') $('fb-thanks').focus();
}

export function render() {
  const S = window.vuoroTrack && window.vuoroTrack.S;
  const section = $('feedback');
  if (!section) return;
  const finished = !!(S && S.ticket && S.ticket.state === 'finished');
  section.hidden = !finished;
  if (!finished) return;
  if (!F.built) build();
  if (SENT_KEY && localStorage.getItem(SENT_KEY)) F.status = 'sent';
  const sent = F.status === 'sent';
  $('fb-title').textContent = t('feedback.title');
  $('fb-question').textContent = t('feedback.question');
  for (const f of FACES) $(`fb-w${f.rating}`).textContent = t(`feedback.rating.${f.rating}`);
  $('fb-comment-label').textContent = t('feedback.comment');
  $('fb-comment-hint').textContent = t('feedback.comment_hint', { max: COMMENT_MAX });
  $('fb-send').textContent = F.status === 'sending' ? t('feedback.sending') : t('feedback.send');
  $('fb-send').disabled = !F.rating || F.status === 'sending';
  $('fb-anonymous').textContent = t('feedback.anonymous');
  $('feedback-form').hidden = sent;
  $('fb-error').hidden = F.status !== 'failed';
  $('fb-error').textContent = F.status === 'failed' ? t('feedback.failed') : '';
  $('fb-thanks').hidden = !sent;
  $('fb-thanks').textContent = sent ? t('feedback.thanks') : '';
}

document.addEventListener('vuoro:track-render', render);
window.vuoroFeedback = { F, render };
