//! Who someone is, as opposed to what they are called (DESIGN.md §5): every token
//! and account names a stable `actor_id`, and separation of duties and
//! idempotency compare it, never display names. Without an explicit one, the
//! `actor_id` is the display name normalised, so that "Mgr 2250", "mgr 2250",
//! "Mgr\u{a0}2250" and "Mgr 2250\u{200b}" are one person.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The `actor_id` of a display name: Unicode NFKC, case-folded (lowercase, then
/// NFKC again, as NFKC_Casefold does for the letters of Italian names), format
/// and other invisible characters removed (zero-width spaces and joiners, soft
/// hyphens, bidirectional marks: general category Cf, and controls), every run
/// of whitespace one space, none at either end.
pub fn actor_id_of(display: &str) -> String {
    let folded: String = display
        .nfkc()
        .collect::<String>()
        .to_lowercase()
        .nfkc()
        .collect();
    let visible = folded.chars().filter(|c| {
        !matches!(
            c.general_category(),
            GeneralCategory::Format | GeneralCategory::Control
        ) || c.is_whitespace()
    });
    let mut id = String::with_capacity(folded.len());
    let mut space = false;
    for c in visible {
        if c.is_whitespace() {
            space = !id.is_empty();
            continue;
        }
        if space {
            id.push(' ');
            space = false;
        }
        id.push(c);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::actor_id_of;

    #[test]
    fn spellings_of_one_name_are_one_actor() {
        for spelling in [
            "Mgr 2250",
            "mgr 2250",
            "Mgr\u{a0}2250",
            "Mgr 2250\u{200b}",
            "  MGR\t 2250 ",
            "M\u{200d}gr\u{feff} 2250",
            "Ｍｇｒ ２２５０",
        ] {
            assert_eq!(actor_id_of(spelling), "mgr 2250", "{spelling:?}");
        }
        assert_ne!(actor_id_of("Mgr 2251"), actor_id_of("Mgr 2250"));
        assert_eq!(actor_id_of("Dott.ssa Niccolò"), "dott.ssa niccolò");
    }
}
