//! What goes on a ticket. The caller has already localised everything in it; this crate only
//! adds the fixed wording from [`crate::labels`].

use serde::{Deserialize, Serialize};

/// One ticket to print, already in the customer's language.
///
/// Sensitive services must arrive here under their neutral public name: the ticket lies on
/// waiting-room tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketPrint {
    /// The site's name in the ticket's language (`Iso Omenan palvelutori`).
    pub site_name: String,
    /// The queue number (`A042`); printed very large, always left to right.
    pub number: String,
    /// The service, in the ticket's language (neutral wording for sensitive services).
    pub service_name: String,
    /// Where to wait, in the ticket's language (`Odota Kelan aulassa, vyöhyke B`); may be empty.
    #[serde(default)]
    pub wait_hint: String,
    /// People ahead in the queue (0 = next).
    pub people_ahead: u32,
    /// Estimated wait in minutes, `None` when unknown (the line is left out).
    #[serde(default)]
    pub eta_minutes: Option<u32>,
    /// Local issue time, already formatted (`23.11.2026 14.05`).
    pub issued_at: String,
    /// The customer's tracking page; goes into the QR code.
    pub track_url: String,
    /// The ticket's language code (`fi`, `sv`, `en`, `ru`, `et`, `ar`, `zh`, `so`, `uk`).
    pub lang: String,
    /// The service name in Finnish, printed under the customer's lines when `lang` is not `fi`.
    #[serde(default)]
    pub service_name_fi: Option<String>,
    /// Where to wait in Finnish, printed in the Finnish block when `lang` is not `fi`.
    #[serde(default)]
    pub wait_hint_fi: Option<String>,
}
