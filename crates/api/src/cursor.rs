//! Opaque pagination cursors: a position in a list, bound to the query it came from and
//! authenticated with HMAC-SHA256, so a client can neither forge a position nor carry a
//! cursor over to another query. A tampered cursor is a 400 naming `cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;

/// Bytes of the MAC kept in a cursor (128 bits).
const TAG_LEN: usize = 16;

/// Cursors longer than this are refused before decoding.
const MAX_CURSOR_LEN: usize = 512;

#[derive(Clone)]
pub struct Cursors {
    key: [u8; 32],
}

impl Cursors {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, query: &[u8], position: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&(query.len() as u64).to_be_bytes());
        mac.update(query);
        mac.update(position);
        mac
    }

    /// A cursor for `position` within the list that `query` (a canonical description of the
    /// request's filters) produces.
    pub fn seal(&self, query: &[u8], position: &[u8]) -> String {
        let tag = self.mac(query, position).finalize().into_bytes();
        let mut bytes = position.to_vec();
        bytes.extend_from_slice(tag.get(..TAG_LEN).unwrap_or(&tag));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a cursor holds, if it was sealed by this server for the same `query`.
    pub fn open(&self, query: &[u8], cursor: &str) -> Result<Vec<u8>, ApiError> {
        let invalid = || {
            ApiError::malformed(
                Some("cursor".into()),
                "cursor: not a cursor this search returned; start again without it",
            )
        };
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let split = bytes.len().checked_sub(TAG_LEN).ok_or_else(invalid)?;
        let (position, tag) = bytes.split_at(split);
        self.mac(query, position)
            .verify_truncated_left(tag)
            .map_err(|_| invalid())?;
        Ok(position.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let cursors = Cursors::new([7; 32]);
        let cursor = cursors.seal(b"q=1", b"position");
        assert_eq!(cursors.open(b"q=1", &cursor).unwrap(), b"position");
        // Another query, another key, a flipped character, truncation, junk: all refused.
        assert!(cursors.open(b"q=2", &cursor).is_err());
        assert!(Cursors::new([8; 32]).open(b"q=1", &cursor).is_err());
        let mut flipped = cursor.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert!(
            cursors
                .open(b"q=1", &String::from_utf8(flipped).unwrap())
                .is_err()
        );
        assert!(cursors.open(b"q=1", &cursor[..cursor.len() - 2]).is_err());
        assert!(cursors.open(b"q=1", "!!!").is_err());
        assert!(cursors.open(b"q=1", "").is_err());
        assert!(cursors.open(b"q=1", &"A".repeat(10_000)).is_err());
    }
}
