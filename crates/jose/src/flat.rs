//! A fast reader for the JSON that token issuers write: one flat object with no whitespace.
//!
//! It never decides that a text is invalid. On anything outside its small subset it returns
//! `None`, and the caller runs the strict parser of [`crate::json`] instead. Every text it
//! accepts is valid JSON that the strict parser reads to the same members and values, in the
//! same order, so this module changes speed only, never what is accepted or refused.
//!
//! The subset: `{` members separated by `,` `}` and nothing after it, where a member is a
//! plain string, `:` and a value, and a value is a plain string, an unsigned integer of at
//! most 19 digits without leading zero, fraction or exponent, or an array of plain strings.
//! A plain string has no escape and no control character. The whole text must be UTF-8.

use std::borrow::Cow;

use crate::json::Scalar;

/// Reads `bytes` as a flat object, calling `member` with each name and value in order.
///
/// `None` when the text is outside the subset or when `member` returns `None` (the caller's
/// way to hand an object it does not want to judge itself back to the strict parser).
pub(crate) fn flat_object<'a>(
    bytes: &'a [u8],
    mut member: impl FnMut(&'a str, Scalar<'a>) -> Option<()>,
) -> Option<()> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut r = Reader { text, i: 0 };
    r.eat(b'{')?;
    if r.peek()? == b'}' {
        r.i += 1;
        return r.at_end();
    }
    loop {
        let name = r.string()?;
        r.eat(b':')?;
        let value = match r.peek()? {
            b'"' => Scalar::Str(Cow::Borrowed(r.string()?)),
            b'[' => Scalar::StrList(r.strings()?),
            b'0'..=b'9' => Scalar::Uint(r.uint()?),
            _ => return None,
        };
        member(name, value)?;
        match r.next()? {
            b',' => {}
            b'}' => return r.at_end(),
            _ => return None,
        }
    }
}

struct Reader<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn at_end(&self) -> Option<()> {
        (self.i == self.text.len()).then_some(())
    }

    /// A plain string, quotes included; returns its contents.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.text.as_bytes().get(start..)?;
        // The first quote ends the string; a backslash before it (an escape, perhaps of
        // that very quote) or a control character sends the text to the strict parser.
        let len = memchr::memchr(b'"', rest)?;
        let contents = rest.get(..len)?;
        if contents
            .iter()
            .fold(false, |bad, &c| bad | (c == b'\\') | (c < 0x20))
        {
            return None;
        }
        self.i = start + len + 1;
        self.text.get(start..start + len)
    }

    /// An array of plain strings.
    fn strings(&mut self) -> Option<Vec<String>> {
        self.eat(b'[')?;
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(out);
        }
        loop {
            out.push(self.string()?.to_owned());
            match self.next()? {
                b',' => {}
                b']' => return Some(out),
                _ => return None,
            }
        }
    }

    /// An unsigned integer: `0`, or up to 19 digits without a leading zero (so it cannot
    /// overflow a `u64`). What follows is checked by the caller, which accepts only `,` or
    /// `}`: a fraction or exponent sends the text to the strict parser.
    fn uint(&mut self) -> Option<u64> {
        let bytes = self.text.as_bytes();
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = bytes.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            if self.i - start == 19 {
                return None;
            }
            v = v * 10 + u64::from(c - b'0');
            self.i += 1;
        }
        if bytes.get(start) == Some(&b'0') && self.i - start > 1 {
            return None;
        }
        Some(v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde::de::DeserializeSeed;
    use serde_json::{Map, Value};

    use super::*;
    use crate::json::StrictValue;

    /// The members the fast reader reads, refusing duplicates as its callers do.
    fn flat(text: &[u8]) -> Option<Map<String, Value>> {
        let mut out = Map::new();
        flat_object(text, |name, v| {
            out.insert(name.to_owned(), v.into_value()?)
                .is_none()
                .then_some(())
        })?;
        Some(out)
    }

    fn strict(text: &[u8]) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_slice(text);
        let v = StrictValue.deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(v)
    }

    /// Every byte replaced by every byte value, every byte deleted, and a few bytes
    /// inserted everywhere.
    pub(crate) fn mutants(text: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..text.len() {
            for b in 0..=255u8 {
                let mut m = text.to_vec();
                m[i] = b;
                out.push(m);
            }
            let mut m = text.to_vec();
            m.remove(i);
            out.push(m);
            for b in *b" \n\"\\,:{}[]0-.e" {
                let mut m = text.to_vec();
                m.insert(i, b);
                out.push(m);
            }
        }
        out
    }

    #[test]
    fn reads_the_subset() {
        let text = r#"{"iss":"https://a","aud":["x","y"],"exp":1800000900,"n":0,"e":[],"u":"é"}"#
            .as_bytes();
        let members = flat(text).unwrap();
        assert_eq!(Value::Object(members), strict(text).unwrap());
        assert_eq!(flat(b"{}").unwrap().len(), 0);
        assert_eq!(
            flat(br#"{"n":18446744073}"#).unwrap()["n"],
            18_446_744_073u64
        );
    }

    #[test]
    fn hands_everything_else_to_the_strict_parser() {
        for text in [
            &br#"{"a":1.5}"#[..],
            br#"{"a":1e3}"#,
            br#"{"a":01}"#,
            br#"{"a":-1}"#,
            br#"{"a":12345678901234567890}"#,
            br#"{"a": 1}"#,
            br#"{"a":"\u0041"}"#,
            br#"{"a":true}"#,
            br#"{"a":null}"#,
            br#"{"a":{}}"#,
            br#"{"a":[1]}"#,
            br#"{"a":"x"} "#,
            br#"{"a":"x"}{}"#,
            br#"{"a":"x",}"#,
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\xff\"}",
            br#"["a"]"#,
            b"",
        ] {
            assert!(flat(text).is_none(), "{}", String::from_utf8_lossy(text));
        }
    }

    /// Whatever the fast reader accepts, the strict parser accepts too, with the same
    /// members and values.
    #[test]
    fn agrees_with_the_strict_parser_on_mutants() {
        let text = r#"{"iss":"https://a","aud":["x","y"],"exp":1800000900,"n":0,"e":[],"u":"é"}"#
            .as_bytes();
        let (mut accepted, mut refused) = (0, 0);
        for m in mutants(text) {
            match flat(&m) {
                Some(members) => {
                    accepted += 1;
                    assert_eq!(
                        strict(&m),
                        Some(Value::Object(members)),
                        "{}",
                        String::from_utf8_lossy(&m)
                    );
                }
                None => refused += 1,
            }
        }
        // Both outcomes occur, so the comparison above is not vacuous.
        assert!(accepted > 1000 && refused > 1000, "{accepted} {refused}");
    }
}
