//! The notices' words, in the ticket's language, and how an SMS carries them (GSM-7 or UCS-2, parts).
//! Short, with the number and nothing more personal: a notice may be read by someone else.

/// What a notice says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The people ahead or the estimate fell under the thresholds.
    Near,
    /// Called to a counter.
    Called,
    /// The service closed (the day ended) before the ticket was called.
    Closed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Near => "near",
            Kind::Called => "called",
            Kind::Closed => "closed",
        }
    }
}

/// The languages notices are written in; any other falls back to English.
pub const LANGUAGES: [&str; 9] = ["fi", "sv", "en", "et", "ru", "uk", "so", "ar", "zh"];

/// The notice in `lang`: `number` is the ticket's number, `counter` the counter's name in that language.
pub fn render(kind: Kind, lang: &str, number: &str, counter: &str) -> String {
    let t = match (kind, lang) {
        (Kind::Near, "fi") => "Vuoronumero {n}: vuorosi on pian. Tule odotustilaan.",
        (Kind::Near, "sv") => "Könummer {n}: din tur kommer snart. Kom till väntrummet.",
        (Kind::Near, "et") => "Järjekorranumber {n}: teie kord on varsti. Tulge ooteruumi.",
        (Kind::Near, "ru") => "Номер {n}: скоро ваша очередь. Пройдите в зал ожидания.",
        (Kind::Near, "uk") => "Номер {n}: незабаром ваша черга. Пройдіть до зали очікування.",
        (Kind::Near, "so") => {
            "Lambarka {n}: waxaa dhowaan kuu imanaya kaalintaada. Kusoo laabo qolka sugitaanka."
        }
        (Kind::Near, "ar") => "الرقم {n}: اقترب دورك. تفضل إلى قاعة الانتظار.",
        (Kind::Near, "zh") => "号码 {n}：即将轮到您，请回到等候区。",
        (Kind::Near, _) => "Number {n}: your turn is near. Please come to the waiting area.",
        (Kind::Called, "fi") => "Vuoronumero {n}: on vuorosi, {c}.",
        (Kind::Called, "sv") => "Könummer {n}: det är din tur, {c}.",
        (Kind::Called, "et") => "Järjekorranumber {n}: teie kord, {c}.",
        (Kind::Called, "ru") => "Номер {n}: ваша очередь, {c}.",
        (Kind::Called, "uk") => "Номер {n}: ваша черга, {c}.",
        (Kind::Called, "so") => "Lambarka {n}: waa kaalintaada, {c}.",
        (Kind::Called, "ar") => "الرقم {n}: حان دورك، {c}.",
        (Kind::Called, "zh") => "号码 {n}：轮到您了，{c}。",
        (Kind::Called, _) => "Number {n}: it is your turn, {c}.",
        (Kind::Closed, "fi") => "Vuoronumero {n}: palvelu sulkeutui ennen vuoroasi. Pahoittelemme.",
        (Kind::Closed, "sv") => "Könummer {n}: tjänsten stängde före din tur. Vi beklagar.",
        (Kind::Closed, "et") => "Järjekorranumber {n}: teenus suleti enne teie korda. Vabandame.",
        (Kind::Closed, "ru") => {
            "Номер {n}: обслуживание закрылось до вашей очереди. Приносим извинения."
        }
        (Kind::Closed, "uk") => "Номер {n}: обслуговування закрилося до вашої черги. Перепрошуємо.",
        (Kind::Closed, "so") => "Lambarka {n}: adeegga waa xirmay ka hor kaalintaada. Raali ahaw.",
        (Kind::Closed, "ar") => "الرقم {n}: أُغلقت الخدمة قبل دورك. نعتذر.",
        (Kind::Closed, "zh") => "号码 {n}：服务在轮到您之前已结束，敬请谅解。",
        (Kind::Closed, _) => "Number {n}: the service closed before your turn. We are sorry.",
    };
    t.replace("{n}", number).replace("{c}", counter)
}

/// An e-mail's subject line for the notice.
pub fn subject(lang: &str, number: &str) -> String {
    let word = match lang {
        "fi" => "Vuoronumero",
        "sv" => "Könummer",
        "et" => "Järjekorranumber",
        "ru" | "uk" => "Номер",
        "so" => "Lambarka",
        "ar" => "الرقم",
        "zh" => "号码",
        _ => "Number",
    };
    format!("{word} {number}")
}

/// How an SMS text is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// The GSM 03.38 alphabet: 160 characters in one part, 153 per part when split.
    Gsm7,
    /// Anything else: 70 characters in one part, 67 per part.
    Ucs2,
}

impl SmsEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "gsm7",
            SmsEncoding::Ucs2 => "ucs2",
        }
    }
}

/// GSM 03.38's basic alphabet.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: each takes two septets.
const GSM7_EXTENDED: &str = "^{}\\[~]|€\x0c";

/// The encoding `text` needs, and its length in that encoding's units (septets or UTF-16 units).
pub fn sms_length(text: &str) -> (SmsEncoding, usize) {
    let mut septets = 0;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENDED.contains(c) {
            septets += 2;
        } else {
            return (SmsEncoding::Ucs2, text.encode_utf16().count());
        }
    }
    (SmsEncoding::Gsm7, septets)
}

/// How many parts an SMS of `text` takes.
pub fn sms_parts(text: &str) -> (SmsEncoding, u32) {
    let (enc, len) = sms_length(text);
    let (single, per_part) = match enc {
        SmsEncoding::Gsm7 => (160, 153),
        SmsEncoding::Ucs2 => (70, 67),
    };
    let parts = if len <= single {
        1
    } else {
        len.div_ceil(per_part)
    };
    (enc, parts as u32)
}

/// `text` cut (with an ellipsis) so that it fits `max_parts` parts.
pub fn fit_sms(text: &str, max_parts: u32) -> String {
    if sms_parts(text).1 <= max_parts {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let cut: String = chars.iter().collect::<String>() + "…";
        if sms_parts(&cut).1 <= max_parts {
            return cut;
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finnish_and_swedish_letters_are_gsm7_and_cyrillic_is_not() {
        assert_eq!(
            sms_length("Vuoronumero A012: vuorosi on pian. Tule odotustilaan."),
            (SmsEncoding::Gsm7, 53)
        );
        assert_eq!(sms_length("Kö å ä ö Ä Ö Å").0, SmsEncoding::Gsm7);
        assert_eq!(sms_length("€").1, 2);
        assert_eq!(sms_length("Номер A012").0, SmsEncoding::Ucs2);
        assert_eq!(
            sms_length("õ").0,
            SmsEncoding::Ucs2,
            "Estonian õ is not in GSM-7"
        );
    }

    #[test]
    fn parts_follow_the_single_and_concatenated_sizes() {
        assert_eq!(sms_parts(&"a".repeat(160)).1, 1);
        assert_eq!(sms_parts(&"a".repeat(161)).1, 2);
        assert_eq!(sms_parts(&"a".repeat(306)).1, 2);
        assert_eq!(sms_parts(&"a".repeat(307)).1, 3);
        assert_eq!(sms_parts(&"я".repeat(70)).1, 1);
        assert_eq!(sms_parts(&"я".repeat(71)).1, 2);
    }

    #[test]
    fn a_long_text_is_cut_to_fit() {
        let long = "я".repeat(200);
        let cut = fit_sms(&long, 2);
        assert_eq!(sms_parts(&cut).1, 2);
        assert!(cut.ends_with('…'));
        assert_eq!(fit_sms("short", 1), "short");
    }

    #[test]
    fn every_language_has_every_notice_with_the_number() {
        for lang in LANGUAGES {
            for kind in [Kind::Near, Kind::Called, Kind::Closed] {
                let s = render(kind, lang, "A012", "Tiski 5");
                assert!(s.contains("A012"), "{lang} {kind:?}: {s}");
                if kind == Kind::Called {
                    assert!(s.contains("Tiski 5"), "{lang}: {s}");
                }
                if lang != "en" {
                    assert_ne!(s, render(kind, "en", "A012", "Tiski 5"), "{lang} {kind:?}");
                }
                assert!(sms_parts(&s).1 <= 2, "{lang} {kind:?} fits two parts");
            }
        }
    }
}
