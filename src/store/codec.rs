//! The compact row encoding of an event's fields, driven by the registry.
//!
//! A kind's fields fall in three groups: public fields (the `data` column),
//! highly sensitive fields (the `sealed` column, encoded the same way and
//! then sealed), and at most one blob field (the `blob_id` column). Each
//! group is encoded as a presence bitmap (LEB128) followed by the present
//! values in declaration order: integers as zigzag LEB128, enums as their
//! index, strings as length and UTF-8 bytes. A mouse move takes 5 bytes.

use std::sync::OnceLock;

use crate::event::Value;
use crate::registry::{FieldType, Kind};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("stored {kind} row is damaged: {why}")]
    Damaged { kind: Kind, why: &'static str },
    #[error("{kind}.{field} does not fit its declared type")]
    Type { kind: Kind, field: &'static str },
}

/// Which group a field is stored in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Public = 0,
    Sealed = 1,
}

/// Where each field of a kind is stored, worked out once from the registry.
struct Layout {
    groups: Vec<Option<Group>>,
    has: [bool; 2],
    blob: Option<usize>,
}

fn layout(kind: Kind) -> &'static Layout {
    static LAYOUTS: OnceLock<Vec<Layout>> = OnceLock::new();
    let all = LAYOUTS.get_or_init(|| {
        Kind::ALL
            .iter()
            .map(|&k| {
                let groups: Vec<Option<Group>> = k
                    .fields()
                    .iter()
                    .map(|f| match f.ty {
                        FieldType::Blob => None,
                        _ if f.sealed(k) => Some(Group::Sealed),
                        _ => Some(Group::Public),
                    })
                    .collect();
                Layout {
                    has: [
                        groups.contains(&Some(Group::Public)),
                        groups.contains(&Some(Group::Sealed)),
                    ],
                    blob: k.fields().iter().position(|f| f.ty == FieldType::Blob),
                    groups,
                }
            })
            .collect()
    });
    &all[kind.index()]
}

fn group_of(kind: Kind, idx: usize) -> Option<Group> {
    layout(kind).groups[idx]
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encodes the fields of `group` into `out` (cleared first). Returns false
/// when no field of the group is present, in which case the column is NULL.
pub fn encode_group(
    kind: Kind,
    values: &[Option<Value>],
    group: Group,
    out: &mut Vec<u8>,
) -> Result<bool, CodecError> {
    out.clear();
    if !layout(kind).has[group as usize] {
        return Ok(false);
    }
    let mut bitmap = 0u64;
    let mut bit = 0;
    for (i, v) in values.iter().enumerate() {
        if group_of(kind, i) == Some(group) {
            if v.is_some() {
                bitmap |= 1 << bit;
            }
            bit += 1;
        }
    }
    if bitmap == 0 {
        return Ok(false);
    }
    put_varint(out, bitmap);
    for (i, v) in values.iter().enumerate() {
        let Some(v) = v else { continue };
        if group_of(kind, i) != Some(group) {
            continue;
        }
        let decl = &kind.fields()[i];
        let type_err = || CodecError::Type {
            kind,
            field: decl.name,
        };
        match (decl.ty, v) {
            (FieldType::Int, Value::Int(n)) => put_varint(out, zigzag(*n)),
            (FieldType::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
            (FieldType::Str, Value::Str(s)) => {
                put_varint(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            (FieldType::Enum(allowed), Value::Str(s)) => {
                let idx = allowed
                    .iter()
                    .position(|a| *a == s.as_ref())
                    .ok_or_else(type_err)?;
                put_varint(out, idx as u64);
            }
            _ => return Err(type_err()),
        }
    }
    Ok(true)
}

/// Decodes a group's column into `values` (one slot per field of `kind`).
pub fn decode_group(
    kind: Kind,
    mut buf: &[u8],
    group: Group,
    values: &mut [Option<Value>],
) -> Result<(), CodecError> {
    let damaged = |why| CodecError::Damaged { kind, why };
    let bitmap = get_varint(&mut buf).ok_or_else(|| damaged("truncated bitmap"))?;
    let mut bit = 0;
    for (i, decl) in kind.fields().iter().enumerate() {
        if group_of(kind, i) != Some(group) {
            continue;
        }
        let present = bitmap & (1 << bit) != 0;
        bit += 1;
        if !present {
            continue;
        }
        let value = match decl.ty {
            FieldType::Int => Value::Int(unzigzag(
                get_varint(&mut buf).ok_or_else(|| damaged("truncated int"))?,
            )),
            FieldType::Bool => {
                let (&b, rest) = buf.split_first().ok_or_else(|| damaged("truncated bool"))?;
                buf = rest;
                Value::Bool(b != 0)
            }
            FieldType::Str => {
                let len = get_varint(&mut buf).ok_or_else(|| damaged("truncated length"))?;
                let len = usize::try_from(len).map_err(|_| damaged("length out of range"))?;
                if len > buf.len() {
                    return Err(damaged("string runs past the row"));
                }
                let (s, rest) = buf.split_at(len);
                buf = rest;
                Value::Str(
                    String::from_utf8(s.to_vec())
                        .map_err(|_| damaged("string is not UTF-8"))?
                        .into(),
                )
            }
            FieldType::Enum(allowed) => {
                let idx = get_varint(&mut buf).ok_or_else(|| damaged("truncated enum"))?;
                let s = usize::try_from(idx)
                    .ok()
                    .and_then(|i| allowed.get(i))
                    .ok_or_else(|| damaged("enum index out of range"))?;
                Value::Str(std::borrow::Cow::Borrowed(*s))
            }
            FieldType::Blob => unreachable!("blob fields are not in a group"),
        };
        values[i] = Some(value);
    }
    if bitmap >> bit != 0 {
        return Err(damaged("bitmap names fields the kind does not have"));
    }
    if !buf.is_empty() {
        return Err(damaged("trailing bytes"));
    }
    Ok(())
}

/// The index of the kind's blob field, if it has one.
pub fn blob_field(kind: Kind) -> Option<usize> {
    layout(kind).blob
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Stamp};

    fn round_trip(e: &Event) -> Vec<Option<Value>> {
        let mut values = vec![None; e.kind.fields().len()];
        let mut buf = Vec::new();
        for g in [Group::Public, Group::Sealed] {
            if encode_group(e.kind, e.values(), g, &mut buf).unwrap() {
                decode_group(e.kind, &buf, g, &mut values).unwrap();
            }
        }
        values
    }

    #[test]
    fn mouse_move_is_five_bytes_and_round_trips() {
        let e = Event::new(
            Kind::MouseMove,
            Stamp {
                wall_ns: 0,
                mono_ns: 0,
            },
        )
        .with("x", 1919)
        .unwrap()
        .with("y", 1079)
        .unwrap();
        let mut buf = Vec::new();
        assert!(encode_group(e.kind, e.values(), Group::Public, &mut buf).unwrap());
        assert_eq!(buf.len(), 5);
        assert!(!encode_group(e.kind, e.values(), Group::Sealed, &mut buf).unwrap());
        assert_eq!(round_trip(&e), e.values());
    }

    #[test]
    fn sealed_fields_go_to_their_own_group() {
        let e = Event::new(
            Kind::KeyDown,
            Stamp {
                wall_ns: 0,
                mono_ns: 0,
            },
        )
        .with("class", "letter")
        .unwrap()
        .with("mods", 2)
        .unwrap()
        .with("key", "KeyC")
        .unwrap()
        .with("text", "ctrl+c")
        .unwrap();
        let mut public = Vec::new();
        encode_group(e.kind, e.values(), Group::Public, &mut public).unwrap();
        assert!(!public.windows(4).any(|w| w == b"KeyC"));
        assert_eq!(round_trip(&e), e.values());
        for v in [i64::MIN, -1, 0, 1, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let mut values = vec![None; 2];
        for bad in [
            &[][..],
            &[0x80][..],
            &[0b100, 1][..],
            &[0b11, 2][..],
            &[0b1, 2, 9][..],
        ] {
            assert!(
                decode_group(Kind::MouseMove, bad, Group::Public, &mut values).is_err(),
                "{bad:?}"
            );
        }
        let mut values = vec![None; 4];
        assert!(decode_group(Kind::KeyDown, &[0b1, 99], Group::Public, &mut values).is_err());
        assert!(decode_group(Kind::KeyDown, &[0b1, 5, 0xff], Group::Sealed, &mut values).is_err());
    }
}
