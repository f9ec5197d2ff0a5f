// Phone numbers as customers type them, for the API's contact (PUT /api/v1/tickets/{token}/contact):
// one rule for the phone page (kiosk-ui/track.js) and the kiosk's keypad (kiosk-ui/kiosk.js).

/** Time zones of sites in Finland (Åland has its own name for the same zone). */
export const FINNISH_ZONES = ['Europe/Helsinki', 'Europe/Mariehamn'];

/** Whether a site with this time zone is in Finland, where a number may be typed as at home (040 ...). */
export function inFinland(timezone) {
  return FINNISH_ZONES.includes(timezone);
}

/**
 * A typed phone number as the API takes it: spaces and hyphens dropped, a leading 00 becomes +, and at a
 * site in Finland a number dialled as at home (a leading 0 then a digit: 040 123 4567) gets Finland's
 * country code instead of the 0 (+358401234567). Anything else goes as typed; the daemon says if it is not
 * a number.
 */
export function phoneNumber(typed, finland) {
  let s = String(typed).replace(/[\s\-\u00a0]/g, '');
  if (s.startsWith('00')) s = '+' + s.slice(2);
  else if (finland && /^0[1-9]/.test(s)) s = '+358' + s.slice(1);
  return s;
}
