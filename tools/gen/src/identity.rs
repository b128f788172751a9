//! Synthetic people: identity `i` of a seed is computed on the fly from `(seed, i)`, so
//! any number of identities costs no memory and a benchmark can recompute the e-mail of
//! any identity to query a known hit.
//!
//! Uniqueness: every e-mail local part is letters and separators followed by the decimal
//! index `i` (then an optional `+tag`), and every username is letters followed by `i`, so
//! two identities never share a normalized e-mail or username key.

use crate::realistic::Vocab;
use crate::rng::{SplitMix64, derive};

const TAG_IDENTITY: u64 = 0x1D;

const FIRST_NAMES: &[&str] = &[
    "john",
    "jane",
    "michael",
    "sarah",
    "david",
    "emma",
    "james",
    "olivia",
    "robert",
    "sophia",
    "william",
    "mia",
    "thomas",
    "laura",
    "daniel",
    "anna",
    "peter",
    "julia",
    "mark",
    "lisa",
    "josé",
    "zoë",
    "björn",
    "françois",
    "søren",
    "chloé",
    "renée",
    "jürgen",
    "ömer",
    "inés",
    "ana",
    "luis",
    "maria",
    "ahmed",
    "fatima",
    "wei",
    "yuki",
    "olga",
    "ivan",
    "kenji",
];
const LAST_NAMES: &[&str] = &[
    "smith",
    "doe",
    "johnson",
    "brown",
    "garcia",
    "miller",
    "davis",
    "wilson",
    "taylor",
    "anderson",
    "thomas",
    "moore",
    "martin",
    "lee",
    "walker",
    "hall",
    "young",
    "king",
    "müller",
    "martínez",
    "dubois",
    "rossi",
    "kowalski",
    "nguyen",
    "kim",
    "andersson",
    "novák",
    "silva",
    "öztürk",
    "petrov",
    "tanaka",
    "lópez",
    "hernández",
    "fischer",
    "weber",
];
const NICKS: &[&str] = &[
    "darkstar", "shadow", "gamer", "ninja", "dragon", "wolf", "pixel", "neo", "cyber", "ghost", "sniper", "blaze",
    "storm", "viper", "phoenix", "coder", "hacker", "raven", "zero", "frost",
];
/// Plain ASCII mail domains, most frequent first (drawn with a skew).
const DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "aol.com",
    "icloud.com",
    "mail.ru",
    "yandex.ru",
    "web.de",
    "gmx.de",
    "orange.fr",
    "libero.it",
    "qq.com",
    "protonmail.com",
    "comcast.net",
    "example.com",
    "example.org",
    "acme-corp.com",
    "company.co.uk",
    "uni-example.edu",
];
/// Internationalized domains: (Unicode spelling, ASCII/punycode spelling).
pub(crate) const IDN_DOMAINS: &[(&str, &str)] = &[
    ("bücher.de", "xn--bcher-kva.de"),
    ("müller.com", "xn--mller-kva.com"),
    ("café.fr", "xn--caf-dma.fr"),
    ("straße.de", "xn--strae-oqa.de"),
    ("münchen.de", "xn--mnchen-3ya.de"),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("例え.jp", "xn--r8jz45g.jp"),
];
const PLUS_TAGS: &[&str] = &["news", "shop", "spam", "work", "2019", "netflix", "bank"];
const STREETS: &[&str] = &[
    "Main Street",
    "Oak Avenue",
    "Elm Road",
    "Hauptstraße",
    "Rue de la Paix",
    "High Street",
    "Maple Drive",
    "Via Roma",
    "Park Lane",
    "Calle Mayor",
];
const CITIES: &[&str] =
    &["Springfield", "Berlin", "Paris", "London", "München", "Madrid", "Roma", "Kraków", "Zürich", "Portland"];

/// One synthetic person. All fields are in their canonical spelling; records may spell
/// the e-mail and username differently (case, Unicode form, punycode domain) but always
/// with the same normalized key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Index of the identity within its seed.
    pub index: u64,
    /// E-mail address, lower-case; an IDN domain is in its Unicode spelling.
    pub email: String,
    /// Username, lower-case, when the identity has one.
    pub username: Option<String>,
    /// Full name, capitalized.
    pub full_name: String,
    /// Phone number.
    pub phone: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub dob: String,
    /// Postal address (contains a comma).
    pub address: String,
    /// ASCII (punycode) spelling of the e-mail's domain when it is an IDN.
    pub(crate) email_ascii_domain: Option<&'static str>,
    /// Byte offset of the `@` in `email`.
    pub(crate) at: usize,
    /// Whether the local part holds non-ASCII letters.
    pub(crate) unicode_local: bool,
}

/// The identity `index` of `seed`.
pub fn identity(seed: u64, index: u64) -> Identity {
    let mut id = Identity::default();
    id.fill(seed, index);
    id
}

/// The canonical e-mail of identity `index` of `seed`. Every identity below
/// `GenSummary::distinct_identities` appears with this e-mail (in some spelling that
/// normalizes to the same key) in at least one valid record of the generated dumps.
pub fn identity_email(seed: u64, index: u64) -> String {
    identity(seed, index).email
}

/// The username of identity `index` of `seed`, if it has one. A username may appear in
/// no record (records may carry only the e-mail), so it is not a guaranteed hit.
pub fn identity_username(seed: u64, index: u64) -> Option<String> {
    identity(seed, index).username
}

/// An e-mail that no generated dump contains, whatever the seed: its domain
/// `absent.invalid` is never used by the generator. Use it for known misses.
pub fn miss_email(index: u64) -> String {
    format!("nobody{index}@absent.invalid")
}

/// A username that no generated dump contains (the generator never writes the prefix
/// `missing-user-`). Use it for known misses.
pub fn miss_username(index: u64) -> String {
    format!("missing-user-{index}")
}

/// Replaces the few accented letters used by the name tables with ASCII.
fn push_ascii_folded(out: &mut String, s: &str) {
    for c in s.chars() {
        let f = match c {
            'á' | 'ä' | 'å' | 'à' => 'a',
            'é' | 'ë' | 'è' => 'e',
            'í' => 'i',
            'ó' | 'ö' | 'ø' => 'o',
            'ü' | 'ú' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            _ => c,
        };
        out.push(f);
    }
}

fn push_capitalized(out: &mut String, s: &str) {
    let mut chars = s.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// Appends `s` in Unicode NFD for the precomposed letters used by the name tables.
pub(crate) fn push_nfd(out: &mut String, s: &str) {
    for c in s.chars() {
        let (base, mark) = match c {
            'á' => ('a', '\u{301}'),
            'é' => ('e', '\u{301}'),
            'í' => ('i', '\u{301}'),
            'ó' => ('o', '\u{301}'),
            'ú' => ('u', '\u{301}'),
            'ä' => ('a', '\u{308}'),
            'ë' => ('e', '\u{308}'),
            'ö' => ('o', '\u{308}'),
            'ü' => ('u', '\u{308}'),
            'è' => ('e', '\u{300}'),
            'à' => ('a', '\u{300}'),
            'å' => ('a', '\u{30A}'),
            'ç' => ('c', '\u{327}'),
            'ñ' => ('n', '\u{303}'),
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push(base);
        out.push(mark);
    }
}

impl Identity {
    /// Overwrites `self` with identity `index` of `seed`, reusing its buffers.
    pub(crate) fn fill(&mut self, seed: u64, index: u64) {
        self.fill_with(seed, index, None);
    }

    /// Overwrites `self` with identity `index` of `seed` in the realistic profile when
    /// `vocab` is given (long-tail names, company domains, generated streets and cities),
    /// else in the synthetic one. The uniqueness guarantee holds in both.
    pub(crate) fn fill_with(&mut self, seed: u64, index: u64, vocab: Option<&Vocab>) {
        use std::fmt::Write;
        let mut rng = SplitMix64::new(derive(seed, TAG_IDENTITY, index));
        self.index = index;
        let mut first_buf = String::new();
        let mut last_buf = String::new();
        let mut first: &str = rng.pick(FIRST_NAMES);
        let mut last: &str = rng.pick(LAST_NAMES);
        if let Some(v) = vocab {
            if rng.chance(0.3) {
                v.push_name(&mut first_buf, 0, &mut rng);
                first = &first_buf;
            }
            if rng.chance(0.5) {
                v.push_name(&mut last_buf, 1, &mut rng);
                last = &last_buf;
            }
        }

        self.full_name.clear();
        push_capitalized(&mut self.full_name, first);
        self.full_name.push(' ');
        push_capitalized(&mut self.full_name, last);

        // Local part: letters and separators, then the index (the uniqueness guarantee).
        let has_accent = !first.is_ascii() || !last.is_ascii();
        self.unicode_local = has_accent && rng.chance(0.25);
        let push_name = |out: &mut String, s: &str, unicode: bool| {
            if unicode { out.push_str(s) } else { push_ascii_folded(out, s) }
        };
        self.email.clear();
        let u = self.unicode_local;
        match rng.below(6) {
            0 => {
                push_name(&mut self.email, first, u);
                self.email.push('.');
                push_name(&mut self.email, last, u);
            }
            1 => {
                push_name(&mut self.email, first, u);
                push_name(&mut self.email, last, u);
            }
            2 => {
                let initial = first.chars().next().map(String::from).unwrap_or_default();
                push_name(&mut self.email, &initial, u);
                push_name(&mut self.email, last, u);
            }
            3 => {
                push_name(&mut self.email, first, u);
                self.email.push('_');
                push_name(&mut self.email, last, u);
            }
            4 => {
                push_name(&mut self.email, last, u);
                self.email.push('.');
                push_name(&mut self.email, first, u);
            }
            _ => push_name(&mut self.email, first, u),
        }
        self.unicode_local = !self.email.is_ascii();
        let _ = write!(self.email, "{index}");
        let idn = rng.chance(0.04);
        let domain: &str = if idn {
            let (unicode, ascii) = rng.pick(IDN_DOMAINS);
            self.email_ascii_domain = Some(ascii);
            unicode
        } else {
            self.email_ascii_domain = None;
            // Skewed choice: the first domains are the big providers.
            let r = rng.unit();
            DOMAINS[((r * r * r) * DOMAINS.len() as f64) as usize % DOMAINS.len()]
        };
        let mut domain_buf = String::new();
        let domain: &str = match vocab {
            Some(v) if !idn => {
                v.push_domain(&mut domain_buf, &mut rng);
                &domain_buf
            }
            _ => domain,
        };
        if !idn && rng.chance(0.03) {
            self.email.push('+');
            self.email.push_str(rng.pick(PLUS_TAGS));
        }
        self.at = self.email.len();
        self.email.push('@');
        self.email.push_str(domain);

        self.username = if rng.chance(0.6) {
            let mut name = self.username.take().unwrap_or_default();
            name.clear();
            if rng.chance(0.5) {
                name.push_str(rng.pick(NICKS));
            } else {
                push_ascii_folded(&mut name, first);
                push_ascii_folded(&mut name, &last[..last.char_indices().nth(1).map_or(1, |(i, _)| i)]);
            }
            let _ = write!(name, "{index}");
            Some(name)
        } else {
            None
        };

        self.phone.clear();
        let cc = rng.pick(&[1u32, 44, 49, 33, 34, 39, 7, 81, 86]);
        let _ = write!(self.phone, "+{cc} {:03} {:03} {:04}", rng.below(900) + 100, rng.below(1000), rng.below(10_000));
        self.dob.clear();
        let _ = write!(self.dob, "{}-{:02}-{:02}", 1940 + rng.below(66), 1 + rng.below(12), 1 + rng.below(28));
        self.address.clear();
        match vocab {
            Some(v) => v.push_address(&mut self.address, &mut rng),
            None => {
                let _ = write!(
                    self.address,
                    "{} {}, {} {:05}",
                    1 + rng.below(250),
                    rng.pick(STREETS),
                    rng.pick(CITIES),
                    rng.below(100_000)
                );
            }
        }
    }

    /// The local part of the e-mail (before `@`).
    pub(crate) fn local(&self) -> &str {
        &self.email[..self.at]
    }

    /// The domain of the e-mail (after `@`), Unicode spelling.
    pub(crate) fn domain(&self) -> &str {
        &self.email[self.at + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn identities_are_deterministic_and_unique() {
        let mut emails = HashSet::new();
        let mut users = HashSet::new();
        for i in 0..5000 {
            let a = identity(42, i);
            assert_eq!(a, identity(42, i));
            assert_eq!(a.email.matches('@').count(), 1);
            assert!(emails.insert(a.email.to_lowercase()), "{}", a.email);
            if let Some(u) = a.username {
                assert!(users.insert(u.clone()), "{u}");
                assert!(u.len() <= 128);
            }
        }
        assert!(!miss_email(3).contains("+"));
    }
}
