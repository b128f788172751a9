//! [`ClientLimiter`]: requests per minute per client address, for the routes limited by
//! address rather than by a key's plan (`/range` under `--passwords-require-key`).
//!
//! The same fixed one-minute window as the keys' limiter (aligned to the wall-clock
//! minute, refused requests not counted), one map behind one mutex held for a few
//! instructions. The map is bounded: when it holds [`MAX_CLIENTS`] addresses, those of
//! past minutes are dropped, and if every one is of the current minute the map is
//! cleared (a flood of distinct addresses then gets a fresh window rather than growing
//! memory without end).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Client addresses tracked at most.
pub const MAX_CLIENTS: usize = 100_000;

/// A per-address, per-minute request limiter.
#[derive(Debug)]
pub struct ClientLimiter {
    rpm: u32,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl ClientLimiter {
    /// A limiter allowing `rpm` requests per minute to each address (0: none).
    pub fn new(rpm: u32) -> ClientLimiter {
        ClientLimiter { rpm, windows: Mutex::new(HashMap::new()) }
    }

    /// Requests per minute allowed to one address.
    pub fn rpm(&self) -> u32 {
        self.rpm
    }

    /// Counts one request of `client` at `now` (Unix seconds) if its minute has room;
    /// otherwise the seconds until its window resets (at least 1).
    pub fn admit(&self, client: IpAddr, now: i64) -> Result<(), u64> {
        let client = match client {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        };
        let minute = now.div_euclid(60);
        let retry_after = u64::try_from((minute + 1) * 60 - now).unwrap_or(1).max(1);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_CLIENTS && !windows.contains_key(&client) {
            windows.retain(|_, (m, _)| *m == minute);
            if windows.len() >= MAX_CLIENTS {
                windows.clear();
            }
        }
        let window = windows.entry(client).or_insert((minute, 0));
        if window.0 != minute {
            *window = (minute, 0);
        }
        if window.1 >= self.rpm {
            return Err(retry_after);
        }
        window.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_minute() {
        let limiter = ClientLimiter::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let now = 1_800_000_010; // 10 s into a minute
        assert_eq!(limiter.admit(a, now), Ok(()));
        assert_eq!(limiter.admit(a, now + 1), Ok(()));
        assert_eq!(limiter.admit(a, now + 2), Err(48), "refused until the minute ends");
        assert_eq!(limiter.admit(a, now + 3), Err(47), "refusals are not counted and do not extend the window");
        assert_eq!(limiter.admit(b, now), Ok(()), "another address");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(limiter.admit(mapped, now + 4), Err(46), "an IPv4-mapped address is the IPv4 one");
        assert_eq!(limiter.admit(a, now + 50), Ok(()), "the next minute");
        assert_eq!(ClientLimiter::new(0).admit(a, now), Err(50));
    }

    #[test]
    fn the_map_stays_bounded() {
        let limiter = ClientLimiter::new(1);
        let now = 1_800_000_000;
        for i in 0..(MAX_CLIENTS as u32 + 10) {
            let _ = limiter.admit(IpAddr::V4(i.into()), now);
        }
        assert!(limiter.windows.lock().unwrap().len() <= MAX_CLIENTS);
    }
}
