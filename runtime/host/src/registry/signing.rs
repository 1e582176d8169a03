//! Signed plugin versions: the publisher signs `name@version` and the component's sha256 with
//! an ed25519 key; a host with `registry.require_signatures` serves only versions signed by a
//! key in `registry.trusted_keys`.

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

pub use super::record::Signature;
use super::record::VersionRecord;
use millrace_core::config::{RegistryConfig, TrustedKey};

/// What is signed: the version's identity and its component's digest.
fn message(record: &VersionRecord) -> String {
    format!("millrace-plugin-v1\n{}\n{}", record.id(), record.digest)
}

/// Reads a base64 public key.
pub fn public_key(text: &str) -> anyhow::Result<VerifyingKey> {
    let key: TrustedKey = text.parse().map_err(anyhow::Error::msg)?;
    Ok(*key.verifying_key())
}

/// A new signing key: its secret (base64, keep it private) and its public key (base64).
pub fn generate() -> anyhow::Result<(String, String)> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        STANDARD.encode(seed),
        STANDARD.encode(key.verifying_key().as_bytes()),
    ))
}

/// Signs a version with the secret key `secret` (base64, as `generate` writes it).
pub fn sign(record: &mut VersionRecord, secret: &str) -> anyhow::Result<()> {
    let seed: [u8; 32] = STANDARD
        .decode(secret.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("the signing key is not a base64 ed25519 secret key (32 bytes)")?;
    let key = SigningKey::from_bytes(&seed);
    let signature = key.sign(message(record).as_bytes());
    record.signature = Some(Signature {
        key: STANDARD.encode(key.verifying_key().as_bytes()),
        value: STANDARD.encode(signature.to_bytes()),
    });
    Ok(())
}

/// Refuses a version the registry settings do not trust. Without `require_signatures` every
/// version passes, but a signature that is there must still be valid.
pub fn check(record: &VersionRecord, settings: &RegistryConfig) -> anyhow::Result<()> {
    let id = record.id();
    let Some(signature) = &record.signature else {
        if settings.require_signatures {
            bail!("{id} is refused: it is not signed, and registry.require_signatures is on");
        }
        return Ok(());
    };
    let key =
        public_key(&signature.key).with_context(|| format!("{id} is refused: its signing key"))?;
    let bytes: [u8; 64] = STANDARD
        .decode(&signature.value)
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{id} is refused: its signature is not 64 bytes of base64"))?;
    key.verify_strict(
        message(record).as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&bytes),
    )
    .map_err(|_| anyhow::anyhow!("{id} is refused: its signature does not match its digest"))?;
    if settings.require_signatures
        && !settings
            .trusted_keys
            .iter()
            .any(|k| *k.verifying_key() == key)
    {
        bail!(
            "{id} is refused: it is signed by {}, which is not in registry.trusted_keys",
            signature.key
        );
    }
    Ok(())
}
