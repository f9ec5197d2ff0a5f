//! Integration tests for vuoro-print: golden bytes per layout variant, what the printer would
//! print (through `decode`), the drivers against the scripted fake printer, and print-sample.
//!
//! Golden files live in tests/golden/. After a deliberate layout change, rewrite them with
//! `VUORO_BLESS=1 cargo test -p vuoro-print` and review the decoded `.txt` files beside them.
//! Raster tests need Debian's fonts-dejavu-core and fonts-wqy-microhei.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vuoro_print::decode::{self, Decoded, Item};
use vuoro_print::fake::{Behaviour, FakePrinter};
use vuoro_print::{
    Align, CodePage, Connection, Fault, JobOutcome, PaperWidth, PrintError, Printer,
    PrinterSettings, TicketPrint, print_sample, qr_image, render_ticket,
};

const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const WQY: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";
const TRACK: &str = "http://127.0.0.1:8080/kiosk/track.html#t=3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7";

fn require_font(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package {package}"
    );
}

fn ticket(lang: &str) -> TicketPrint {
    let (site, service, hint) = match lang {
        "fi" => ("Iso Omenan palvelutori", "Kela", "Hyvää päivää, Åsa Öberg"),
        "sv" => ("Iso Omenan palvelutorg", "FPA", "Hyvää päivää, Åsa Öberg"),
        "ru" => (
            "Сервисный центр Исо Омена",
            "Кела",
            "Ждите в зале Кела, зона Б",
        ),
        "ar" => ("مركز خدمات إيسو أومينا", "كيلا", "انتظر في قاعة كيلا"),
        "zh" => ("Iso Omena 服务中心", "社保局 Kela", "请在 Kela 大厅等候"),
        _ => ("Iso Omena service centre", "Kela", "Wait in the Kela hall"),
    };
    TicketPrint {
        site_name: site.into(),
        number: "A042".into(),
        service_name: service.into(),
        wait_hint: hint.into(),
        people_ahead: 3,
        eta_minutes: Some(12),
        issued_at: "23.11.2026 14.05".into(),
        track_url: TRACK.into(),
        lang: lang.into(),
        service_name_fi: (lang != "fi").then(|| "Kela".into()),
        wait_hint_fi: (lang != "fi").then(|| "Odota Kelan aulassa".into()),
    }
}

fn settings(cp: CodePage, width: PaperWidth) -> PrinterSettings {
    let mut s = PrinterSettings::new(Connection::Virtual {
        dir: "/nonexistent".into(),
    })
    .with_code_page(cp);
    s.width = width;
    s
}

fn tcp_settings(fake: &FakePrinter) -> PrinterSettings {
    let mut s = PrinterSettings::new(Connection::Tcp {
        address: fake.address(),
    });
    s.status_timeout = Duration::from_millis(300);
    s.confirm_timeout = Duration::from_millis(500);
    s
}

/// A fresh directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vuoro-print-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compares `bytes` with tests/golden/NAME.bin, or writes it (and a readable .txt) when
/// VUORO_BLESS=1.
fn golden(name: &str, bytes: &[u8], cp: CodePage) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bin = dir.join(format!("{name}.bin"));
    if std::env::var_os("VUORO_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&bin, bytes).unwrap();
        let text = decode::decode(bytes, cp).unwrap().to_text();
        std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
        return;
    }
    let want = std::fs::read(&bin).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with VUORO_BLESS=1 to create it",
            bin.display()
        )
    });
    if want != bytes {
        let at = want
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(bytes.len()));
        let got = decode::decode(bytes, cp).map(|d| d.to_text());
        panic!(
            "{name}: bytes differ from the golden file at offset {at} (golden {} bytes, now {}).\n\
             Now decodes as:\n{}\nIf the change is intended, rerun with VUORO_BLESS=1.",
            want.len(),
            bytes.len(),
            got.unwrap_or_else(|e| e.to_string())
        );
    }
}

fn decoded(bytes: &[u8], cp: CodePage) -> Decoded {
    decode::decode(bytes, cp).unwrap_or_else(|e| panic!("does not decode: {e}"))
}

/// Checks every text line is pure code-page bytes: the job holds no UTF-8 for these letters.
fn assert_no_utf8(bytes: &[u8]) {
    for utf8 in ["ä", "ö", "å", "Å", "Ö", "€"] {
        let seq = utf8.as_bytes();
        assert!(
            !bytes.windows(seq.len()).any(|w| w == seq),
            "UTF-8 for {utf8} found in the job"
        );
    }
}

/// Every text line is exactly the code page's encoding of its text: bytes from 0x80 up are
/// letters of that page, not pieces of UTF-8 or of another page.
fn assert_lines_round_trip(d: &Decoded, cp: CodePage) {
    for line in d.lines() {
        assert_eq!(
            cp.encode(&line.text).as_ref(),
            Some(&line.bytes),
            "{:?}",
            line.text
        );
        assert!(line.bytes.iter().all(|&b| b >= 0x20 && b != 0x7F));
    }
}

/// The parts every ticket job has, whatever its language.
fn assert_ticket_frame(d: &Decoded, esc_t: u8) {
    assert!(d.starts_with_init_sequence(), "{:?}", &d.items[..4]);
    assert_eq!(d.code_tables(), vec![esc_t]);
    assert!(d.ends_with_cut_and_check());
    assert_eq!(d.cuts(), 1);
    assert_eq!(d.jobs().len(), 1);
    let number = d
        .lines()
        .find(|l| l.text == "A042")
        .expect("the number is printed as text");
    assert!(number.bold && number.align == Align::Center);
    assert_eq!((number.width, number.height), (8, 8));
}

// ---------------------------------------------------------------- layouts and golden bytes

#[test]
fn finnish_ticket_on_cp858_80mm() {
    let s = settings(CodePage::Cp858, PaperWidth::Mm80);
    let bytes = render_ticket(&ticket("fi"), &s).unwrap();
    golden("fi-cp858-80", &bytes, CodePage::Cp858);
    let d = decoded(&bytes, CodePage::Cp858);
    assert_lines_round_trip(&d, CodePage::Cp858);
    assert_ticket_frame(&d, 19);
    assert_eq!(
        d.texts(),
        vec![
            "Iso Omenan palvelutori",
            "Kela",
            "Vuoronumerosi",
            "A042",
            "Hyvää päivää, Åsa Öberg",
            "Odota, kunnes numerosi näkyy näytöllä",
            "Edelläsi jonossa: 3",
            "Arvioitu odotusaika: 12 min",
            "Tulostettu: 23.11.2026 14.05",
            "Seuraa vuoroasi puhelimella",
        ]
    );
    let hint = d.lines().find(|l| l.text.starts_with("Hyvää")).unwrap();
    assert_eq!(
        hint.bytes,
        b"Hyv\x84\x84 p\x84iv\x84\x84, \x8fsa \x99berg".to_vec()
    );
    assert!(d.rasters().is_empty(), "Finnish needs no images");
    let qrs = d.qrs();
    assert_eq!(qrs.len(), 1);
    assert_eq!(qrs[0].text(), TRACK);
    assert_eq!(qrs[0].module, 6);
    assert_no_utf8(&bytes);
}

#[test]
fn finnish_ticket_on_58mm_wraps_to_32_columns() {
    let s = settings(CodePage::Cp858, PaperWidth::Mm58);
    let bytes = render_ticket(&ticket("fi"), &s).unwrap();
    golden("fi-cp858-58", &bytes, CodePage::Cp858);
    let d = decoded(&bytes, CodePage::Cp858);
    assert_ticket_frame(&d, 19);
    for line in d.lines() {
        let cols = line.text.chars().count() * usize::from(line.width);
        assert!(cols <= 32, "{:?} is {cols} columns", line.text);
    }
    // "Odota, kunnes numerosi näkyy näytöllä" is 37 characters: wrapped at a space.
    let texts = d.texts();
    assert!(texts.contains(&"Odota, kunnes numerosi näkyy"));
    assert!(texts.contains(&"näytöllä"));
    assert_eq!(d.qrs()[0].module, 5);
}

#[test]
fn swedish_ticket_on_cp865_58mm_has_finnish_lines_too() {
    let mut s = settings(CodePage::Cp865, PaperWidth::Mm58);
    assert_eq!(s.esc_t, 5);
    s.esc_t = 5;
    let bytes = render_ticket(&ticket("sv"), &s).unwrap();
    golden("sv-cp865-58", &bytes, CodePage::Cp865);
    let d = decoded(&bytes, CodePage::Cp865);
    assert_lines_round_trip(&d, CodePage::Cp865);
    assert_ticket_frame(&d, 5);
    let texts = d.texts();
    for want in [
        "Iso Omenan palvelutorg",
        "FPA",
        "Kela",
        "Ditt nummer",
        "Vuoronumerosi",
        "Hyvää päivää, Åsa Öberg",
        "Odota Kelan aulassa",
        "Före dig i kön: 3",
        "Edelläsi jonossa: 3",
        "Beräknad väntetid: 12 min",
        "Följ din tur i mobilen",
    ] {
        assert!(texts.contains(&want), "{want:?} missing from {texts:#?}");
    }
    // Swedish line first, its Finnish line right after.
    let pos = |t: &str| texts.iter().position(|x| *x == t).unwrap();
    assert_eq!(pos("Edelläsi jonossa: 3"), pos("Före dig i kön: 3") + 1);
    assert!(d.rasters().is_empty());
    assert_no_utf8(&bytes);
}

#[test]
fn russian_ticket_on_cp866_prints_cyrillic_as_text() {
    require_font(DEJAVU, "fonts-dejavu-core");
    let s = settings(CodePage::Cp866, PaperWidth::Mm80);
    let bytes = render_ticket(&ticket("ru"), &s).unwrap();
    golden("ru-cp866-80", &bytes, CodePage::Cp866);
    let d = decoded(&bytes, CodePage::Cp866);
    assert_lines_round_trip(&d, CodePage::Cp866);
    assert_ticket_frame(&d, 17);
    let texts = d.texts();
    for want in [
        "Сервисный центр Исо Омена",
        "Ваш номер",
        "Перед вами в очереди: 3",
        "Примерное ожидание: 12 мин",
        "Следите за очередью на телефоне",
    ] {
        assert!(texts.contains(&want), "{want:?} missing from {texts:#?}");
    }
    let line = d.lines().find(|l| l.text == "Ваш номер").unwrap();
    assert_eq!(
        line.bytes,
        vec![0x82, 0xA0, 0xE8, b' ', 0xAD, 0xAE, 0xAC, 0xA5, 0xE0]
    );
    // CP866 has no ä: the Finnish lines come out as images, never as wrong letters.
    assert!(!texts.iter().any(|t| t.contains("Edell")));
    // "Edelläsi jonossa: 3" and "Odota, kunnes numerosi näkyy näytöllä".
    assert_eq!(d.rasters().len(), 2);
    assert!(
        texts.contains(&"Arvioitu odotusaika: 12 min"),
        "ASCII Finnish stays text"
    );
}

#[test]
fn russian_ticket_on_cp858_is_rasterised() {
    require_font(DEJAVU, "fonts-dejavu-core");
    let s = settings(CodePage::Cp858, PaperWidth::Mm80);
    let bytes = render_ticket(&ticket("ru"), &s).unwrap();
    let d = decoded(&bytes, CodePage::Cp858);
    assert_ticket_frame(&d, 19);
    assert!(
        !d.texts()
            .iter()
            .any(|t| t.chars().any(|c| ('А'..='я').contains(&c)))
    );
    assert!(d.texts().contains(&"Edelläsi jonossa: 3"));
    assert!(d.rasters().len() >= 6);
}

#[test]
fn arabic_ticket_is_rasterised_and_right_aligned() {
    require_font(DEJAVU, "fonts-dejavu-core");
    let s = settings(CodePage::Cp858, PaperWidth::Mm80);
    let bytes = render_ticket(&ticket("ar"), &s).unwrap();
    golden("ar-cp858-80", &bytes, CodePage::Cp858);
    let d = decoded(&bytes, CodePage::Cp858);
    assert_ticket_frame(&d, 19);
    // Finnish lines stay text; every Arabic line is an image.
    let texts = d.texts();
    for want in [
        "Kela",
        "Vuoronumerosi",
        "Edelläsi jonossa: 3",
        "Odota Kelan aulassa",
    ] {
        assert!(texts.contains(&want), "{want:?} missing from {texts:#?}");
    }
    assert!(
        !texts
            .iter()
            .any(|t| t.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)))
    );
    let rasters = d.rasters();
    // site, service, your number, hint, wait-for-call, people ahead, eta, issued, follow.
    assert!(rasters.len() >= 9, "{} images", rasters.len());
    for r in &rasters {
        assert_eq!(r.width(), 576);
        assert!(
            r.height() >= 24 && r.height() <= 80,
            "height {}",
            r.height()
        );
        assert!(r.ink_rows() >= 10, "an image with almost no ink");
    }
    // People ahead, estimate and issue time are left-aligned in the layout, so in Arabic
    // they hug the right margin; the centred lines have about as much space on each side.
    let (mut right_aligned, mut centred) = (0, 0);
    for r in &rasters {
        let (left, right) = r.bitmap.ink_columns().unwrap();
        let right_gap = 575 - right;
        if right_gap <= 8 && left > 150 {
            right_aligned += 1;
        } else if left.abs_diff(right_gap) <= 12 {
            centred += 1;
        }
    }
    assert_eq!(right_aligned, 3, "right-aligned lines");
    assert_eq!(centred, rasters.len() - 3, "centred lines");
    assert_eq!(d.qrs()[0].text(), TRACK);
}

#[test]
fn arabic_ticket_on_58mm() {
    require_font(DEJAVU, "fonts-dejavu-core");
    let s = settings(CodePage::Cp858, PaperWidth::Mm58);
    let bytes = render_ticket(&ticket("ar"), &s).unwrap();
    golden("ar-cp858-58", &bytes, CodePage::Cp858);
    let d = decoded(&bytes, CodePage::Cp858);
    assert_ticket_frame(&d, 19);
    let rasters = d.rasters();
    assert!(rasters.iter().all(|r| r.width() == 384));
    // "يرجى الانتظار حتى يظهر رقمك على الشاشة" does not fit 384 dots: wrapped to two images.
    assert!(rasters.len() >= 10, "{}", rasters.len());
}

#[test]
fn chinese_ticket_uses_the_cjk_font() {
    require_font(WQY, "fonts-wqy-microhei");
    let s = settings(CodePage::Cp858, PaperWidth::Mm80);
    let bytes = render_ticket(&ticket("zh"), &s).unwrap();
    golden("zh-cp858-80", &bytes, CodePage::Cp858);
    let d = decoded(&bytes, CodePage::Cp858);
    assert_ticket_frame(&d, 19);
    assert!(d.rasters().len() >= 8);
    assert!(d.rasters().iter().all(|r| r.ink_rows() >= 10));
    assert!(d.texts().contains(&"Seuraa vuoroasi puhelimella"));
}

#[test]
fn empty_lines_are_normal_size() {
    let bytes = render_ticket(&ticket("fi"), &settings(CodePage::Cp858, PaperWidth::Mm80)).unwrap();
    for line in decoded(&bytes, CodePage::Cp858).lines() {
        if line.text.is_empty() {
            assert_eq!((line.width, line.height, line.bold), (1, 1, false));
        }
    }
}

#[test]
fn raster_images_never_carry_real_time_commands() {
    require_font(DEJAVU, "fonts-dejavu-core");
    for lang in ["ar", "ru"] {
        let mut s = settings(CodePage::Cp858, PaperWidth::Mm80);
        s.qr = false;
        let bytes = render_ticket(&ticket(lang), &s).unwrap();
        for r in decoded(&bytes, CodePage::Cp858).rasters() {
            assert!(
                !r.bitmap
                    .packed()
                    .windows(2)
                    .any(|w| w[0] == 0x10 && matches!(w[1], 0x04 | 0x05 | 0x14)),
                "{lang}"
            );
        }
    }
}

#[test]
fn qr_is_rasterised_for_printers_without_gs_k() {
    let mut s = settings(CodePage::Cp858, PaperWidth::Mm58);
    s.qr = false;
    let bytes = render_ticket(&ticket("fi"), &s).unwrap();
    let d = decoded(&bytes, CodePage::Cp858);
    assert!(d.qrs().is_empty());
    let rasters = d.rasters();
    assert_eq!(rasters.len(), 1);
    assert_eq!(rasters[0].bitmap, qr_image(TRACK, 384).unwrap());
    assert!(!bytes.windows(3).any(|w| w == [0x1D, b'(', b'k']));
}

#[test]
fn no_font_for_a_line_is_a_clear_error() {
    let mut s = settings(CodePage::Cp858, PaperWidth::Mm80);
    s.fonts = vec![PathBuf::from("/nonexistent/DejaVuSans.ttf")];
    let err = render_ticket(&ticket("ar"), &s).unwrap_err();
    assert!(matches!(err, PrintError::NoFont { .. }));
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/DejaVuSans.ttf"), "{msg}");
    // A Latin-only ticket never touches the fonts.
    assert!(render_ticket(&ticket("fi"), &s).is_ok());
}

#[test]
fn unknown_language_prints_english_labels() {
    let mut t = ticket("en");
    t.lang = "xx".into();
    let bytes = render_ticket(&t, &settings(CodePage::Cp858, PaperWidth::Mm80)).unwrap();
    let d = decoded(&bytes, CodePage::Cp858);
    assert!(d.texts().contains(&"People ahead of you: 3"));
    assert!(d.texts().contains(&"Edelläsi jonossa: 3"));
}

#[test]
fn control_characters_from_the_caller_cannot_become_commands() {
    let mut t = ticket("fi");
    t.wait_hint = "Odota\x1b@\x1dV\x00 tässä".into();
    let bytes = render_ticket(&t, &settings(CodePage::Cp858, PaperWidth::Mm80)).unwrap();
    let d = decoded(&bytes, CodePage::Cp858);
    assert_eq!(d.cuts(), 1);
    assert_eq!(d.jobs().len(), 1);
    assert!(d.texts().contains(&"Odota @ V  tässä"));
}

// ---------------------------------------------------------------- settings

#[test]
fn settings_read_from_toml() {
    let s: PrinterSettings = toml::from_str(
        r#"kind = "tcp"
address = "127.0.0.1:9100"
code_page = "cp858"
esc_t = 53
width_mm = 58
qr = false"#,
    )
    .unwrap();
    assert_eq!(
        s.connection,
        Connection::Tcp {
            address: "127.0.0.1:9100".into()
        }
    );
    assert_eq!(
        (s.code_page, s.esc_t, s.width, s.qr),
        (CodePage::Cp858, 53, PaperWidth::Mm58, false)
    );
    assert_eq!(s.status_timeout, Duration::from_secs(1));

    let s: PrinterSettings =
        toml::from_str("kind = \"file\"\npath = \"/dev/usb/lp0\"\ncode_page = \"cp866\"").unwrap();
    assert_eq!(s.esc_t, 17, "Epson's number by default");
    assert_eq!(s.width, PaperWidth::Mm80);
    let s: PrinterSettings = toml::from_str("kind = \"virtual\"\ndir = \"/tmp/v\"").unwrap();
    assert_eq!(
        s.connection,
        Connection::Virtual {
            dir: "/tmp/v".into()
        }
    );

    for (bad, why) in [
        ("kind = \"tcp\"", "needs `address`"),
        ("kind = \"usb\"", "unknown printer kind"),
        (
            "kind = \"tcp\"\naddress = \"h:1\"\npath = \"/x\"",
            "does not apply",
        ),
        (
            "kind = \"virtual\"\ndir = \"/x\"\nwidth_mm = 76",
            "58 or 80",
        ),
        (
            "kind = \"virtual\"\ndir = \"/x\"\ncode_page = \"cp1252\"",
            "unknown code page",
        ),
        (
            "kind = \"virtual\"\ndir = \"/x\"\ncolour = true",
            "unknown field",
        ),
    ] {
        let err = toml::from_str::<PrinterSettings>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}

// ---------------------------------------------------------------- fake printer and drivers

/// Prints the Finnish ticket on a fake printer behaving as `b`.
fn print_on(b: Behaviour) -> (JobOutcome, Vec<Vec<u8>>, Duration) {
    let fake = FakePrinter::start(vec![b], CodePage::Cp858).unwrap();
    let mut printer = Printer::new(tcp_settings(&fake));
    let started = Instant::now();
    let outcome = printer.print_ticket(&ticket("fi")).unwrap();
    let took = started.elapsed();
    (outcome, fake.connections(), took)
}

fn job_sent(conn: &[u8]) -> bool {
    decoded(conn, CodePage::Cp858).items.contains(&Item::Init)
}

#[test]
fn healthy_printer_prints_and_confirms() {
    let (outcome, conns, _) = print_on(Behaviour::Ok);
    assert_eq!(outcome, JobOutcome::Printed { near_end: false });
    assert_eq!(conns.len(), 1);
    let d = decoded(&conns[0], CodePage::Cp858);
    assert_eq!(
        &d.items[..4],
        &[1, 2, 3, 4].map(Item::StatusQuery),
        "status is asked before the job"
    );
    let job = &d.jobs()[1];
    assert!(job.starts_with_init_sequence() && job.ends_with_cut_and_check());
    assert!(job.texts().contains(&"Hyvää päivää, Åsa Öberg"));
    assert_eq!(job.qrs()[0].text(), TRACK);
}

#[test]
fn near_end_still_prints_and_says_so() {
    let (outcome, conns, _) = print_on(Behaviour::NearEnd);
    assert_eq!(outcome, JobOutcome::Printed { near_end: true });
    assert!(job_sent(&conns[0]));
}

#[test]
fn paper_out_cover_open_and_offline_refuse_the_job() {
    for (b, fault) in [
        (Behaviour::PaperOut, Fault::PaperOut),
        (Behaviour::CoverOpen, Fault::CoverOpen),
        (Behaviour::Offline, Fault::Offline),
    ] {
        let (outcome, conns, took) = print_on(b);
        assert_eq!(outcome, JobOutcome::Failed(fault), "{b:?}");
        assert!(!job_sent(&conns[0]), "{b:?}: the job went out anyway");
        assert!(took < Duration::from_millis(300), "{b:?} took {took:?}");
    }
}

#[test]
fn silent_printer_is_offline_within_the_status_timeout() {
    let (outcome, conns, took) = print_on(Behaviour::Silence);
    assert_eq!(outcome, JobOutcome::Failed(Fault::Offline));
    assert!(!job_sent(&conns[0]));
    // One unanswered DLE EOT 1 is enough: 300 ms, not 4 x 300 ms.
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(900),
        "{took:?}"
    );
    assert_eq!(
        decoded(&conns[0], CodePage::Cp858).items,
        vec![Item::StatusQuery(1)]
    );
}

#[test]
fn missing_completion_reply_is_no_confirmation() {
    let (outcome, conns, took) = print_on(Behaviour::NoConfirmation);
    assert_eq!(outcome, JobOutcome::Failed(Fault::NoConfirmation));
    assert!(job_sent(&conns[0]), "the job was sent before waiting");
    assert!(
        took >= Duration::from_millis(490) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[test]
fn nobody_listening_is_offline() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = PrinterSettings::new(Connection::Tcp {
        address: format!("127.0.0.1:{port}"),
    });
    s.status_timeout = Duration::from_millis(300);
    let mut printer = Printer::new(s);
    assert_eq!(
        printer.print_ticket(&ticket("fi")).unwrap(),
        JobOutcome::Failed(Fault::Offline)
    );
    assert_eq!(printer.status(), vuoro_print::PrinterStatus::OFFLINE);
}

#[test]
fn a_failed_job_is_never_sent_later() {
    let fake =
        FakePrinter::start(vec![Behaviour::PaperOut, Behaviour::Ok], CodePage::Cp858).unwrap();
    let mut printer = Printer::new(tcp_settings(&fake));
    let first = ticket("fi");
    let mut second = ticket("fi");
    second.number = "A043".into();
    assert_eq!(
        printer.print_ticket(&first).unwrap(),
        JobOutcome::Failed(Fault::PaperOut)
    );
    // Paper changed: the next ticket prints, and only it.
    assert_eq!(
        printer.print_ticket(&second).unwrap(),
        JobOutcome::Printed { near_end: false }
    );
    let all = decoded(&fake.received(), CodePage::Cp858);
    let jobs: Vec<Decoded> = all
        .jobs()
        .into_iter()
        .filter(|j| j.starts_with_init_sequence())
        .collect();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].texts().contains(&"A043"));
    assert!(!all.texts().contains(&"A042"));
}

#[test]
fn status_query_reports_each_state() {
    for (b, want) in [
        (Behaviour::Ok, (true, false, false, false)),
        (Behaviour::NearEnd, (true, false, false, true)),
        (Behaviour::PaperOut, (false, false, true, true)),
        (Behaviour::CoverOpen, (false, true, false, false)),
        (Behaviour::Offline, (false, false, false, false)),
        (Behaviour::Silence, (false, false, false, false)),
    ] {
        let fake = FakePrinter::start(vec![b], CodePage::Cp858).unwrap();
        let st = Printer::new(tcp_settings(&fake)).status();
        assert_eq!(
            (st.online, st.cover_open, st.paper_out, st.paper_near_end),
            want,
            "{b:?}"
        );
    }
}

#[test]
fn plain_file_gets_every_job_appended() {
    let dir = temp_dir("file");
    let path = dir.join("out.prn");
    let mut s = settings(CodePage::Cp858, PaperWidth::Mm80);
    s.connection = Connection::File { path: path.clone() };
    let mut printer = Printer::new(s);
    for _ in 0..2 {
        assert_eq!(
            printer.print_ticket(&ticket("fi")).unwrap(),
            JobOutcome::Printed { near_end: false }
        );
    }
    let d = decoded(&std::fs::read(&path).unwrap(), CodePage::Cp858);
    assert_eq!(d.jobs().len(), 2);
    assert_eq!(d.cuts(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_device_that_never_answers_is_offline() {
    // /dev/null is a character device: opened read-write, it takes the bytes and never answers.
    let mut s = settings(CodePage::Cp858, PaperWidth::Mm80);
    s.connection = Connection::File {
        path: "/dev/null".into(),
    };
    s.status_timeout = Duration::from_millis(200);
    let mut printer = Printer::new(s.clone());
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(
            printer.print_ticket(&ticket("fi")).unwrap(),
            JobOutcome::Failed(Fault::Offline)
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_millis(800),
            "{took:?}"
        );
    }
    assert_eq!(printer.status(), vuoro_print::PrinterStatus::OFFLINE);
    // A one-way device with status off: a written job counts as printed.
    s.status = false;
    assert_eq!(
        Printer::new(s).print_ticket(&ticket("fi")).unwrap(),
        JobOutcome::Printed { near_end: false }
    );
}

#[test]
fn virtual_printer_writes_bytes_and_a_readable_copy() {
    require_font(DEJAVU, "fonts-dejavu-core");
    let dir = temp_dir("virtual");
    let mut s = settings(CodePage::Cp858, PaperWidth::Mm80);
    s.connection = Connection::Virtual { dir: dir.clone() };
    let mut printer = Printer::new(s);
    printer.print_ticket(&ticket("fi")).unwrap();
    printer.print_ticket(&ticket("ar")).unwrap();
    let bin = std::fs::read(dir.join("1.bin")).unwrap();
    assert!(decoded(&bin, CodePage::Cp858).texts().contains(&"A042"));
    let txt = std::fs::read_to_string(dir.join("1.txt")).unwrap();
    assert!(txt.contains("Hyvää päivää, Åsa Öberg"), "{txt}");
    assert!(txt.contains(&format!("[QR {TRACK}]")), "{txt}");
    assert!(txt.contains("[cut]"));
    let txt2 = std::fs::read_to_string(dir.join("2.txt")).unwrap();
    assert!(txt2.contains("[image 576x"), "{txt2}");
    let pbm = std::fs::read(dir.join("2-1.pbm")).unwrap();
    assert!(pbm.starts_with(b"P4\n576 "));
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- print-sample

#[test]
fn print_sample_reports_each_outcome() {
    let ok = FakePrinter::start(vec![Behaviour::Ok], CodePage::Cp858).unwrap();
    let out = print_sample(&ok.target(), "sv", 58, "cp858").unwrap();
    assert_eq!(out.outcome, JobOutcome::Printed { near_end: false });
    assert_eq!(out.esc_t, 19);
    assert!(out.message.starts_with("Printed."), "{}", out.message);
    let job = decoded(&ok.received(), CodePage::Cp858);
    let texts = job.texts();
    assert!(
        texts.contains(&"Hyvää päivää, Åsa Öberg! 5 €"),
        "{texts:#?}"
    );
    assert!(texts.contains(&"cp858 = ESC t 19, 58 mm"));
    assert!(texts.contains(&"Ditt nummer"));

    for (b, words) in [
        (Behaviour::PaperOut, "out of paper"),
        (Behaviour::CoverOpen, "cover is open"),
        (Behaviour::Offline, "does not answer"),
        (Behaviour::NoConfirmation, "did not confirm"),
    ] {
        let fake = FakePrinter::start(vec![b], CodePage::Cp858).unwrap();
        let out = print_sample(&fake.target(), "fi", 80, "cp858").unwrap();
        assert!(matches!(out.outcome, JobOutcome::Failed(_)), "{b:?}");
        assert!(out.message.contains(words), "{b:?}: {}", out.message);
    }
}

#[test]
fn print_sample_to_a_file_and_bad_arguments() {
    let dir = temp_dir("sample");
    let path = dir.join("sample.prn");
    let out = print_sample(&format!("file:{}", path.display()), "ru", 80, "cp866").unwrap();
    assert_eq!(out.outcome, JobOutcome::Printed { near_end: false });
    assert_eq!(out.esc_t, 17);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), out.bytes);
    let d = decoded(&bytes, CodePage::Cp866);
    assert!(d.texts().contains(&"Привет, ёлка! №5"));
    assert_eq!(d.code_tables(), vec![17]);
    std::fs::remove_dir_all(dir).unwrap();

    assert!(matches!(
        print_sample("lpt1", "fi", 80, "cp858"),
        Err(PrintError::BadTarget(_))
    ));
    assert!(matches!(
        print_sample("file:/tmp/x", "fi", 76, "cp858"),
        Err(PrintError::BadWidth(76))
    ));
    assert!(matches!(
        print_sample("file:/tmp/x", "fi", 80, "utf8"),
        Err(PrintError::UnknownCodePage(_))
    ));
}
