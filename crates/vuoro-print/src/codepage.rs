//! Code pages a printer can be set to, and strict text encoding for them.
//!
//! Text is only ever sent as single bytes of the printer's code page. A character the page
//! lacks is an error here (never a `?`, never UTF-8); the layout then rasterises that line.
//! Control characters (below 0x20 and 0x7F) never reach the printer as text: they would be
//! commands. They are turned into spaces before encoding.

use std::fmt;
use std::str::FromStr;

use oem_cp::OEMCPHashMap;
use oem_cp::code_table::{
    DECODING_TABLE_CP437, DECODING_TABLE_CP850, DECODING_TABLE_CP858, DECODING_TABLE_CP865,
    DECODING_TABLE_CP866, ENCODING_TABLE_CP437, ENCODING_TABLE_CP850, ENCODING_TABLE_CP858,
    ENCODING_TABLE_CP865, ENCODING_TABLE_CP866,
};
use serde::{Deserialize, Serialize};

use crate::PrintError;

/// A single-byte code page the printer is switched to with `ESC t n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CodePage {
    /// US / original IBM PC.
    Cp437,
    /// Western European (Latin-1 letters).
    Cp850,
    /// CP850 with the euro sign at 0xD5: the default for Finland.
    Cp858,
    /// Nordic.
    Cp865,
    /// Cyrillic (Russian; not the Ukrainian `і`).
    Cp866,
}

impl CodePage {
    /// Every supported page, in the order the docs list them.
    pub const ALL: [CodePage; 5] = [
        CodePage::Cp437,
        CodePage::Cp850,
        CodePage::Cp858,
        CodePage::Cp865,
        CodePage::Cp866,
    ];

    /// The name used in settings and on the command line (`cp858`).
    pub fn name(self) -> &'static str {
        match self {
            CodePage::Cp437 => "cp437",
            CodePage::Cp850 => "cp850",
            CodePage::Cp858 => "cp858",
            CodePage::Cp865 => "cp865",
            CodePage::Cp866 => "cp866",
        }
    }

    /// The `ESC t n` number on Epson TM-T20 / TM-T88. Clones differ: a starting point to
    /// check with `vuoro print-sample`, overridden per printer by the `esc_t` setting.
    pub fn epson_esc_t(self) -> u8 {
        match self {
            CodePage::Cp437 => 0,
            CodePage::Cp850 => 2,
            CodePage::Cp858 => 19,
            CodePage::Cp865 => 5,
            CodePage::Cp866 => 17,
        }
    }

    fn encoding_table(self) -> &'static OEMCPHashMap<char, u8> {
        match self {
            CodePage::Cp437 => &ENCODING_TABLE_CP437,
            CodePage::Cp850 => &ENCODING_TABLE_CP850,
            CodePage::Cp858 => &ENCODING_TABLE_CP858,
            CodePage::Cp865 => &ENCODING_TABLE_CP865,
            CodePage::Cp866 => &ENCODING_TABLE_CP866,
        }
    }

    fn decoding_table(self) -> &'static [char; 128] {
        match self {
            CodePage::Cp437 => &DECODING_TABLE_CP437,
            CodePage::Cp850 => &DECODING_TABLE_CP850,
            CodePage::Cp858 => &DECODING_TABLE_CP858,
            CodePage::Cp865 => &DECODING_TABLE_CP865,
            CodePage::Cp866 => &DECODING_TABLE_CP866,
        }
    }

    /// Whether the page has this character (control characters count as present: they
    /// become spaces).
    pub fn covers(self, c: char) -> bool {
        (c as u32) < 0x80 || self.encoding_table().contains_key(&c)
    }

    /// Encodes `text` strictly: `None` when any character is missing from the page.
    /// Control characters become spaces, so the result never contains a command byte.
    pub fn encode(self, text: &str) -> Option<Vec<u8>> {
        text.chars()
            .map(|c| match c as u32 {
                0..=0x1F | 0x7F => Some(b' '),
                0x20..=0x7E => Some(c as u8),
                _ => self.encoding_table().get(&c).copied(),
            })
            .collect()
    }

    /// The characters of `text` that the page lacks (for error messages).
    pub fn missing(self, text: &str) -> Vec<char> {
        let mut out: Vec<char> = text.chars().filter(|&c| !self.covers(c)).collect();
        out.dedup();
        out
    }

    /// Decodes one byte of this page (all supported pages define every byte).
    pub fn decode_byte(self, b: u8) -> char {
        if b < 0x80 {
            b as char
        } else {
            self.decoding_table()[usize::from(b - 0x80)]
        }
    }
}

impl fmt::Display for CodePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CodePage {
    type Err = PrintError;

    /// Accepts `cp858`, `CP858`, `pc858` and `858`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let digits = lower
            .strip_prefix("cp")
            .or_else(|| lower.strip_prefix("pc"))
            .unwrap_or(&lower);
        CodePage::ALL
            .into_iter()
            .find(|cp| &cp.name()[2..] == digits)
            .ok_or_else(|| PrintError::UnknownCodePage(s.to_string()))
    }
}

impl TryFrom<String> for CodePage {
    type Error = PrintError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CodePage> for String {
    fn from(cp: CodePage) -> String {
        cp.name().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nordic_letters_share_bytes_in_latin_pages() {
        for cp in [
            CodePage::Cp437,
            CodePage::Cp850,
            CodePage::Cp858,
            CodePage::Cp865,
        ] {
            assert_eq!(
                cp.encode("äöåÄÖÅ").unwrap(),
                vec![0x84, 0x94, 0x86, 0x8E, 0x99, 0x8F],
                "{cp}"
            );
        }
    }

    #[test]
    fn euro_only_in_cp858() {
        assert_eq!(CodePage::Cp858.encode("€").unwrap(), vec![0xD5]);
        assert_eq!(CodePage::Cp850.encode("€"), None);
        assert_eq!(CodePage::Cp850.decode_byte(0xD5), 'ı');
    }

    #[test]
    fn cyrillic_needs_cp866_and_ukrainian_i_is_missing() {
        assert_eq!(CodePage::Cp858.encode("Привет"), None);
        assert_eq!(
            CodePage::Cp866.encode("Привет").unwrap(),
            vec![0x8F, 0xE0, 0xA8, 0xA2, 0xA5, 0xE2]
        );
        assert_eq!(CodePage::Cp866.missing("Київ і"), vec!['і']);
    }

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(
            CodePage::Cp437.encode("a\x1b@b\x7f").unwrap(),
            b"a @b ".to_vec()
        );
    }

    #[test]
    fn decode_inverts_encode() {
        for cp in CodePage::ALL {
            for b in 0x20u8..=0xFF {
                if b == 0x7F {
                    continue;
                }
                let c = cp.decode_byte(b);
                assert_eq!(cp.encode(&c.to_string()), Some(vec![b]), "{cp} {b:#x}");
            }
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!("CP858".parse::<CodePage>().unwrap(), CodePage::Cp858);
        assert_eq!("pc865".parse::<CodePage>().unwrap(), CodePage::Cp865);
        assert_eq!("866".parse::<CodePage>().unwrap(), CodePage::Cp866);
        assert!("cp1252".parse::<CodePage>().is_err());
    }
}
