//! Directory entries with stable cookies: each name gets the next cookie of its directory when
//! it is added, and a listing continues "after cookie N". Entries added during a listing may
//! or may not be seen; an entry that exists throughout is returned exactly once.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};

/// Cookies 1 and 2 belong to "." and ".."; names start at 3.
pub const FIRST_COOKIE: u64 = 3;

/// The entries of one directory.
#[derive(Debug)]
pub struct Dir {
    by_name: HashMap<OsString, (u64, u64)>,
    by_cookie: BTreeMap<u64, (OsString, u64)>,
    next_cookie: u64,
}

impl Default for Dir {
    fn default() -> Self {
        Dir { by_name: HashMap::new(), by_cookie: BTreeMap::new(), next_cookie: FIRST_COOKIE }
    }
}

impl Dir {
    /// The node named `name`.
    pub fn get(&self, name: &OsStr) -> Option<u64> {
        self.by_name.get(name).map(|&(ino, _)| ino)
    }

    /// Add or replace `name`.
    pub fn insert(&mut self, name: &OsStr, ino: u64) {
        self.remove(name);
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        self.by_name.insert(name.to_owned(), (ino, cookie));
        self.by_cookie.insert(cookie, (name.to_owned(), ino));
    }

    /// Remove `name`, returning its node.
    pub fn remove(&mut self, name: &OsStr) -> Option<u64> {
        let (ino, cookie) = self.by_name.remove(name)?;
        self.by_cookie.remove(&cookie);
        Some(ino)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Entries with a cookie greater than `after`, in cookie order: (cookie, name, node).
    pub fn after(&self, after: u64) -> impl Iterator<Item = (u64, &OsStr, u64)> {
        let from = after.saturating_add(1);
        self.by_cookie.range(from..).map(|(&c, (n, ino))| (c, n.as_os_str(), *ino))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_survive_changes_during_a_listing() {
        let mut d = Dir::default();
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            d.insert(OsStr::new(n), i as u64 + 10);
        }
        let first: Vec<_> = d.after(0).take(2).map(|(c, n, _)| (c, n.to_owned())).collect();
        let resume = first[1].0;
        d.remove(OsStr::new("a")); // already listed
        d.remove(OsStr::new("c")); // not yet listed: may vanish
        d.insert(OsStr::new("e"), 20); // new: may appear
        let rest: Vec<_> = d.after(resume).map(|(_, n, _)| n.to_owned()).collect();
        assert_eq!(rest, vec![OsString::from("d"), OsString::from("e")]);
        assert!(!first.iter().any(|(_, n)| rest.contains(n)), "nothing twice");
    }
}
