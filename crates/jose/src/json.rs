//! Strict JSON reading: one pass, duplicate member names rejected at every depth.
//!
//! `serde_json::Value` keeps the last of two duplicate members, and a derived struct rejects
//! duplicates only among its known fields. Tokens are parsed here instead, so that what is
//! validated and what is authorised are read from one unambiguous object (catalog C4).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A member name, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Member names seen so far in one object: a short list, then a set for big objects, so that
/// a hostile object with thousands of members costs O(n), not O(n²).
#[derive(Default)]
pub(crate) struct SeenKeys<'de> {
    few: Vec<Cow<'de, str>>,
    many: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> SeenKeys<'de> {
    /// Records `key`; false when it was already there.
    pub(crate) fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        self.few.push(key);
        if self.few.len() > 16 {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

pub(crate) fn duplicate<E: de::Error>(key: &str) -> E {
    E::custom(format_args!("duplicate member {key:?}"))
}

/// Builds a `serde_json::Value`, refusing duplicate member names at every depth.
pub(crate) struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v = map.next_value_seed(StrictValue)?;
            if out.insert(k.into_owned(), v).is_some() {
                return Err(de::Error::custom("duplicate member"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// A claim value read without committing to its type, so that a wrongly typed claim is
/// recorded (and reported after the signature check) instead of stopping the parse.
pub(crate) enum Scalar<'de> {
    Str(Cow<'de, str>),
    Uint(u64),
    StrList(Vec<String>),
    /// Any other value: a float, a negative number, a bool, null, an object or a mixed array.
    Other,
}

impl Scalar<'_> {
    /// The value as [`StrictValue`] builds it from the same JSON; `None` for
    /// [`Scalar::Other`], which keeps no value.
    pub(crate) fn into_value(self) -> Option<Value> {
        Some(match self {
            Scalar::Str(s) => Value::String(s.into_owned()),
            Scalar::Uint(u) => Value::Number(u.into()),
            Scalar::StrList(list) => Value::Array(list.into_iter().map(Value::String).collect()),
            Scalar::Other => return None,
        })
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claim value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(u64::try_from(v).map(Scalar::Uint).unwrap_or(Scalar::Other))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Uint(v))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        let mut strings = Vec::new();
        let mut all_strings = true;
        while let Some(v) = seq.next_element::<Scalar<'de>>()? {
            match v {
                Scalar::Str(s) if all_strings => strings.push(s.into_owned()),
                _ => all_strings = false,
            }
        }
        Ok(if all_strings {
            Scalar::StrList(strings)
        } else {
            Scalar::Other
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
        // Walk it for duplicates, then forget it.
        StrictValue.visit_map(map).map(|_| Scalar::Other)
    }
}

/// Runs `visitor` over `bytes`, which must hold one JSON object and nothing else.
pub(crate) fn parse_object<'de, V: Visitor<'de>>(
    bytes: &'de [u8],
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de.deserialize_map(visitor)?;
    de.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(s: &str) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(s);
        let v = StrictValue.deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }

    #[test]
    fn duplicates_rejected_at_any_depth() {
        assert!(strict(r#"{"a":1,"a":2}"#).is_err());
        assert!(strict(r#"{"x":{"a":1,"a":2}}"#).is_err());
        assert!(strict(r#"[{"a":1,"b":{"c":[{"d":1,"d":1}]}}]"#).is_err());
        // escaped spelling of the same name is still a duplicate
        assert!(strict(r#"{"a":1,"\u0061":2}"#).is_err());
        assert_eq!(strict(r#"{"a":1,"b":2}"#).unwrap()["b"], 2);
    }

    #[test]
    fn many_keys_use_the_set() {
        let mut seen = SeenKeys::default();
        for i in 0..100 {
            assert!(seen.insert(Cow::Owned(format!("k{i}"))));
        }
        assert!(!seen.insert(Cow::Borrowed("k3")));
        assert!(!seen.insert(Cow::Borrowed("k99")));
    }
}
