//! Signatures: Standard Webhooks (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`)
//! for what we send and receive, and GitHub's `X-Hub-Signature-256` for what we
//! receive. Every comparison runs in constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::webhook::SECRET_PREFIX;

/// How far a signed timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no signature: send webhook-id, webhook-timestamp and webhook-signature, or X-Hub-Signature-256")]
    Missing,
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("the webhook-timestamp is more than 5 minutes away from the server's clock")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// The HMAC key of a secret: the decoded bytes of a `whsec_` secret, otherwise the
/// secret's own bytes (the Standard Webhooks libraries accept both forms).
#[must_use]
pub fn key_of(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// The `webhook-signature` value for one message: `v1,` + base64 signature.
#[must_use]
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Checks Standard Webhooks headers against `body`: the timestamp within
/// [`TOLERANCE_SECS`] of `now`, and one of the space-separated `v1,` signatures.
///
/// # Errors
/// A malformed header, a stale timestamp, or no matching signature.
pub fn verify_standard(
    key: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::Malformed("webhook-timestamp"))?;
    if now.abs_diff(ts) > TOLERANCE_SECS.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let expected = sign(key, id, ts, body);
    let matched = signatures
        .split_whitespace()
        .filter(|candidate| candidate.starts_with("v1,"))
        .fold(false, |found, candidate| found | bool::from(candidate.as_bytes().ct_eq(expected.as_bytes())));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=HEX` (an HMAC of the body keyed by
/// the secret as written).
///
/// # Errors
/// A malformed header or a signature that does not match.
pub fn verify_github(secret: &str, header: &str, body: &[u8]) -> Result<(), VerifyError> {
    let given = header.trim().strip_prefix("sha256=").ok_or(VerifyError::Malformed("X-Hub-Signature-256"))?;
    let mut mac = mac(secret.as_bytes());
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    if bool::from(given.to_ascii_lowercase().as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    // The Standard Webhooks specification's published example.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signing_reproduces_the_specification_vector() {
        assert_eq!(sign(&key_of(SECRET), ID, TS, BODY), SIGNATURE);
    }

    #[test]
    fn verification_accepts_the_vector_among_other_signatures() {
        let key = key_of(SECRET);
        let header = format!("v1,bm9wZQ== {SIGNATURE}");
        assert_eq!(verify_standard(&key, ID, "1614265330", &header, BODY, TS + 299), Ok(()));
        assert_eq!(verify_standard(&key, ID, "1614265330", SIGNATURE, BODY, TS - 299), Ok(()));
    }

    #[test]
    fn verification_refuses_changes_and_stale_timestamps() {
        let key = key_of(SECRET);
        let ts = "1614265330";
        assert_eq!(
            verify_standard(&key, ID, ts, SIGNATURE, br#"{"test": 2432232315}"#, TS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(verify_standard(&key, "msg_other", ts, SIGNATURE, BODY, TS), Err(VerifyError::Mismatch));
        assert_eq!(verify_standard(&key_of("whsec_other0"), ID, ts, SIGNATURE, BODY, TS), Err(VerifyError::Mismatch));
        assert_eq!(verify_standard(&key, ID, ts, SIGNATURE, BODY, TS + 301), Err(VerifyError::Stale));
        assert_eq!(verify_standard(&key, ID, ts, SIGNATURE, BODY, TS - 301), Err(VerifyError::Stale));
        assert_eq!(
            verify_standard(&key, ID, "soon", SIGNATURE, BODY, TS),
            Err(VerifyError::Malformed("webhook-timestamp"))
        );
        assert_eq!(verify_standard(&key, ID, ts, "v2,whatever", BODY, TS), Err(VerifyError::Mismatch));
    }

    #[test]
    fn github_signatures_are_hex_hmacs_of_the_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_github("It's a Secret to Everybody", header, b"Hello, World!"), Ok(()));
        assert_eq!(verify_github("It's a Secret to Everybody", header, b"Hello, World?"), Err(VerifyError::Mismatch));
        assert_eq!(
            verify_github("It's a Secret to Everybody", "sha1=00", b""),
            Err(VerifyError::Malformed("X-Hub-Signature-256"))
        );
    }

    proptest! {
        #[test]
        fn what_is_signed_verifies_and_any_change_does_not(
            key in proptest::collection::vec(any::<u8>(), 1..64),
            id in "[a-zA-Z0-9_-]{1,40}",
            ts in 0i64..4_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 0..256),
            flip in any::<prop::sample::Index>(),
        ) {
            let signature = sign(&key, &id, ts, &body);
            prop_assert_eq!(verify_standard(&key, &id, &ts.to_string(), &signature, &body, ts), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 1;
                prop_assert_eq!(verify_standard(&key, &id, &ts.to_string(), &signature, &changed, ts), Err(VerifyError::Mismatch));
            }
        }

        #[test]
        fn arbitrary_headers_never_panic(ts in ".{0,30}", sig in ".{0,120}", now in any::<i64>()) {
            let _ = verify_standard(b"k", "id", &ts, &sig, b"{}", now);
            let _ = verify_github("secret", &sig, b"{}");
        }
    }
}
