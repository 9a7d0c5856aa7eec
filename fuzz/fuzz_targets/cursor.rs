//! Pagination cursors (`cursor.rs`) and the `limit`/`cursor` pair of every list
//! (`routes/query.rs`, `Page`). Text opens only if it is byte for byte a cursor this key
//! sealed for this list; any position sealed opens to itself and only for its own list; a
//! newest-first list accepts exactly the 16-byte (time, id) positions it seals.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vicinity_api::fuzzing::{Cursors, FormParams, Page};

const KEY: [u8; 32] = [7; 32];
const LIST: &str = "feed:usr_0000000000007";
const OTHER_LIST: &str = "feed:usr_0000000000008";
/// What `Cursors::open` refuses to decode.
const MAX_CURSOR_LEN: usize = 512;

fn page(params: &FormParams, cursors: &Cursors) -> Result<Page, vicinity_api::ApiError> {
    Page::parse(params, cursors, LIST.to_owned(), 20, 50)
}

fuzz_target!(|data: &[u8]| {
    let cursors = Cursors::new(KEY);

    if let Ok(text) = std::str::from_utf8(data) {
        match cursors.open(LIST.as_bytes(), text) {
            Ok(position) => assert_eq!(cursors.seal(LIST.as_bytes(), &position), text),
            Err(error) => assert_eq!(error.code(), "malformed_request"),
        }
    }
    // As a list's query string: a page of 1 to 50, or a 400 / 422.
    if let Ok(params) = FormParams::parse(data) {
        match page(&params, &cursors) {
            Ok(page) => {
                assert!((1..=50).contains(&page.limit));
                assert_eq!(page.after.is_some(), params.get("cursor").is_some());
            }
            Err(error) => assert!(
                matches!(error.code(), "malformed_request" | "validation_failed"),
                "{error}"
            ),
        }
    }

    // The input as a position.
    let sealed = cursors.seal(LIST.as_bytes(), data);
    let opened = cursors.open(LIST.as_bytes(), &sealed).ok();
    if sealed.len() <= MAX_CURSOR_LEN {
        assert_eq!(opened.as_deref(), Some(data));
    } else {
        assert_eq!(opened, None);
    }
    assert!(cursors.open(OTHER_LIST.as_bytes(), &sealed).is_err());
    assert!(
        Cursors::new([8; 32])
            .open(LIST.as_bytes(), &sealed)
            .is_err()
    );
    let params = FormParams::parse(format!("cursor={sealed}").as_bytes())
        .expect("a cursor is a readable query value");
    match page(&params, &cursors) {
        Ok(page) => {
            assert_eq!(data.len(), 16, "only a (time, id) position is accepted");
            let (at, id) = data.split_at(8);
            let at = i64::from_be_bytes(at.try_into().expect("8 bytes"));
            let id = i64::from_be_bytes(id.try_into().expect("8 bytes"));
            assert_eq!(page.after, Some((at, id)));
            assert_eq!(page.limit, 20);
        }
        Err(error) => {
            assert_ne!(
                data.len(),
                16,
                "a sealed (time, id) position is refused: {error}"
            );
            assert_eq!(error.code(), "malformed_request");
        }
    }
});
