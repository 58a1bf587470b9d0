//! Just enough DER reading to take the integers out of an RSA private key that aws-lc-rs
//! itself produced (for private JWK export). Not used on untrusted token input.

use crate::error::{Error, ErrorKind, Result};

fn bad() -> Error {
    Error::new(ErrorKind::InvalidKey)
}

/// A cursor over DER bytes.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    /// Reads one TLV with the expected tag and returns its contents.
    pub(crate) fn read(&mut self, tag: u8) -> Result<&'a [u8]> {
        let (&t, rest) = self.0.split_first().ok_or_else(bad)?;
        if t != tag {
            return Err(bad());
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad());
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(bad());
        }
        let (value, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(value)
    }

    /// Reads a non-negative INTEGER and returns it without leading zero bytes.
    pub(crate) fn read_uint(&mut self) -> Result<&'a [u8]> {
        let mut v = self.read(0x02)?;
        while v.len() > 1 && v[0] == 0 {
            v = &v[1..];
        }
        Ok(v)
    }
}

/// The integers of a PKCS#8-wrapped RSAPrivateKey: n, e, d, p, q, dp, dq, qi.
pub(crate) fn rsa_private_components(pkcs8: &[u8]) -> Result<[&[u8]; 8]> {
    let mut outer = Reader::new(Reader::new(pkcs8).read(0x30)?);
    outer.read(0x02)?; // version
    outer.read(0x30)?; // algorithm identifier
    let key = outer.read(0x04)?;
    let mut rsa = Reader::new(Reader::new(key).read(0x30)?);
    rsa.read(0x02)?; // version
    let mut out = [&[][..]; 8];
    for slot in &mut out {
        *slot = rsa.read_uint()?;
    }
    Ok(out)
}
