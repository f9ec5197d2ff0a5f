//! Ids as types: a site, unit, service, counter or device id, and a ticket's token.
//!
//! Each can only be made by parsing (`parse`, `FromStr`, or deserializing), which checks its form once;
//! whatever holds one need not check again. An id is lowercase ASCII letters, digits and `-`, 1 to 64
//! characters (the form the config file, the API's paths and the topics use); a token is 16 to 64
//! characters of `A-Z a-z 0-9 - _` (what `random_token` makes), or empty once blanked after its day. They read as `&str` (`Deref`,
//! `Borrow<str>`), so a map keyed by an id is looked up with a plain `&str`, and compare with strings.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadId {
    pub what: &'static str,
    pub value: String,
}

impl fmt::Display for BadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.value.chars().take(80).collect();
        if self.what == "ticket token" {
            write!(f, "'{shown}' is not a ticket token")
        } else {
            write!(
                f,
                "{} id '{shown}' must be 1 to 64 lowercase letters, digits and '-'",
                self.what
            )
        }
    }
}

impl std::error::Error for BadId {}

/// The form of every id: lowercase ASCII letters, digits and `-`, 1 to 64 characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A token, or the empty token a ticket keeps once its token is blanked after its day (docs/privacy.md).
fn valid_token(t: &str) -> bool {
    t.is_empty()
        || (16..=64).contains(&t.len())
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Declares one id type: a checked `String` that reads as `&str`.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<$name, BadId> {
                let s = s.into();
                if $check(&s) {
                    Ok($name(s))
                } else {
                    Err(BadId { what: $what, value: s })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = BadId;
            fn try_from(s: String) -> Result<$name, BadId> {
                $name::parse(s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<$name, BadId> {
                $name::parse(s)
            }
        }
        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }
        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

id_type!(
    /// A site (a service point): `iso-omena`.
    SiteId, "site", valid_id
);
id_type!(
    /// A unit of a site (Kela, the library): `kela`.
    UnitId, "unit", valid_id
);
id_type!(
    /// A service customers take a ticket for, or a sensitive series' public group (`group-h`).
    ServiceId, "service", valid_id
);
id_type!(
    /// A counter (a desk or room); unique across sites.
    CounterId, "counter", valid_id
);
id_type!(
    /// A kiosk, display or print agent.
    DeviceId, "device", valid_id
);
id_type!(
    /// A ticket's secret: whoever holds it may follow and cancel the ticket. Never on a public topic or
    /// in a log.
    TicketToken, "ticket token", valid_token
);

impl TicketToken {
    /// The token a ticket keeps once its token is blanked after its day: it matches no request.
    pub fn blanked() -> TicketToken {
        TicketToken(String::new())
    }
    pub fn is_blank(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_once_when_made() {
        assert_eq!(SiteId::parse("iso-omena").unwrap(), "iso-omena");
        for bad in ["", "Iso", "a b", "ä", "a_b", &"x".repeat(65)] {
            let e = ServiceId::parse(bad).unwrap_err();
            assert!(e.to_string().contains("service id"), "{e}");
        }
        let from_json: Result<CounterId, _> = serde_json::from_str("\"K1\"");
        assert!(from_json.is_err());
        let ok: CounterId = serde_json::from_str("\"k1\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"k1\"");
        let mut m = std::collections::HashMap::new();
        m.insert(ok.clone(), 1);
        assert_eq!(m.get("k1"), Some(&1));
    }

    #[test]
    fn a_token_is_long_and_plain() {
        assert!(TicketToken::parse("abcdefghijklmnop").is_ok());
        assert!(TicketToken::parse("short").is_err());
        assert!(TicketToken::parse("").is_ok(), "a blanked token");
        assert!(TicketToken::parse("abcdefghijklmno/").is_err());
        let e = TicketToken::parse("abc").unwrap_err();
        assert_eq!(e.to_string(), "'abc' is not a ticket token");
    }
}
