//! A JSON object written field by field, straight from each field's `Serialize`, with the fields of a
//! struct taken over as they serialize: no `serde_json::Value` tree in between (building one for every
//! event's own fields costs a third of the staff event's time, docs/benchmarks.md).

use serde::Serialize;
use serde::ser::{self, Impossible};

#[derive(Default)]
pub struct JsonObject(Vec<u8>);

impl JsonObject {
    pub fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        self.0.push(if self.0.is_empty() { b'{' } else { b',' });
        serde_json::to_writer(&mut self.0, key).expect("a key serializes");
        self.0.push(b':');
        serde_json::to_writer(&mut self.0, value).expect("a view serializes");
    }

    /// The fields of `value`, which serializes as a struct (an internally tagged enum's struct variant
    /// does, its tag first), those for which `keep` says so. An error for anything else.
    pub fn fields_of<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        keep: impl Fn(&str) -> bool,
    ) -> Result<(), serde_json::Error> {
        value.serialize(Fields { out: self, keep })
    }

    pub fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push(b'{');
        }
        self.0.push(b'}');
        String::from_utf8(self.0).expect("serde_json writes UTF-8")
    }
}

/// A serializer that takes a struct's fields into a `JsonObject` and refuses everything else.
struct Fields<'a, K> {
    out: &'a mut JsonObject,
    keep: K,
}

impl<K: Fn(&str) -> bool> ser::SerializeStruct for Fields<'_, K> {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        if (self.keep)(key) {
            self.out.field(key, value);
        }
        Ok(())
    }

    fn end(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn not_a_struct() -> serde_json::Error {
    ser::Error::custom("only a struct's fields can be taken over")
}

impl<'a, K: Fn(&str) -> bool> ser::Serializer for Fields<'a, K> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Impossible<(), Self::Error>;
    type SerializeTuple = Impossible<(), Self::Error>;
    type SerializeTupleStruct = Impossible<(), Self::Error>;
    type SerializeTupleVariant = Impossible<(), Self::Error>;
    type SerializeMap = Impossible<(), Self::Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Self::Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Self::Error> {
        Ok(self)
    }

    fn serialize_bool(self, _: bool) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_i8(self, _: i8) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_i16(self, _: i16) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_i32(self, _: i32) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_i64(self, _: i64) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_u8(self, _: u8) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_u16(self, _: u16) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_u32(self, _: u32) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_u64(self, _: u64) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_f32(self, _: f32) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_f64(self, _: f64) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_char(self, _: char) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_str(self, _: &str) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_none(self) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_unit(self) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Err(not_a_struct())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(not_a_struct())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Ev {
        Moved {
            ticket: u64,
            counter: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            note: Option<String>,
        },
        Empty {},
    }

    #[test]
    fn takes_a_struct_variants_fields_as_serde_json_writes_them() {
        let ev = Ev::Moved {
            ticket: 7,
            counter: Some("c\"1".into()),
            note: None,
        };
        let mut all = JsonObject::default();
        all.fields_of(&ev, |_| true).unwrap();
        let all: serde_json::Value = serde_json::from_str(&all.finish()).unwrap();
        assert_eq!(all, serde_json::to_value(&ev).unwrap());

        let mut some = JsonObject::default();
        some.fields_of(&ev, |k| k != "ticket").unwrap();
        some.field("ticket_id", &7);
        assert_eq!(
            some.finish(),
            r#"{"kind":"moved","counter":"c\"1","ticket_id":7}"#
        );

        let mut empty = JsonObject::default();
        empty.fields_of(&Ev::Empty {}, |k| k != "kind").unwrap();
        assert_eq!(empty.finish(), "{}");
    }

    #[test]
    fn refuses_what_is_not_a_struct() {
        let mut out = JsonObject::default();
        assert!(out.fields_of(&3, |_| true).is_err());
        assert!(out.fields_of(&vec![1, 2], |_| true).is_err());
        assert_eq!(out.finish(), "{}");
    }
}
