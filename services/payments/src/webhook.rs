//! Verification of the provider's webhook signatures:
//! `Psp-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

use ring::hmac;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or malformed signature header")]
    Malformed,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` against `body`; `now` and `tolerance_secs` bound the
/// timestamp both ways. The comparison is constant-time (`ring::hmac::verify`).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => {
                signatures.push(hex::decode(sig).map_err(|_| SignatureError::Malformed)?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    if signatures
        .iter()
        .any(|sig| hmac::verify(&key, &signed, sig).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Signs like the provider does (tests and benchmarks).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let tag = hmac::sign(&key, &signed);
    format!("t={timestamp},v1={}", hex::encode(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    #[test]
    fn a_correct_signature_verifies() {
        let header = sign(SECRET, 1000, b"{}");
        assert_eq!(verify(SECRET, &header, b"{}", 1100, 300), Ok(()));
    }

    #[test]
    fn tampering_wrong_secret_and_stale_timestamps_fail() {
        let header = sign(SECRET, 1000, b"{}");
        assert_eq!(
            verify(SECRET, &header, b"{ }", 1000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, b"{}", 1000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &header, b"{}", 1301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, &header, b"{}", 699, 300),
            Err(SignatureError::Stale)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = header.replace("t=1000", "t=1001");
        assert_eq!(
            verify(SECRET, &moved, b"{}", 1000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for h in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "t=1,v1=0"] {
            assert_eq!(
                verify(SECRET, h, b"{}", 1, 300),
                Err(SignatureError::Malformed),
                "{h}"
            );
        }
    }
}
