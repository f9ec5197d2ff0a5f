// Inline SVG icons for the kiosk and the phone page: drawn here, no external files. Each is a 48 x 48
// line drawing in currentColor, so it follows high-contrast mode. Icons are decoration: the text next to
// them carries the meaning, so they are hidden from assistive technology.

const P = {
  // Services (the `icon` names of the config)
  benefits: '<circle cx="24" cy="24" r="17"/><path d="M30 16.5a9 9 0 1 0 0 15M13 21.5h13M13 26.5h13"/>',
  family: '<circle cx="15" cy="11" r="4.5"/><circle cx="33" cy="11" r="4.5"/><circle cx="24" cy="26" r="3.5"/><path d="M8 42V26a7 7 0 0 1 14 0M26 26a7 7 0 0 1 14 0v16M19 42v-6a5 5 0 0 1 10 0v6"/>',
  calendar: '<rect x="6" y="10" width="36" height="32" rx="3"/><path d="M6 19h36M15 5v9M33 5v9M15 27h5M28 27h5M15 34h5"/>',
  info: '<circle cx="24" cy="24" r="18"/><path d="M24 21v13M24 14v1"/>',
  home: '<path d="M6 23 24 8l18 15M11 19v22h26V19M20 41V29h8v12"/>',
  car: '<path d="M7 33v-8l5-10h24l5 10v8zM7 25h34M5 33h38"/><circle cx="14" cy="36" r="3.5"/><circle cx="34" cy="36" r="3.5"/>',
  child: '<circle cx="24" cy="11" r="6"/><path d="M14 22h20M24 19v12M24 31l-7 11M24 31l7 11"/>',
  maternity: '<circle cx="22" cy="9" r="5"/><path d="M22 16c-5 0-7 5-7 11 0 4 3 6 6 6v9M22 16c3 0 5 2 5 5 5 1 7 5 6 9-1 3-4 4-7 3v9"/>',
  health: '<path d="M24 41S7 30 7 18a9 9 0 0 1 17-4 9 9 0 0 1 17 4c0 12-17 23-17 23z"/><path d="M24 20v10M19 25h10"/>',
  lab: '<path d="M19 5h10M21 5v14L10 38a3 3 0 0 0 3 4h22a3 3 0 0 0 3-4L27 19V5M15 30h18"/>',
  xray: '<rect x="7" y="6" width="34" height="36" rx="3"/><path d="M24 12v24M17 16h14M16 22h16M17 28h14M19 34h10"/>',
  advice: '<path d="M8 9h32v22H22l-9 8v-8H8z"/><path d="M24 14v12M18 20h12"/>',
  book: '<path d="M24 12c-5-4-12-4-18-2v29c6-2 13-2 18 2 5-4 12-4 18-2V10c-6-2-13-2-18 2zM24 12v29"/>',
  computer: '<rect x="6" y="8" width="36" height="24" rx="2"/><path d="M18 40h12M24 32v8"/>',
  youth: '<circle cx="24" cy="24" r="17"/><path d="M24 7a26 26 0 0 1 0 34M24 7a26 26 0 0 0 0 34M7 24h34"/>',
  culture: '<path d="M18 36V10l20-4v26"/><circle cx="13" cy="36" r="5"/><circle cx="33" cy="32" r="5"/>',
  ticket: '<path d="M6 14h36v7a3 3 0 0 0 0 6v7H6v-7a3 3 0 0 0 0-6z"/><path d="M30 14v20" stroke-dasharray="3 3"/>',
  // Controls
  globe: '<circle cx="24" cy="24" r="18"/><path d="M6 24h36M24 6c6 6 6 30 0 36M24 6c-6 6-6 30 0 36M9 14h30M9 34h30"/>',
  text: '<path d="M6 38 15 12l9 26M9 29h12M28 38l7-20 7 20M30 32h10"/>',
  contrast: '<circle cx="24" cy="24" r="17"/><path d="M24 7a17 17 0 0 1 0 34z" fill="currentColor"/>',
  staff: '<circle cx="20" cy="12" r="6"/><path d="M8 42V30a12 12 0 0 1 20-9M36 22v10M36 37v1"/>',
  // "Ask staff" (the bar): a raised hand, as when calling someone over.
  hand: '<path d="M17 27V11a3 3 0 0 1 6 0v12M23 22V7a3 3 0 0 1 6 0v15M29 22V9a3 3 0 0 1 6 0v16M35 25v-7a3 3 0 0 1 6 0v11c0 8-6 15-14 15h-2c-5 0-8-2-11-6l-6-9a3 3 0 0 1 5-4l5 5"/>',
  // "I need assistance" (the confirm screen): one person steadying another.
  assist: '<circle cx="16" cy="9" r="5"/><circle cx="33" cy="11" r="4.5"/><path d="M16 15v14M9 43l7-14 7 14M33 17v11l5 15M33 28l-5 15M16 20l10 4 7-3"/>',
  back: '<path d="M28 10 14 24l14 14"/>',
  next: '<path d="M20 10l14 14-14 14"/>',
  phone: '<rect x="13" y="4" width="22" height="40" rx="4"/><path d="M21 38h6"/>',
  printer: '<path d="M14 18V6h20v12M14 34H8V18h32v16h-6M14 28h20v14H14z"/>',
  warning: '<path d="M24 6 4 42h40z"/><path d="M24 19v12M24 36v1"/>',
  speaker: '<path d="M8 18h8l10-8v28l-10-8H8zM32 17a10 10 0 0 1 0 14M36 12a16 16 0 0 1 0 24"/>',
  check: '<path d="M9 25l10 10 20-22"/>',
  clock: '<circle cx="24" cy="24" r="18"/><path d="M24 13v11l8 5"/>',
  people: '<circle cx="17" cy="15" r="6"/><circle cx="33" cy="17" r="5"/><path d="M5 40v-4a12 12 0 0 1 24 0v4M29 27a10 10 0 0 1 14 9v4"/>',
  place: '<path d="M24 43s-14-14-14-25a14 14 0 0 1 28 0c0 11-14 25-14 25z"/><circle cx="24" cy="18" r="5"/>',
};

/** An inline SVG element for `name` (falls back to the ticket icon). */
export function icon(name, className = 'icon') {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 48 48');
  svg.setAttribute('class', className);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '3');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.innerHTML = P[name] || P.ticket;
  return svg;
}

export const iconNames = Object.keys(P);
