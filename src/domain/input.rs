//! What clients may type into an instance: raw data, or named keys for clients
//! without a keyboard.

use serde::Deserialize;
use utoipa::ToSchema;

use super::Invalid;

/// Body of `POST /api/instances/:id/input`: exactly one of `data` or `keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputRequest {
    /// Written as-is (keystrokes, control characters).
    pub data: Option<String>,
    /// Named keys: `Enter`, `Tab`, `Escape`, `Backspace`, `Up`, `Down`, `Left`,
    /// `Right`, `Home`, `End`, `PageUp`, `PageDown`, `C-a` … `C-z`.
    pub keys: Option<Vec<String>>,
}

impl InputRequest {
    /// The bytes to write.
    ///
    /// # Errors
    /// Neither or both of `data` and `keys`, nothing to write, or an unknown key name.
    pub fn bytes(&self) -> Result<Vec<u8>, Invalid> {
        match (&self.data, &self.keys) {
            (Some(data), None) if !data.is_empty() => Ok(data.as_bytes().to_vec()),
            (Some(_), None) => Err(Invalid::new("data", "must not be empty")),
            (None, Some(keys)) if !keys.is_empty() => {
                let mut out = Vec::new();
                for (i, name) in keys.iter().enumerate() {
                    let bytes =
                        key(name).ok_or_else(|| Invalid::new(format!("keys[{i}]"), format!("unknown key {name:?}")))?;
                    out.extend_from_slice(&bytes);
                }
                Ok(out)
            }
            (None, Some(_)) => Err(Invalid::new("keys", "must not be empty")),
            _ => Err(Invalid::new("data", "give exactly one of data or keys")),
        }
    }
}

/// The bytes a named key sends.
#[must_use]
pub fn key(name: &str) -> Option<Vec<u8>> {
    let fixed: &[u8] = match name {
        "Enter" => b"\r",
        "Tab" => b"\t",
        "Escape" => b"\x1b",
        "Backspace" => b"\x7f",
        "Up" => b"\x1b[A",
        "Down" => b"\x1b[B",
        "Right" => b"\x1b[C",
        "Left" => b"\x1b[D",
        "Home" => b"\x1b[H",
        "End" => b"\x1b[F",
        "PageUp" => b"\x1b[5~",
        "PageDown" => b"\x1b[6~",
        _ => {
            let letter = name.strip_prefix("C-").filter(|l| l.len() == 1)?.as_bytes()[0];
            return letter.is_ascii_lowercase().then(|| vec![letter - b'a' + 1]);
        }
    };
    Some(fixed.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_keys_map_to_terminal_bytes() {
        assert_eq!(key("Enter"), Some(b"\r".to_vec()));
        assert_eq!(key("C-c"), Some(vec![3]));
        assert_eq!(key("C-z"), Some(vec![26]));
        assert_eq!(key("C-C"), None);
        assert_eq!(key("C-"), None);
        assert_eq!(key("F13"), None);
    }

    #[test]
    fn exactly_one_of_data_or_keys() {
        let both = InputRequest { data: Some("a".into()), keys: Some(vec!["Enter".into()]) };
        assert!(both.bytes().is_err());
        let neither = InputRequest { data: None, keys: None };
        assert!(neither.bytes().is_err());
        let keys = InputRequest { data: None, keys: Some(vec!["Up".into(), "Nope".into()]) };
        assert_eq!(keys.bytes().expect_err("unknown").field, "keys[1]");
    }
}
