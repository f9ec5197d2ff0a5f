//! The fixed wording printed on every ticket, per language. Everything that depends on the
//! ticket itself (site, service, where to wait) comes already translated from the caller.

/// Fixed ticket wording in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    /// Language code (`fi`).
    pub lang: &'static str,
    /// The language's name in itself (`Suomi`).
    pub name: &'static str,
    /// Written right to left.
    pub rtl: bool,
    /// Heading above the number.
    pub your_number: &'static str,
    /// "People ahead": followed by `: N`.
    pub people_ahead: &'static str,
    /// "Estimated wait": followed by `: N min`.
    pub estimated_wait: &'static str,
    /// Unit after the estimate.
    pub minutes: &'static str,
    /// "Issued": followed by `: time`.
    pub issued: &'static str,
    /// Under the QR code.
    pub follow_on_phone: &'static str,
    /// What to do now.
    pub wait_for_call: &'static str,
}

/// Every language with labels, Finnish first.
pub const LANGUAGES: [&str; 9] = ["fi", "sv", "en", "ru", "et", "ar", "zh", "so", "uk"];

const TABLE: [Labels; 9] = [
    Labels {
        lang: "fi",
        name: "Suomi",
        rtl: false,
        your_number: "Vuoronumerosi",
        people_ahead: "Edelläsi jonossa",
        estimated_wait: "Arvioitu odotusaika",
        minutes: "min",
        issued: "Tulostettu",
        follow_on_phone: "Seuraa vuoroasi puhelimella",
        wait_for_call: "Odota, kunnes numerosi näkyy näytöllä",
    },
    Labels {
        lang: "sv",
        name: "Svenska",
        rtl: false,
        your_number: "Ditt nummer",
        people_ahead: "Före dig i kön",
        estimated_wait: "Beräknad väntetid",
        minutes: "min",
        issued: "Utskriven",
        follow_on_phone: "Följ din tur i mobilen",
        wait_for_call: "Vänta tills ditt nummer visas på skärmen",
    },
    Labels {
        lang: "en",
        name: "English",
        rtl: false,
        your_number: "Your number",
        people_ahead: "People ahead of you",
        estimated_wait: "Estimated wait",
        minutes: "min",
        issued: "Issued",
        follow_on_phone: "Follow your turn on your phone",
        wait_for_call: "Please wait until your number is shown on the screen",
    },
    Labels {
        lang: "ru",
        name: "Русский",
        rtl: false,
        your_number: "Ваш номер",
        people_ahead: "Перед вами в очереди",
        estimated_wait: "Примерное ожидание",
        minutes: "мин",
        issued: "Выдан",
        follow_on_phone: "Следите за очередью на телефоне",
        wait_for_call: "Ждите, пока ваш номер появится на экране",
    },
    Labels {
        lang: "et",
        name: "Eesti",
        rtl: false,
        your_number: "Teie number",
        people_ahead: "Teie ees järjekorras",
        estimated_wait: "Eeldatav ooteaeg",
        minutes: "min",
        issued: "Väljastatud",
        follow_on_phone: "Jälgige oma järjekorda telefonis",
        wait_for_call: "Oodake, kuni teie number ilmub ekraanile",
    },
    Labels {
        lang: "ar",
        name: "العربية",
        rtl: true,
        your_number: "رقمك",
        people_ahead: "عدد الأشخاص قبلك",
        estimated_wait: "وقت الانتظار المتوقع",
        minutes: "دقيقة",
        issued: "وقت الإصدار",
        follow_on_phone: "تابع دورك على هاتفك",
        wait_for_call: "يرجى الانتظار حتى يظهر رقمك على الشاشة",
    },
    Labels {
        lang: "zh",
        name: "中文",
        rtl: false,
        your_number: "您的号码",
        people_ahead: "前面等候人数",
        estimated_wait: "预计等候时间",
        minutes: "分钟",
        issued: "取号时间",
        follow_on_phone: "用手机查看排队进度",
        wait_for_call: "请等候屏幕显示您的号码",
    },
    Labels {
        lang: "so",
        name: "Soomaali",
        rtl: false,
        your_number: "Lambarkaaga",
        people_ahead: "Dadka kaa horreeya",
        estimated_wait: "Waqtiga sugitaanka la filayo",
        minutes: "daqiiqo",
        issued: "La bixiyay",
        follow_on_phone: "Kula soco kaalintaada taleefankaaga",
        wait_for_call: "Fadlan sug ilaa lambarkaaga uu ka muuqdo shaashadda",
    },
    Labels {
        lang: "uk",
        name: "Українська",
        rtl: false,
        your_number: "Ваш номер",
        people_ahead: "Перед вами в черзі",
        estimated_wait: "Орієнтовне очікування",
        minutes: "хв",
        issued: "Видано",
        follow_on_phone: "Стежте за чергою в телефоні",
        wait_for_call: "Зачекайте, доки ваш номер з'явиться на екрані",
    },
];

/// The labels for `lang`, or `None` for a language without a table.
pub fn find_labels(lang: &str) -> Option<&'static Labels> {
    TABLE.iter().find(|l| l.lang == lang)
}

/// The labels for `lang`; English for a language without a table (configuration should have
/// been checked against [`LANGUAGES`] at start-up, so this only happens by mistake).
pub fn labels(lang: &str) -> &'static Labels {
    find_labels(lang).unwrap_or_else(|| {
        tracing::warn!(lang, "no ticket labels for this language; printing English");
        &TABLE[2]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_complete_labels() {
        for lang in LANGUAGES {
            let l = find_labels(lang).expect(lang);
            assert_eq!(l.lang, lang);
            for s in [
                l.name,
                l.your_number,
                l.people_ahead,
                l.estimated_wait,
                l.minutes,
                l.issued,
                l.follow_on_phone,
                l.wait_for_call,
            ] {
                assert!(!s.trim().is_empty(), "{lang}");
            }
        }
        assert_eq!(labels("xx").lang, "en");
        assert!(labels("ar").rtl && !labels("fi").rtl);
    }
}
