//! Terminal bytes as the text of `output` events: cut on character boundaries and
//! written as JSON.
//!
//! Every byte a program prints passes through here once per viewer, so the JSON is
//! written by hand rather than through `serde_json`: the bytes are checked as UTF-8
//! in one pass (the standard library's check, fast on ASCII), and the runs that
//! need no escape are found eight bytes at a time and copied whole. The result is
//! the same text `serde_json` writes for `{"data": …}`, as the tests check.

/// How much of `bytes` can be sent without splitting a UTF-8 sequence: all but a
/// trailing sequence that is incomplete (invalid bytes are not held back).
#[must_use]
pub fn complete_utf8(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back for the lead
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if need > back { len - back } else { len };
    }
    len
}

/// `{"data":"…"}` holding `bytes` as text; a byte that is not UTF-8 becomes U+FFFD,
/// as `String::from_utf8_lossy` makes it.
#[must_use]
pub fn output_data(bytes: &[u8]) -> String {
    // The standard check first: `from_utf8_lossy` alone checks a byte at a time.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let mut json = String::with_capacity(text.len() + text.len() / 8 + 12);
    json.push_str("{\"data\":\"");
    escape_into(&text, &mut json);
    json.push_str("\"}");
    json
}

/// Appends `text` as the inside of a JSON string: `"`, `\` and the control
/// characters below U+0020 escaped as `serde_json` escapes them.
fn escape_into(text: &str, json: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(at) = next_escape(&bytes[start..]).map(|k| start + k) {
        // `at` holds an ASCII byte, so both cuts fall on character boundaries.
        json.push_str(&text[start..at]);
        match bytes[at] {
            b'"' => json.push_str("\\\""),
            b'\\' => json.push_str("\\\\"),
            b'\n' => json.push_str("\\n"),
            b'\r' => json.push_str("\\r"),
            b'\t' => json.push_str("\\t"),
            0x08 => json.push_str("\\b"),
            0x0c => json.push_str("\\f"),
            b => {
                json.push_str("\\u00");
                json.push(char::from(HEX[usize::from(b >> 4)]));
                json.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = at + 1;
    }
    json.push_str(&text[start..]);
}

/// Where the first byte that JSON must escape is (a control below 0x20, `"` or
/// `\`), looking at eight bytes at a time.
fn next_escape(bytes: &[u8]) -> Option<usize> {
    use crate::words::{below, equal, position};
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    position(bytes, |x| below(x, 0x20) | equal(x, b'"') | equal(x, b'\\'), needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `serde_json` writes for the same data.
    fn reference(bytes: &[u8]) -> String {
        serde_json::json!({ "data": String::from_utf8_lossy(bytes) }).to_string()
    }

    #[test]
    fn incomplete_utf8_tails_are_held_back() {
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(complete_utf8(b"abc"), 3);
        assert_eq!(complete_utf8(&[b'a', euro[0]]), 1);
        assert_eq!(complete_utf8(&[b'a', euro[0], euro[1]]), 1);
        assert_eq!(complete_utf8(&[b'a', euro[0], euro[1], euro[2]]), 4);
        assert_eq!(complete_utf8(&[b'a', 0xFF]), 2, "invalid bytes are not held");
        assert_eq!(complete_utf8(&[0xF0, 0x9F, 0x98]), 0, "an emoji missing its last byte");
        assert_eq!(complete_utf8(&[]), 0);
    }

    #[test]
    fn terminal_output_is_written_as_serde_json_writes_it() {
        let cases: [&[u8]; 9] = [
            b"",
            b"plain text that is longer than one word of eight bytes",
            b"\x1b[1;32mok\x1b[0m\r\n",
            b"a \"quoted\" C:\\path\\ and a tab\there",
            b"\x00\x01\x07\x08\x0b\x0c\x1f\x7f",
            "wide ✓ 表 🙂 and a progress bar ▕██▏".as_bytes(),
            b"invalid \xff\xfe bytes and a cut-off \xe2\x82",
            b"12345678\"2345678\\23456789",
            b"\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b",
        ];
        for bytes in cases {
            assert_eq!(output_data(bytes), reference(bytes), "for {bytes:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn frames_end_on_a_character_boundary(text in "\\PC{0,60}", cut in proptest::prelude::any::<proptest::sample::Index>()) {
            let bytes = text.as_bytes();
            let k = if bytes.is_empty() { 0 } else { cut.index(bytes.len() + 1) };
            let end = complete_utf8(&bytes[..k]);
            proptest::prop_assert!(end <= k && k - end < 4);
            proptest::prop_assert!(std::str::from_utf8(&bytes[..end]).is_ok());
        }

        #[test]
        fn any_bytes_are_written_as_serde_json_writes_them(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            proptest::prop_assert_eq!(output_data(&bytes), reference(&bytes));
        }

        #[test]
        fn terminal_like_text_is_written_as_serde_json_writes_it(
            bytes in proptest::collection::vec(proptest::sample::select(b"ab \x1b[;m\r\n\t\"\\\x00\x7f\xc3\xa9\xe2\x9c\x93".to_vec()), 0..120)
        ) {
            proptest::prop_assert_eq!(output_data(&bytes), reference(&bytes));
        }
    }
}
