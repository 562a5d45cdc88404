//! One encrypted value: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM with a
//! 32-byte nonce and a 16-byte tag, standard base64, the value's tree path as
//! additional data. Decrypting gives the plaintext bytes and the type SOPS recorded.

use crate::SopsError;
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

/// SOPS's cipher: AES-256-GCM with a 32-byte nonce.
type Cipher = AesGcm<Aes256, U32>;

/// The type SOPS recorded for a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Float,
    Bool,
    Bytes,
    Comment,
}

/// The parts of an `ENC[…]` string.
struct Parts<'a> {
    data: &'a str,
    iv: &'a str,
    tag: &'a str,
    kind: Kind,
}

/// Whether `s` is an encrypted value (`ENC[AES256_GCM,…]`).
pub fn is_encrypted(s: &str) -> bool {
    s.starts_with("ENC[AES256_GCM,") && s.ends_with(']')
}

fn parse(s: &str) -> Option<Parts<'_>> {
    let inner = s.strip_prefix("ENC[AES256_GCM,")?.strip_suffix(']')?;
    let (mut data, mut iv, mut tag, mut kind) = (None, None, None, None);
    for field in inner.split(',') {
        let (k, v) = field.split_once(':')?;
        match k {
            "data" => data = Some(v),
            "iv" => iv = Some(v),
            "tag" => tag = Some(v),
            "type" => {
                kind = Some(match v {
                    "str" => Kind::Str,
                    "int" => Kind::Int,
                    "float" => Kind::Float,
                    "bool" => Kind::Bool,
                    "bytes" => Kind::Bytes,
                    "comment" => Kind::Comment,
                    // A YAML timestamp: its plaintext is the RFC 3339 text the MAC hashes.
                    "time" => Kind::Str,
                    _ => return None,
                })
            }
            _ => return None,
        }
    }
    Some(Parts {
        data: data?,
        iv: iv?,
        tag: tag?,
        kind: kind?,
    })
}

/// Decrypts `value` with the data `key`, its tree path as additional data (`aad`).
/// An empty value stays empty (SOPS does not encrypt empty strings).
pub fn decrypt(
    value: &str,
    key: &[u8; 32],
    aad: &str,
) -> Result<(Zeroizing<Vec<u8>>, Kind), SopsError> {
    if value.is_empty() {
        return Ok((Zeroizing::new(Vec::new()), Kind::Str));
    }
    let bad = |why: &str| SopsError::Value {
        path: aad.trim_end_matches(':').to_string(),
        why: why.to_string(),
    };
    let parts =
        parse(value).ok_or_else(|| bad("not an ENC[AES256_GCM,data:…,iv:…,tag:…,type:…] value"))?;
    let b64 = |s: &str| STANDARD.decode(s).map_err(|_| bad("its base64 is broken"));
    let iv = b64(parts.iv)?;
    let tag = b64(parts.tag)?;
    let mut data = b64(parts.data)?;
    if iv.len() != 32 || tag.len() != 16 {
        return Err(bad("its nonce or tag has the wrong length"));
    }
    data.extend_from_slice(&tag);
    let cipher = Cipher::new(key.into());
    let plain = cipher
        .decrypt(
            iv.as_slice().into(),
            Payload {
                msg: &data,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| {
            bad("it does not decrypt with the file's data key (tampered, or moved to another key)")
        })?;
    Ok((Zeroizing::new(plain), parts.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_values_are_named() {
        let key = [0u8; 32];
        for bad in [
            "ENC[AES256_GCM,data:xx]",
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:weird]",
        ] {
            let e = decrypt(bad, &key, "a:b:").unwrap_err().to_string();
            assert!(e.contains("a:b"), "{e}");
        }
        assert_eq!(decrypt("", &key, "x:").unwrap().0.len(), 0);
    }
}
