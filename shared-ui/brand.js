// The organisation's logo from the config's [brand] (GET /brand.json): shows every
// <img data-brand-logo hidden alt=""> with the logo and the brand's name, in the page's language, as its
// text; the name follows <html lang> as the page changes language. Nothing shows when no logo is set.

/** The name in `lang`; else English for a language other than Finnish or Swedish; else Finnish; else any. */
export function brandName(name, lang) {
  const n = name || {};
  const en = lang !== 'fi' && lang !== 'sv' ? n.en : undefined;
  return n[lang] ?? en ?? n.fi ?? Object.values(n)[0] ?? '';
}

async function start() {
  const imgs = [...document.querySelectorAll('img[data-brand-logo]')];
  if (!imgs.length) return;
  let brand;
  try {
    const r = await fetch('/brand.json', { cache: 'no-cache' });
    if (!r.ok) return;
    brand = await r.json();
  } catch {
    return;
  }
  if (!brand.logo) return;
  const root = document.documentElement;
  const label = () => {
    for (const img of imgs) img.alt = brandName(brand.name, root.lang);
  };
  label();
  for (const img of imgs) {
    img.addEventListener('error', () => { img.hidden = true; }, { once: true });
    img.src = brand.logo;
    img.hidden = false;
  }
  new MutationObserver(label).observe(root, { attributes: true, attributeFilter: ['lang'] });
}

start();
