//! Record assets: the named fields a breach record can hold, their canonical names,
//! the aliases accepted in dump headers, and a compact bit set over them.
//!
//! The numeric value of each [`Asset`] is part of the on-disk format (it is the bit
//! position in a row's asset mask and the tag of its column file): never reorder.

use std::fmt;

/// Number of asset kinds.
pub const ASSET_COUNT: usize = 12;

/// One asset kind of a breach record.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Asset {
    /// E-mail address (an identifier).
    Email = 0,
    /// Username or login (an identifier).
    Username = 1,
    /// Password in clear text.
    PasswordPlaintext = 2,
    /// Password hash.
    PasswordHash = 3,
    /// Algorithm of `password_hash` (md5, sha1, bcrypt, ...).
    PasswordType = 4,
    /// Salt of `password_hash`.
    Salt = 5,
    /// Full name of the person.
    FullName = 6,
    /// Phone number.
    Phone = 7,
    /// Date of birth.
    Dob = 8,
    /// Postal address.
    Address = 9,
    /// IP address.
    IpAddress = 10,
    /// URL of the site the credential belongs to (stealer logs).
    TargetUrl = 11,
}

impl Asset {
    /// Every asset, in canonical (bit) order.
    pub const ALL: [Asset; ASSET_COUNT] = [
        Asset::Email,
        Asset::Username,
        Asset::PasswordPlaintext,
        Asset::PasswordHash,
        Asset::PasswordType,
        Asset::Salt,
        Asset::FullName,
        Asset::Phone,
        Asset::Dob,
        Asset::Address,
        Asset::IpAddress,
        Asset::TargetUrl,
    ];

    /// The canonical name, as used in results, catalogs and `--store`.
    pub const fn name(self) -> &'static str {
        match self {
            Asset::Email => "email",
            Asset::Username => "username",
            Asset::PasswordPlaintext => "password_plaintext",
            Asset::PasswordHash => "password_hash",
            Asset::PasswordType => "password_type",
            Asset::Salt => "salt",
            Asset::FullName => "full_name",
            Asset::Phone => "phone",
            Asset::Dob => "dob",
            Asset::Address => "address",
            Asset::IpAddress => "ip_address",
            Asset::TargetUrl => "target_url",
        }
    }

    /// The asset with this bit index (0..12), if any.
    pub const fn from_index(index: u8) -> Option<Asset> {
        if (index as usize) < ASSET_COUNT { Some(Asset::ALL[index as usize]) } else { None }
    }

    /// Bit index of this asset (its position in [`Asset::ALL`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Looks up a canonical name, exactly (no aliases, case-sensitive).
    pub fn from_name(name: &str) -> Option<Asset> {
        Asset::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Resolves a dump column or JSON key: case-insensitive, surrounding white space
    /// ignored, canonical names and the common aliases of SPEC §3
    /// (`mail`, `e-mail` → email; `user`, `login`, `user_name` → username; `password`,
    /// `pass`, `pw`, `pwd` → password_plaintext; `hash` → password_hash; `name` → full_name;
    /// `ip` → ip_address; `url` → target_url).
    pub fn from_column(column: &str) -> Option<Asset> {
        // Called for every key of every JSON record: lower-case on the stack. No name or
        // alias is longer than the buffer, so a longer column names no asset.
        let trimmed = column.trim().as_bytes();
        let mut buf = [0u8; 32];
        let lower = buf.get_mut(..trimmed.len())?;
        lower.copy_from_slice(trimmed);
        lower.make_ascii_lowercase();
        // ASCII lower-casing keeps UTF-8 valid.
        let lower = std::str::from_utf8(lower).ok()?;
        if let Some(asset) = Asset::from_name(lower) {
            return Some(asset);
        }
        Some(match lower {
            "mail" | "e-mail" | "e_mail" | "email_address" => Asset::Email,
            "user" | "login" | "user_name" | "user-name" => Asset::Username,
            "password" | "pass" | "pw" | "pwd" | "passwd" | "plaintext" => Asset::PasswordPlaintext,
            "hash" | "password-hash" | "passwordhash" => Asset::PasswordHash,
            "hash_type" | "hashtype" | "password-type" => Asset::PasswordType,
            "name" | "fullname" | "full-name" => Asset::FullName,
            "telephone" | "phone_number" | "mobile" => Asset::Phone,
            "date_of_birth" | "birthdate" | "birthday" => Asset::Dob,
            "ip" | "ipaddress" | "ip-address" => Asset::IpAddress,
            "url" | "site" | "host" => Asset::TargetUrl,
            _ => return None,
        })
    }

    /// Whether this asset is an identifier (a lookup key).
    pub const fn is_identifier(self) -> bool {
        matches!(self, Asset::Email | Asset::Username)
    }

    /// The Have I Been Pwned data class of this asset (SPEC §12): `Email addresses`,
    /// `Usernames`, `Passwords` (plaintext and hashed alike, as HIBP lists them), `Names`,
    /// `Phone numbers`, `Dates of birth`, `Physical addresses`, `IP addresses`, `URLs`
    /// (the sites of stealer-log credentials). `password_type` and `salt` describe a
    /// password hash and have no class of their own.
    pub const fn data_class(self) -> Option<&'static str> {
        Some(match self {
            Asset::Email => "Email addresses",
            Asset::Username => "Usernames",
            Asset::PasswordPlaintext | Asset::PasswordHash => "Passwords",
            Asset::PasswordType | Asset::Salt => return None,
            Asset::FullName => "Names",
            Asset::Phone => "Phone numbers",
            Asset::Dob => "Dates of birth",
            Asset::Address => "Physical addresses",
            Asset::IpAddress => "IP addresses",
            Asset::TargetUrl => "URLs",
        })
    }
}

/// The Have I Been Pwned data classes of a set of assets: each asset's
/// [`Asset::data_class`], sorted alphabetically (as HIBP lists them), without repeats.
///
/// ```
/// use breachdex::{AssetSet, data_classes_of};
/// let assets = AssetSet::parse_list("email,password_hash,password_type,password_plaintext").unwrap();
/// assert_eq!(data_classes_of(assets), ["Email addresses", "Passwords"]);
/// ```
pub fn data_classes_of(assets: AssetSet) -> Vec<&'static str> {
    let mut classes: Vec<&'static str> = assets.iter().filter_map(Asset::data_class).collect();
    classes.sort_unstable();
    classes.dedup();
    classes
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of assets, stored as a 16-bit mask (bit `i` = `Asset::ALL[i]`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AssetSet(u16);

impl AssetSet {
    /// The empty set.
    pub const EMPTY: AssetSet = AssetSet(0);
    /// Every asset.
    pub const ALL: AssetSet = AssetSet((1 << ASSET_COUNT) - 1);

    /// Builds a set from its on-disk mask; bits above the known assets are dropped.
    pub const fn from_bits_truncate(bits: u16) -> AssetSet {
        AssetSet(bits & AssetSet::ALL.0)
    }

    /// The on-disk mask.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether `asset` is in the set.
    pub const fn contains(self, asset: Asset) -> bool {
        self.0 & (1 << asset as u16) != 0
    }

    /// Adds `asset`.
    pub fn insert(&mut self, asset: Asset) {
        self.0 |= 1 << asset as u16;
    }

    /// Removes `asset`.
    pub fn remove(&mut self, asset: Asset) {
        self.0 &= !(1 << asset as u16);
    }

    /// Set union.
    pub const fn union(self, other: AssetSet) -> AssetSet {
        AssetSet(self.0 | other.0)
    }

    /// Set intersection.
    pub const fn intersection(self, other: AssetSet) -> AssetSet {
        AssetSet(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of assets in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The assets in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Asset> {
        Asset::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// The canonical names of the assets, in canonical order (as manifests list them).
    pub fn names(self) -> Vec<String> {
        self.iter().map(|a| a.name().to_string()).collect()
    }

    /// Parses a comma-separated list of canonical asset names or aliases
    /// (`email,password_hash`); `all` means every asset.
    ///
    /// # Errors
    /// [`UnknownAssetError`] naming the first entry that is no asset name or alias.
    pub fn parse_list(list: &str) -> Result<AssetSet, UnknownAssetError> {
        let mut set = AssetSet::EMPTY;
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.eq_ignore_ascii_case("all") {
                return Ok(AssetSet::ALL);
            }
            match Asset::from_column(part) {
                Some(asset) => set.insert(asset),
                None => return Err(UnknownAssetError { name: part.to_string() }),
            }
        }
        Ok(set)
    }
}

/// An asset list named something that is neither an asset nor an alias of one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown asset '{name}' (known: {known})", known = Asset::ALL.map(Asset::name).join(", "))]
pub struct UnknownAssetError {
    name: String,
}

impl UnknownAssetError {
    /// The list entry that is not an asset, as written (trimmed).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromIterator<Asset> for AssetSet {
    fn from_iter<I: IntoIterator<Item = Asset>>(iter: I) -> Self {
        let mut set = AssetSet::EMPTY;
        for asset in iter {
            set.insert(asset);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_indices_are_stable() {
        for (i, asset) in Asset::ALL.iter().enumerate() {
            assert_eq!(asset.index(), i);
            assert_eq!(Asset::from_name(asset.name()), Some(*asset));
            assert_eq!(Asset::from_index(i as u8), Some(*asset));
        }
        assert_eq!(Asset::from_index(12), None);
    }

    #[test]
    fn aliases_resolve_case_insensitively() {
        assert_eq!(Asset::from_column(" E-Mail "), Some(Asset::Email));
        assert_eq!(Asset::from_column("LOGIN"), Some(Asset::Username));
        assert_eq!(Asset::from_column("pwd"), Some(Asset::PasswordPlaintext));
        assert_eq!(Asset::from_column("PW"), Some(Asset::PasswordPlaintext));
        assert_eq!(Asset::from_column("hash"), Some(Asset::PasswordHash));
        assert_eq!(Asset::from_column("Name"), Some(Asset::FullName));
        assert_eq!(Asset::from_column("ip"), Some(Asset::IpAddress));
        assert_eq!(Asset::from_column("url"), Some(Asset::TargetUrl));
        assert_eq!(Asset::from_column("favourite_colour"), None);
    }

    #[test]
    fn data_classes_follow_hibp_names() {
        assert_eq!(data_classes_of(AssetSet::EMPTY), Vec::<&str>::new());
        assert_eq!(
            data_classes_of(AssetSet::ALL),
            [
                "Dates of birth",
                "Email addresses",
                "IP addresses",
                "Names",
                "Passwords",
                "Phone numbers",
                "Physical addresses",
                "URLs",
                "Usernames",
            ]
        );
        // Hashed and plaintext passwords are one class; hash metadata is none.
        let hashes = AssetSet::parse_list("username,password_hash,password_type,salt").unwrap();
        assert_eq!(data_classes_of(hashes), ["Passwords", "Usernames"]);
        assert_eq!(Asset::Salt.data_class(), None);
        assert_eq!(Asset::TargetUrl.data_class(), Some("URLs"));
    }

    #[test]
    fn set_operations() {
        let mut set = AssetSet::parse_list("email, pass,hash").unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.contains(Asset::PasswordPlaintext));
        set.remove(Asset::Email);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Asset::PasswordPlaintext, Asset::PasswordHash]);
        let err = AssetSet::parse_list("email, colour ,phone").unwrap_err();
        assert_eq!(err.name(), "colour");
        assert!(err.to_string().starts_with("unknown asset 'colour' (known: email, username,"), "{err}");
        // A real error type: it converts into Box<dyn Error> (and so into anyhow::Error).
        let boxed: Box<dyn std::error::Error + Send + Sync> = err.into();
        assert!(boxed.to_string().contains("colour"));
        assert_eq!(AssetSet::parse_list("all").unwrap(), AssetSet::ALL);
    }
}
