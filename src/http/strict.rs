//! Reading a parsed JSON document into a request type, more strictly than serde does.
//!
//! serde's derived `Deserialize` for a struct accepts a JSON array as well as an object,
//! assigning the array's items to the fields in declaration order: `[true]` would be
//! `{"disabled": true}` and `[4, 4, …]` a full withdrawal score. A request body names its
//! fields, always; so here a struct (at any depth) is read only from an object, and anything
//! else is refused as "must be an object". Everything else reads as `serde_json::Value` reads.
//!
//! It also finds strings that the database cannot store: PostgreSQL's `text` refuses the NUL
//! character (U+0000), and a JSON string can carry it as `\u0000`. [`find_nul`] names the first
//! such field, for a 422; [`replace_nul`] replaces them in free text that must never be refused.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, Error as _, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde_json::{Map, Value};

/// What a NUL is replaced with in free text: U+FFFD, the replacement character, so the reader
/// sees that something was there.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// The path of the first string (a value or an object's key) holding a NUL character, in the
/// field notation of validation errors (`note`, `substances[0]`, `withdrawal.anxious`); `body`
/// for the document itself.
pub fn find_nul(value: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut String) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(k, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                // A key holding a NUL cannot be printed as it is; name it readably.
                path.push_str(&k.replace('\0', "\\u0000"));
                let found = k.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { "body".into() } else { path })
}

/// Replaces every NUL in the document's string values with [`NUL_REPLACEMENT`] and returns the
/// paths of the values changed. Keys are left alone (a key with a NUL names no field, and is
/// refused as unknown).
pub fn replace_nul(value: &mut Value) -> Vec<String> {
    fn walk(v: &mut Value, path: &str, changed: &mut Vec<String>) {
        match v {
            Value::String(s) if s.contains('\0') => {
                *s = s.replace('\0', &NUL_REPLACEMENT.to_string());
                changed.push(if path.is_empty() {
                    "body".into()
                } else {
                    path.to_owned()
                });
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, &format!("{path}[{i}]"), changed);
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(item, &p, changed);
                }
            }
            _ => {}
        }
    }
    let mut changed = Vec::new();
    walk(value, "", &mut changed);
    changed
}

/// A JSON value read strictly: structs only from objects.
pub struct Strict<'a>(pub &'a Value);

type Error = serde_json::Error;

fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: &'de [Value], visitor: V) -> Result<V::Value, Error> {
    let mut seq = Seq(items.iter());
    let out = visitor.visit_seq(&mut seq)?;
    let left = seq.0.len();
    if left == 0 {
        Ok(out)
    } else {
        Err(Error::invalid_length(
            items.len(),
            &format!("at most {} items", items.len() - left).as_str(),
        ))
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: &'de Map<String, Value>,
    visitor: V,
) -> Result<V::Value, Error> {
    visitor.visit_map(Entries {
        iter: map.iter(),
        value: None,
    })
}

/// Integer methods of [`Strict`]'s deserializer: each reads through [`Strict::whole`].
macro_rules! whole_numbers {
    ($($method:ident)+) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole(visitor)
        })+
    };
}

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (_, Some(i), _) => visitor.visit_i64(i),
                (_, _, Some(f)) => visitor.visit_f64(f),
                _ => Err(Error::custom("is a number out of range")),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(map) => visit_object(map, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            other => Err(Error::invalid_type(unexpected(other), &"an object")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Request enums are names (`"admin"`, `"stress"`); none carries data.
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            other => Err(Error::invalid_type(
                unexpected(other),
                &"one of the listed names",
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    whole_numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// 2^53: below it every whole number a JSON number written with a fraction holds is exact.
const EXACT_WHOLE: f64 = 9_007_199_254_740_992.0;

impl<'de> Strict<'de> {
    /// An integer field: JSON Schema's `integer` is a value, not a spelling, so `5.0` is 5
    /// (as clients that write every number as a float send it); `5.5` stays a type error.
    fn whole<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Value::Number(n) = self.0 {
            if let (None, None, Some(f)) = (n.as_u64(), n.as_i64(), n.as_f64()) {
                if f.fract() == 0.0 && f.abs() < EXACT_WHOLE {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    return if f < 0.0 {
                        visitor.visit_i64(f as i64)
                    } else {
                        visitor.visit_u64(f as u64)
                    };
                }
            }
        }
        self.deserialize_any(visitor)
    }
}

struct Seq<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(Strict(v)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(BorrowedStrDeserializer::<Error>::new(k))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| Error::custom("a value was read before its key"))?;
        seed.deserialize(Strict(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Reads `T` from a parsed document through [`Strict`], with the path of the first error.
pub fn read<T: de::DeserializeOwned>(
    value: &Value,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    // `T` owns its data, so nothing borrows from `value` beyond this call.
    serde_path_to_error::deserialize(Strict(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: i32,
        b: i32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Option<Inner>,
        flag: Option<bool>,
        list: Option<Vec<String>>,
        score: Option<f64>,
    }

    #[test]
    fn an_object_reads_as_serde_would() {
        let v = json!({"inner": {"a": 1, "b": -2}, "flag": true, "list": ["x"], "score": 3});
        let o: Outer = read(&v).unwrap();
        assert_eq!(o.inner, Some(Inner { a: 1, b: -2 }));
        assert_eq!(o.score, Some(3.0));
        assert_eq!(o.list, Some(vec!["x".to_owned()]));
    }

    #[test]
    fn a_whole_number_written_with_a_fraction_is_that_number() {
        let o: Outer = read(&json!({"inner": {"a": 5.0, "b": -2.0}})).unwrap();
        assert_eq!(o.inner, Some(Inner { a: 5, b: -2 }));
        // A real fraction, or a float past 2^53, is still not an integer.
        let e = read::<Outer>(&json!({"inner": {"a": 5.5, "b": 0}})).unwrap_err();
        assert_eq!(e.path().to_string(), "inner.a");
        assert!(read::<Outer>(&json!({"inner": {"a": 1e300, "b": 0}})).is_err());
        // A float field takes an integer as ever.
        let o: Outer = read(&json!({"score": 3.5})).unwrap();
        assert_eq!(o.score, Some(3.5));
    }

    #[test]
    fn an_array_in_place_of_a_struct_is_refused_at_any_depth() {
        let e = read::<Outer>(&json!([null, true])).unwrap_err();
        assert_eq!(e.path().to_string(), ".");
        assert!(e.inner().to_string().contains("expected an object"));
        let e = read::<Outer>(&json!({"inner": [1, 2]})).unwrap_err();
        assert_eq!(e.path().to_string(), "inner");
        // A list where a list is declared is still a list.
        assert!(read::<Outer>(&json!({"list": ["a", "b"]})).is_ok());
    }

    #[test]
    fn the_first_nul_is_found_with_its_path() {
        assert_eq!(
            find_nul(&json!({"a": "ok", "b": ["x", "y\u{0}"]})),
            Some("b[1]".into())
        );
        assert_eq!(
            find_nul(&json!({"w": {"k\u{0}": 1}})),
            Some("w.k\\u0000".into())
        );
        assert_eq!(find_nul(&json!("\u{0}")), Some("body".into()));
        assert_eq!(find_nul(&json!({"a": "fine", "n": 1})), None);
    }

    #[test]
    fn nuls_in_values_are_replaced_and_reported() {
        let mut v = json!({"note": "I can't go on\u{0}", "substances": ["a\u{0}b", "c"]});
        let changed = replace_nul(&mut v);
        assert_eq!(changed, vec!["note".to_owned(), "substances[0]".to_owned()]);
        assert_eq!(v["note"], json!("I can't go on\u{FFFD}"));
        assert_eq!(find_nul(&v), None);
    }
}
