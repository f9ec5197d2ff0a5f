//! A small Arabic shaper and right-to-left reordering, enough for ticket lines.
//!
//! Thermal printers have no Arabic code page that works everywhere, so Arabic lines are drawn
//! from a font. A font drawn glyph by glyph (no OpenType shaping engine here) needs the letters
//! already in their contextual forms: [`shape_arabic`] maps each letter to its isolated,
//! initial, medial or final presentation form (Unicode block FE70–FEFF) and joins lam + alef.
//! [`visual_order`] then puts a logical-order line into left-to-right drawing order: Arabic
//! runs reversed, Latin words and numbers (such as the ticket number `A042`) kept as they are.
//! Not covered: Persian/Urdu extra letters (left unshaped), full Unicode bidi (explicit
//! embeddings, nested runs), and marks (harakat) positioning.

/// How a letter joins its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joining {
    /// Joins on both sides (ب).
    Dual,
    /// Joins only to the letter before it (ا د ر و).
    Right,
    /// Tatweel: joins both sides, keeps its shape.
    Causing,
    /// Combining marks: ignored when looking for neighbours.
    Transparent,
    /// Everything else.
    None,
}

/// Letters U+0621..=U+064A that have presentation forms, with their joining type; the forms
/// follow one another in FE80.. in this order (1 form for hamza, 2 for right-joining, 4 for
/// dual-joining letters).
fn joining(c: char) -> Joining {
    match c {
        '\u{0622}'..='\u{0625}' | '\u{0627}' | '\u{0629}' | '\u{062F}'..='\u{0632}' => {
            Joining::Right
        }
        '\u{0648}' | '\u{0649}' => Joining::Right,
        '\u{0626}' | '\u{0628}' | '\u{062A}'..='\u{062E}' | '\u{0633}'..='\u{063A}' => {
            Joining::Dual
        }
        '\u{0641}'..='\u{0647}' | '\u{064A}' => Joining::Dual,
        '\u{0640}' => Joining::Causing,
        '\u{064B}'..='\u{065F}' | '\u{0670}' => Joining::Transparent,
        _ => Joining::None,
    }
}

/// The first presentation form (isolated) of a letter with forms, and how many it has.
fn forms(c: char) -> Option<(u32, u32)> {
    let count = |ch: char| match ch {
        '\u{0621}' => 1,
        _ => match joining(ch) {
            Joining::Right => 2,
            Joining::Dual => 4,
            _ => 0,
        },
    };
    let letters = ('\u{0621}'..='\u{063A}').chain('\u{0641}'..='\u{064A}');
    let mut base = 0xFE80;
    for ch in letters {
        let n = count(ch);
        if ch == c {
            return (n > 0).then_some((base, n));
        }
        base += n;
    }
    None
}

/// The lam-alef ligature's isolated form for the alef variant, if `c` is an alef.
fn lam_alef(c: char) -> Option<u32> {
    match c {
        '\u{0622}' => Some(0xFEF5),
        '\u{0623}' => Some(0xFEF7),
        '\u{0625}' => Some(0xFEF9),
        '\u{0627}' => Some(0xFEFB),
        _ => None,
    }
}

/// Whether `text` holds letters written right to left (Arabic or Hebrew blocks).
pub fn is_rtl_text(text: &str) -> bool {
    text.chars().any(is_rtl_char)
}

fn is_rtl_char(c: char) -> bool {
    matches!(c as u32, 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF)
}

/// Maps Arabic letters to their contextual presentation forms, in logical order.
pub fn shape_arabic(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    // The joining type of the nearest non-transparent neighbour on each side.
    let neighbour = |from: usize, step: isize| -> Joining {
        let mut i = from as isize + step;
        while i >= 0 && (i as usize) < chars.len() {
            let j = joining(chars[i as usize]);
            if j != Joining::Transparent {
                return j;
            }
            i += step;
        }
        Joining::None
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let Some((base, count)) = forms(c) else {
            out.push(c);
            i += 1;
            continue;
        };
        let prev = neighbour(i, -1);
        let joins_prev = matches!(prev, Joining::Dual | Joining::Causing) && count >= 2;
        // Lam followed by an alef becomes one right-joining ligature.
        if c == '\u{0644}'
            && let Some(lig) = chars.get(i + 1).copied().and_then(lam_alef)
        {
            let code = lig + u32::from(joins_prev);
            out.push(char::from_u32(code).unwrap_or(c));
            i += 2;
            continue;
        }
        let next = neighbour(i, 1);
        let joins_next =
            count == 4 && matches!(next, Joining::Dual | Joining::Right | Joining::Causing);
        let offset = match (joins_prev, joins_next) {
            (false, false) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (true, true) => 3,
        };
        out.push(char::from_u32(base + offset).unwrap_or(c));
        i += 1;
    }
    out
}

/// Direction class of a character for reordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Rtl,
    Ltr,
    Neutral,
}

fn dir(c: char) -> Dir {
    if is_rtl_char(c) {
        Dir::Rtl
    } else if c.is_alphanumeric() {
        Dir::Ltr
    } else {
        Dir::Neutral
    }
}

fn mirror(c: char) -> char {
    match c {
        '(' => ')',
        ')' => '(',
        '[' => ']',
        ']' => '[',
        '{' => '}',
        '}' => '{',
        '<' => '>',
        '>' => '<',
        '«' => '»',
        '»' => '«',
        _ => c,
    }
}

/// Puts one line (logical order) into left-to-right drawing order. With `rtl` the line's base
/// direction is right to left: runs are laid out from the right, Arabic runs reversed and
/// mirrored, left-to-right runs (Latin words, digits, `A042`) kept in reading order. Neutral
/// characters between two left-to-right characters belong to that run; others take the
/// line's direction. Without `rtl` the line is returned unchanged.
pub fn visual_order(line: &str, rtl: bool) -> String {
    if !rtl {
        return line.to_string();
    }
    let chars: Vec<char> = line.chars().collect();
    let strong: Vec<Dir> = chars.iter().map(|&c| dir(c)).collect();
    let resolved: Vec<Dir> = (0..chars.len())
        .map(|i| match strong[i] {
            Dir::Neutral => {
                let before = strong[..i].iter().rev().find(|d| **d != Dir::Neutral);
                let after = strong[i + 1..].iter().find(|d| **d != Dir::Neutral);
                if before == Some(&Dir::Ltr) && after == Some(&Dir::Ltr) {
                    Dir::Ltr
                } else {
                    Dir::Rtl
                }
            }
            d => d,
        })
        .collect();
    // Split into runs, then lay the runs out right to left.
    let mut runs: Vec<(Dir, Vec<char>)> = Vec::new();
    for (c, d) in chars.into_iter().zip(resolved) {
        match runs.last_mut() {
            Some((rd, run)) if *rd == d => run.push(c),
            _ => runs.push((d, vec![c])),
        }
    }
    let mut out = String::with_capacity(line.len());
    for (d, run) in runs.into_iter().rev() {
        match d {
            Dir::Ltr => out.extend(run),
            _ => out.extend(run.into_iter().rev().map(mirror)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_table_lines_up_with_unicode() {
        assert_eq!(forms('\u{0621}'), Some((0xFE80, 1)));
        assert_eq!(forms('\u{0627}'), Some((0xFE8D, 2)));
        assert_eq!(forms('\u{0628}'), Some((0xFE8F, 4)));
        assert_eq!(forms('\u{0641}'), Some((0xFED1, 4)));
        assert_eq!(forms('\u{064A}'), Some((0xFEF1, 4)));
        assert_eq!(forms('a'), None);
    }

    #[test]
    fn word_gets_initial_medial_final_forms() {
        // رقمك: reh (right-joining, isolated since nothing before), qaf initial, meem medial,
        // kaf final.
        let shaped: Vec<u32> = shape_arabic("رقمك").chars().map(|c| c as u32).collect();
        assert_eq!(shaped, vec![0xFEAD, 0xFED7, 0xFEE4, 0xFEDA]);
    }

    #[test]
    fn right_joining_letter_breaks_the_word() {
        // دور: dal isolated (does not join forward), waw isolated, reh isolated.
        let shaped: Vec<u32> = shape_arabic("دور").chars().map(|c| c as u32).collect();
        assert_eq!(shaped, vec![0xFEA9, 0xFEED, 0xFEAD]);
        // باب: beh initial, alef final, beh isolated.
        let shaped: Vec<u32> = shape_arabic("باب").chars().map(|c| c as u32).collect();
        assert_eq!(shaped, vec![0xFE91, 0xFE8E, 0xFE8F]);
    }

    #[test]
    fn lam_alef_ligature() {
        // سلام: seen initial, lam-alef final ligature, meem isolated.
        let shaped: Vec<u32> = shape_arabic("سلام").chars().map(|c| c as u32).collect();
        assert_eq!(shaped, vec![0xFEB3, 0xFEFC, 0xFEE1]);
        // لا alone: isolated ligature.
        assert_eq!(shape_arabic("لا"), "\u{FEFB}");
    }

    #[test]
    fn latin_is_untouched() {
        assert_eq!(shape_arabic("A042 Kela"), "A042 Kela");
    }

    #[test]
    fn visual_order_keeps_numbers_readable() {
        // Logical "ab: 12" with a, b standing in for Arabic letters.
        let line = "\u{FE8F}\u{FEA9}: 12";
        assert_eq!(visual_order(line, true), "12 :\u{FEA9}\u{FE8F}");
        assert_eq!(
            visual_order("\u{FE8F} A042 Kela \u{FEA9}", true),
            "\u{FEA9} A042 Kela \u{FE8F}"
        );
        assert_eq!(visual_order("\u{FE8F} (1)", true), "(1) \u{FE8F}");
        assert_eq!(visual_order("abc: 1", false), "abc: 1");
    }
}
