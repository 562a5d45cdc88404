//! Shamir secret sharing as SOPS uses it for key groups (HashiCorp Vault's `shamir`
//! package): a share is the secret's bytes each evaluated on a random polynomial at x,
//! followed by x. Combining interpolates each byte at 0 over GF(2^8) with the AES
//! reduction polynomial x^8 + x^4 + x^3 + x + 1.

/// Multiplication in GF(2^8) modulo 0x11B.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// The inverse of a non-zero element: a^254.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e != 0 {
        if e & 1 != 0 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// The secret the `shares` (each `y… || x`) were split from: at least two, of one
/// length, with distinct x.
pub fn combine(shares: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    if shares.len() < 2 {
        return Err("fewer than two shares".into());
    }
    let len = shares[0].len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err("shares of different lengths".into());
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return Err("two shares with the same x".into());
        }
    }
    let mut secret = vec![0u8; len - 1];
    for (j, share) in shares.iter().enumerate() {
        // The Lagrange basis at 0: Π_{m≠j} x_m / (x_j ⊕ x_m).
        let mut basis = 1u8;
        for (m, xm) in xs.iter().enumerate() {
            if m != j {
                basis = mul(basis, mul(*xm, inv(xs[j] ^ xm)));
            }
        }
        for (out, y) in secret.iter_mut().zip(&share[..len - 1]) {
            *out ^= mul(*y, basis);
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `secret` with the polynomial coefficients `coeffs` (degree = their
    /// number) at the given x values.
    fn split(secret: &[u8], coeffs: &[u8], xs: &[u8]) -> Vec<Vec<u8>> {
        xs.iter()
            .map(|&x| {
                let mut share: Vec<u8> = secret
                    .iter()
                    .map(|&s| {
                        let (mut y, mut xp) = (s, 1u8);
                        for &c in coeffs {
                            xp = mul(xp, x);
                            y ^= mul(c, xp);
                        }
                        y
                    })
                    .collect();
                share.push(x);
                share
            })
            .collect()
    }

    #[test]
    fn any_threshold_of_shares_gives_the_secret() {
        assert_eq!(mul(0x57, 0x83), 0xc1, "FIPS-197's example");
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1);
        }
        let secret = b"a 32-byte data key for the test!".to_vec();
        let shares = split(&secret, &[0x3c, 0xa1], &[1, 2, 3, 4]);
        assert_eq!(combine(&shares[..3]).unwrap(), secret);
        assert_eq!(combine(&shares[1..]).unwrap(), secret);
        assert_ne!(
            combine(&shares[..2]).unwrap(),
            secret,
            "two of a threshold of three"
        );
        assert!(combine(&[shares[0].clone(), shares[0].clone()]).is_err());
    }
}
