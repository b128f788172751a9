//! The [`Profile::Realistic`](crate::Profile::Realistic) data: value distributions shaped
//! like real breach dumps, for measuring index size and compression honestly.
//!
//! The synthetic profile draws hashes as random hex and passwords as a word plus a random
//! number, which no compressor can shrink and no two records share. Real dumps differ:
//! - passwords follow a heavy-tailed popularity (`123456` is in every dump), people reuse
//!   their own password across sites, and the rest are unique strings;
//! - unsalted hashes (`sha1`, `ntlm`) repeat whenever the password repeats; salted
//!   (`sha256` with a salt) and slow (`bcrypt`) hashes are unique;
//! - e-mail domains are mostly a few free-mail providers plus a long tail of company
//!   domains; names, streets, cities and stealer-log URLs have long-tailed vocabularies.
//!
//! Every vocabulary here is computed from a rank (no tables grow with the data), so the
//! generator stays streaming and deterministic.

use crate::rng::{SplitMix64, Zipf, derive};
use std::fmt::Write as _;

const TAG_WORD: u64 = 0x57;
const TAG_PERSONAL: u64 = 0x9A;

/// Syllables that generated words (names, companies, streets, cities) are made of.
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "ten", "vo", "shi", "ber", "an", "el", "dor", "fin", "gar", "hol", "ist", "jor", "kel",
    "lum", "mar", "nor", "ost", "pel", "quin", "ros", "sal", "tor", "ul", "ven", "wes", "yar", "zen", "bri", "cla",
    "dru", "fla", "gro", "ha", "ne", "so", "ti", "ma", "li", "ber", "son", "ton", "ley", "ford", "wick",
];

/// Free-mail and ISP domains, most popular first (drawn with a Zipf skew).
const FREE_MAIL: &[&str] = &[
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
    "hotmail.co.uk",
    "live.com",
    "orange.fr",
    "free.fr",
    "libero.it",
    "qq.com",
    "163.com",
    "protonmail.com",
    "comcast.net",
    "msn.com",
    "yahoo.co.uk",
    "btinternet.com",
    "t-online.de",
    "laposte.net",
    "rambler.ru",
    "ukr.net",
    "wp.pl",
    "o2.pl",
    "seznam.cz",
    "naver.com",
    "rediffmail.com",
    "bigpond.com",
    "shaw.ca",
    "sbcglobal.net",
    "att.net",
    "verizon.net",
    "mail.com",
    "zoho.com",
    "gmx.net",
    "yahoo.fr",
];

const COMPANY_SUFFIXES: &[&str] =
    &["", "", "", "tech", "group", "-solutions", "corp", "systems", "labs", "consulting", "media", "-gmbh"];
const TLDS: &[&str] = &[".com", ".com", ".com", ".com", ".de", ".co.uk", ".fr", ".net", ".io", ".nl", ".org", ".it"];
const STREET_SUFFIXES: &[&str] =
    &["Street", "Road", "Avenue", "Lane", "Drive", "Way", "straße", "weg", "Court", "Place", "Boulevard"];

/// The most common passwords, most popular first.
const TOP_PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "123456789",
    "12345678",
    "12345",
    "qwerty",
    "1234567",
    "111111",
    "1234567890",
    "123123",
    "abc123",
    "1234",
    "password1",
    "iloveyou",
    "1q2w3e4r",
    "000000",
    "qwerty123",
    "zaq12wsx",
    "dragon",
    "sunshine",
    "princess",
    "letmein",
    "654321",
    "monkey",
    "27653",
    "1qaz2wsx",
    "123321",
    "qwertyuiop",
    "superman",
    "asdfghjkl",
    "football",
    "baseball",
    "welcome",
    "shadow",
    "master",
    "trustno1",
    "hunter2",
    "starwars",
    "passw0rd",
    "michael",
    "jordan23",
    "liverpool",
    "charlie",
    "daniel",
    "soccer",
    "killer",
    "pokemon",
    "freedom",
    "whatever",
    "qazwsx",
    "ninja",
    "azerty",
    "qwertz",
    "hallo123",
    "passwort",
    "motdepasse",
    "contraseña",
    "пароль",
    "solo",
    "loveme",
    "matrix",
    "secret",
    "admin",
    "summer",
    "winter",
    "berlin",
    "batman",
    "cookie",
    "flower",
    "ginger",
];
const PASSWORD_DECORATIONS: &[&str] =
    &["1", "12", "123", "!", "1!", "2020", "2021", "2019", "01", "7", "69", "99", "#", "@", "2022", "11", "13"];
const UNIQUE_ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!@#$%&*-_.";

/// Top login pages of stealer logs, most frequent first.
const TOP_SITES: &[&str] = &[
    "https://accounts.google.com/signin/v2/identifier",
    "https://www.facebook.com/login.php",
    "https://login.live.com/login.srf",
    "https://www.instagram.com/accounts/login/",
    "https://www.netflix.com/login",
    "https://discord.com/login",
    "https://steamcommunity.com/login/home/",
    "https://www.roblox.com/login",
    "https://twitter.com/i/flow/login",
    "https://www.amazon.com/ap/signin",
    "https://www.paypal.com/signin",
    "https://github.com/session",
    "https://www.linkedin.com/login",
    "https://login.yahoo.com/",
    "https://www.tiktok.com/login",
    "https://accounts.spotify.com/en/login",
    "https://www.epicgames.com/id/login",
    "https://www.twitch.tv/login",
    "https://auth.riotgames.com/login",
    "https://www.ebay.com/signin/",
    "https://outlook.live.com/owa/",
    "https://mail.yandex.ru/",
    "https://vk.com/login",
    "https://ok.ru/",
    "android://hash@com.instagram.android/",
    "android://hash@com.facebook.katana/",
    "https://www.binance.com/en/login",
    "https://www.coinbase.com/signin",
];
const LOGIN_HOSTS: &[&str] = &["www", "login", "portal", "secure", "my", "app", "account", "mail", "admin", "vpn"];
const LOGIN_PATHS: &[&str] = &[
    "login",
    "signin",
    "wp-login.php",
    "user/login",
    "auth/login",
    "account/login?next=%2Fdashboard",
    "index.php?route=account/login",
    "owa/auth/logon.aspx",
    "customer/account/login/",
    "",
];

/// A pronounceable word of 2-3 syllables, a pure function of `(tag, rank)`.
pub(crate) fn push_word(out: &mut String, tag: u64, rank: u64) {
    let mut rng = SplitMix64::new(derive(TAG_WORD, tag, rank));
    let n = 2 + rng.below(2);
    for _ in 0..n {
        out.push_str(rng.pick(SYLLABLES));
    }
}

/// Capitalizes the first letter of `out[start..]` (ASCII words only).
fn capitalize_from(out: &mut String, start: usize) {
    if let Some(first) = out.get(start..start + 1) {
        let upper = first.to_ascii_uppercase();
        out.replace_range(start..start + 1, &upper);
    }
}

/// Long-tail vocabularies shared by every identity of one generator run.
pub(crate) struct Vocab {
    free_mail: Zipf,
    companies: Zipf,
    streets: Zipf,
    cities: Zipf,
    names: Zipf,
    passwords: Zipf,
    top_sites: Zipf,
    sites: Zipf,
}

impl Vocab {
    pub(crate) fn new() -> Vocab {
        Vocab {
            free_mail: Zipf::new(FREE_MAIL.len() as u64, 1.1),
            companies: Zipf::new(200_000, 0.9),
            streets: Zipf::new(50_000, 0.8),
            cities: Zipf::new(5_000, 1.0),
            names: Zipf::new(100_000, 1.0),
            passwords: Zipf::new(2_000_000, 0.9),
            top_sites: Zipf::new(TOP_SITES.len() as u64, 1.0),
            sites: Zipf::new(500_000, 0.8),
        }
    }

    /// An e-mail domain: a free-mail provider (two thirds) or a company domain.
    pub(crate) fn push_domain(&self, out: &mut String, rng: &mut SplitMix64) {
        if rng.chance(0.66) {
            let k = self.free_mail.sample(rng) - 1;
            out.push_str(FREE_MAIL.get(k as usize).copied().unwrap_or("gmail.com"));
        } else {
            self.push_company_domain(out, self.companies.sample(rng));
        }
    }

    fn push_company_domain(&self, out: &mut String, rank: u64) {
        push_word(out, 1, rank);
        let mut rng = SplitMix64::new(derive(TAG_WORD, 2, rank));
        out.push_str(rng.pick(COMPANY_SUFFIXES));
        out.push_str(rng.pick(TLDS));
    }

    /// A rare first or last name (the common ones come from the identity tables).
    pub(crate) fn push_name(&self, out: &mut String, tag: u64, rng: &mut SplitMix64) {
        push_word(out, 10 + tag, self.names.sample(rng));
    }

    /// `12 Kalomi Road, Torven 04711`.
    pub(crate) fn push_address(&self, out: &mut String, rng: &mut SplitMix64) {
        let _ = write!(out, "{} ", 1 + rng.below(300));
        let start = out.len();
        let street = self.streets.sample(rng);
        push_word(out, 3, street);
        capitalize_from(out, start);
        out.push(' ');
        out.push_str(SplitMix64::new(derive(TAG_WORD, 4, street)).pick(STREET_SUFFIXES));
        out.push_str(", ");
        let start = out.len();
        let city = self.cities.sample(rng);
        push_word(out, 5, city);
        capitalize_from(out, start);
        let zip = SplitMix64::new(derive(TAG_WORD, 6, city)).below(100_000);
        let _ = write!(out, " {zip:05}");
    }

    /// A password drawn from the population: a popular one (rank-skewed) or a unique one.
    pub(crate) fn push_password(&self, out: &mut String, rng: &mut SplitMix64) {
        if rng.chance(0.45) {
            push_common_password(out, self.passwords.sample(rng) - 1);
        } else {
            push_unique_password(out, rng);
        }
    }

    /// The password identity `index` uses on most sites.
    pub(crate) fn push_personal_password(&self, out: &mut String, seed: u64, index: u64) {
        let mut rng = SplitMix64::new(derive(seed, TAG_PERSONAL, index));
        self.push_password(out, &mut rng);
    }

    /// A stealer-log URL: a big site's login page or a long-tail company login.
    pub(crate) fn push_url(&self, out: &mut String, rng: &mut SplitMix64) {
        if rng.chance(0.6) {
            let k = self.top_sites.sample(rng) - 1;
            out.push_str(TOP_SITES.get(k as usize).copied().unwrap_or("https://example.com/login"));
        } else {
            let rank = self.sites.sample(rng);
            let mut site = SplitMix64::new(derive(TAG_WORD, 7, rank));
            out.push_str("https://");
            out.push_str(site.pick(LOGIN_HOSTS));
            out.push('.');
            self.push_company_domain(out, rank);
            out.push('/');
            out.push_str(site.pick(LOGIN_PATHS));
        }
    }
}

/// The password of popularity rank `rank` (0 = the most common).
pub(crate) fn push_common_password(out: &mut String, rank: u64) {
    let n = TOP_PASSWORDS.len() as u64;
    if rank < n {
        out.push_str(TOP_PASSWORDS[rank as usize]);
        return;
    }
    // Below the top list: a word (a top password or a generated one) with a decoration.
    let mut rng = SplitMix64::new(derive(TAG_WORD, 8, rank));
    let start = out.len();
    if rng.chance(0.3) {
        out.push_str(rng.pick(TOP_PASSWORDS));
    } else {
        push_word(out, 9, rank / 4);
    }
    if rng.chance(0.3) {
        capitalize_from(out, start);
    }
    out.push_str(rng.pick(PASSWORD_DECORATIONS));
}

/// A password nobody else has: random characters, or a word with digits and a symbol.
pub(crate) fn push_unique_password(out: &mut String, rng: &mut SplitMix64) {
    if rng.chance(0.5) {
        let len = 8 + rng.below(9);
        for _ in 0..len {
            out.push(rng.pick(UNIQUE_ALPHABET) as char);
        }
    } else {
        let start = out.len();
        push_word(out, 9, rng.below(1 << 40));
        capitalize_from(out, start);
        let _ = write!(out, "{}{}", rng.below(10_000), rng.pick(&["!", "?", "#", ".", "$", ""]));
    }
}

/// Lower- or upper-case hex of `bytes`.
pub(crate) fn push_hex_bytes(out: &mut String, bytes: &[u8], upper: bool) {
    for b in bytes {
        if upper {
            let _ = write!(out, "{b:02X}");
        } else {
            let _ = write!(out, "{b:02x}");
        }
    }
}

/// SHA-1 of the password, lower-case hex (an unsalted hash repeats with the password).
pub(crate) fn push_sha1(out: &mut String, password: &str) {
    use sha1::Digest;
    push_hex_bytes(out, &sha1::Sha1::digest(password.as_bytes()), false);
}

/// NTLM of the password: MD4 of its UTF-16LE code units.
pub(crate) fn push_ntlm(out: &mut String, password: &str, upper: bool) {
    use md4::Digest;
    let mut hasher = md4::Md4::new();
    for unit in password.encode_utf16() {
        hasher.update(unit.to_le_bytes());
    }
    push_hex_bytes(out, &hasher.finalize(), upper);
}

/// SHA-256 of salt followed by password, lower-case hex.
pub(crate) fn push_salted_sha256(out: &mut String, salt: &str, password: &str) {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(password.as_bytes());
    push_hex_bytes(out, &hasher.finalize(), false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hashes() {
        let mut s = String::new();
        push_sha1(&mut s, "password");
        assert_eq!(s, "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8");
        s.clear();
        push_ntlm(&mut s, "password", true);
        assert_eq!(s, "8846F7EAEE8FB117AD06BDD830B7586C");
        s.clear();
        push_salted_sha256(&mut s, "", "abc");
        assert_eq!(s, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn vocabularies_are_pure_functions_of_their_rank() {
        let mut a = String::new();
        let mut b = String::new();
        push_common_password(&mut a, 12_345);
        push_common_password(&mut b, 12_345);
        assert_eq!(a, b);
        a.clear();
        push_common_password(&mut a, 0);
        assert_eq!(a, "123456");
    }

    #[test]
    fn common_passwords_repeat_and_unique_ones_do_not() {
        let vocab = Vocab::new();
        let mut rng = SplitMix64::new(3);
        let mut seen = std::collections::HashMap::<String, u32>::new();
        for _ in 0..20_000 {
            let mut p = String::new();
            vocab.push_password(&mut p, &mut rng);
            assert!(!p.is_empty());
            *seen.entry(p).or_default() += 1;
        }
        // The most common password is frequent; most distinct passwords appear once.
        let top = seen.get("123456").copied().unwrap_or(0);
        assert!(top > 100, "123456 seen {top} times");
        let singles = seen.values().filter(|&&c| c == 1).count();
        assert!(singles > seen.len() / 2, "{singles} of {}", seen.len());
    }
}
