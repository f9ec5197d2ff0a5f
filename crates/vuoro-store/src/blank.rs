//! Forgetting ticket tokens in stored engine values, as the engine's own types: a `ticket_issued` event
//! and one site's state in a snapshot. A backend reads the stored value into these types, lets this module
//! clear the token (and the idempotency keys, which could find the ticket again) and writes the typed value
//! back; every other field comes back as it was.

use vuoro_engine::{Event, EventKind, SiteState, State, TicketToken};

/// Clears the token and the idempotency key of a `ticket_issued` event. True when there was one to clear.
pub fn forget_event_token(ev: &mut Event) -> bool {
    match &mut ev.kind {
        EventKind::TicketIssued {
            token, idempotency, ..
        } if !token.is_empty() || idempotency.is_some() => {
            *token = TicketToken::blanked();
            *idempotency = None;
            true
        }
        _ => false,
    }
}

/// Clears every ticket token of `site` in a snapshot's state, and the site's idempotency keys. True when
/// anything changed. Other sites are left alone (their day may not be over).
pub fn forget_site_tokens(state: &mut State, site: &str) -> bool {
    state.sites.get_mut(site).is_some_and(forget_tokens)
}

fn forget_tokens(site: &mut SiteState) -> bool {
    let mut changed = false;
    for t in site.tickets.values_mut() {
        if !t.token.is_empty() {
            t.token = TicketToken::blanked();
            changed = true;
        }
    }
    if !site.idempotency.is_empty() {
        site.idempotency.clear();
        changed = true;
    }
    changed
}
