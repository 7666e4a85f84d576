//! The `Event` type: a registry kind, two timestamps, and one value slot per
//! declared field.
//!
//! Events are checked against the registry when fields are set, so a source
//! cannot attach a field the notice does not name, or a value of the wrong
//! type. The consent gate uses [`Event::retain_scopes`] to strip fields whose
//! scope was not granted.

use std::borrow::Cow;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use smallvec::SmallVec;

use crate::registry::{FieldType, Kind, Scope};

/// A field value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    /// Strings, and enum fields (checked against the declared list; enum
    /// values borrow the registry's own strings, so they cost no allocation).
    Str(Cow<'static, str>),
    /// Content to be stored once in the blob table.
    Blob(Vec<u8>),
    /// A stored blob, as read back from the store.
    BlobRef {
        id: i64,
        size: i64,
    },
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(Cow::Owned(v.to_owned()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(Cow::Owned(v))
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}

impl Value {
    fn fits(&self, ty: FieldType) -> bool {
        match (self, ty) {
            (Value::Int(_), FieldType::Int) | (Value::Bool(_), FieldType::Bool) => true,
            (Value::Str(_), FieldType::Str) => true,
            (Value::Str(s), FieldType::Enum(allowed)) => allowed.contains(&s.as_ref()),
            (Value::Blob(_) | Value::BlobRef { .. }, FieldType::Blob) => true,
            _ => false,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Int(i) => (*i).into(),
            Value::Bool(b) => (*b).into(),
            Value::Str(s) => s.as_ref().into(),
            Value::Blob(b) => serde_json::json!({ "size": b.len() }),
            Value::BlobRef { id, size } => serde_json::json!({ "blob": id, "size": size }),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("{kind} has no field `{field}`")]
    UnknownField { kind: Kind, field: String },
    #[error("{kind}.{field} must be {expected}")]
    WrongType {
        kind: Kind,
        field: &'static str,
        expected: String,
    },
    #[error("{kind}.{field} is required")]
    Missing { kind: Kind, field: &'static str },
}

/// When an event happened: wall-clock ns since the Unix epoch, and a
/// monotonic offset in ns since the session started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub wall_ns: i64,
    pub mono_ns: i64,
}

/// The clock of one capture session. Sources stamp events with it so that
/// ordering and durations come from the monotonic clock, not the wall clock
/// (which can jump).
#[derive(Clone, Copy, Debug)]
pub struct SessionClock {
    started: Instant,
    started_wall_ns: i64,
}

impl SessionClock {
    pub fn start() -> SessionClock {
        SessionClock {
            started: Instant::now(),
            started_wall_ns: wall_now_ns(),
        }
    }

    pub fn started_wall_ns(&self) -> i64 {
        self.started_wall_ns
    }

    pub fn stamp(&self) -> Stamp {
        self.stamp_at(Instant::now())
    }

    pub fn stamp_at(&self, at: Instant) -> Stamp {
        let mono = at.saturating_duration_since(self.started);
        Stamp {
            wall_ns: wall_now_ns(),
            mono_ns: i64::try_from(mono.as_nanos()).unwrap_or(i64::MAX),
        }
    }
}

/// Wall-clock nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Field slots, inline for the common kinds so that an event costs no heap
/// allocation on the hot path.
pub type Slots = SmallVec<[Option<Value>; 4]>;

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub wall_ns: i64,
    pub mono_ns: i64,
    /// One slot per field of `kind`, in declaration order.
    values: Slots,
}

impl Event {
    pub fn new(kind: Kind, stamp: Stamp) -> Event {
        Event {
            kind,
            wall_ns: stamp.wall_ns,
            mono_ns: stamp.mono_ns,
            values: std::iter::repeat_n(None, kind.fields().len()).collect(),
        }
    }

    /// Sets a field, checking its name and type against the registry.
    pub fn set(&mut self, field: &str, value: impl Into<Value>) -> Result<(), EventError> {
        let kind = self.kind;
        let idx = kind
            .field_index(field)
            .ok_or_else(|| EventError::UnknownField {
                kind,
                field: field.to_owned(),
            })?;
        let decl = &kind.fields()[idx];
        let mut value = value.into();
        if let (FieldType::Enum(allowed), Value::Str(s)) = (decl.ty, &value) {
            if let Some(known) = allowed.iter().find(|a| **a == s.as_ref()) {
                value = Value::Str(Cow::Borrowed(known));
            }
        }
        if !value.fits(decl.ty) {
            let expected = match decl.ty {
                FieldType::Enum(allowed) => format!("one of {}", allowed.join(", ")),
                ty => format!("a {}", ty.name()),
            };
            return Err(EventError::WrongType {
                kind,
                field: decl.name,
                expected,
            });
        }
        self.values[idx] = Some(value);
        Ok(())
    }

    /// Builder form of [`Event::set`].
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Result<Event, EventError> {
        self.set(field, value)?;
        Ok(self)
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.kind
            .field_index(field)
            .and_then(|i| self.values[i].as_ref())
    }

    pub fn values(&self) -> &[Option<Value>] {
        &self.values
    }

    /// Builds an event from slots already checked by the store's codec.
    pub(crate) fn from_slots(kind: Kind, stamp: Stamp, values: Slots) -> Event {
        debug_assert_eq!(values.len(), kind.fields().len());
        Event {
            kind,
            wall_ns: stamp.wall_ns,
            mono_ns: stamp.mono_ns,
            values,
        }
    }

    /// Checks that every required field is present.
    pub fn validate(&self) -> Result<(), EventError> {
        for (decl, v) in self.kind.fields().iter().zip(&self.values) {
            if !decl.optional && v.is_none() {
                return Err(EventError::Missing {
                    kind: self.kind,
                    field: decl.name,
                });
            }
        }
        Ok(())
    }

    /// Clears every field whose scope is not granted. Returns false, leaving
    /// the event untouched, when the kind's own scope is not granted: such an
    /// event must not be recorded at all.
    pub fn retain_scopes(&mut self, granted: impl Fn(Scope) -> bool) -> bool {
        if !granted(self.kind.scope()) {
            return false;
        }
        for (decl, v) in self.kind.fields().iter().zip(self.values.iter_mut()) {
            if let Some(scope) = decl.scope {
                if !granted(scope) {
                    *v = None;
                }
            }
        }
        true
    }

    /// The fields as a JSON object, in declaration order.
    pub fn fields_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.kind
            .fields()
            .iter()
            .zip(&self.values)
            .filter_map(|(d, v)| v.as_ref().map(|v| (d.name.to_owned(), v.to_json())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            wall_ns: 1,
            mono_ns: 0,
        }
    }

    #[test]
    fn set_checks_names_types_and_enums() {
        let mut e = Event::new(Kind::KeyDown, stamp());
        assert!(matches!(
            e.set("colour", 1),
            Err(EventError::UnknownField { .. })
        ));
        assert!(matches!(
            e.set("mods", "x"),
            Err(EventError::WrongType { .. })
        ));
        assert!(matches!(
            e.set("class", "keycode-42"),
            Err(EventError::WrongType { .. })
        ));
        e.set("class", "letter").unwrap();
        assert!(matches!(
            e.validate(),
            Err(EventError::Missing { field: "mods", .. })
        ));
        e.set("mods", 0).unwrap();
        e.validate().unwrap();
    }

    #[test]
    fn retain_scopes_strips_narrower_fields_and_refuses_ungranted_kinds() {
        let e = Event::new(Kind::KeyDown, stamp())
            .with("class", "letter")
            .unwrap()
            .with("mods", 0)
            .unwrap()
            .with("key", "KeyH")
            .unwrap()
            .with("text", "h")
            .unwrap();
        let mut timing_only = e.clone();
        assert!(timing_only.retain_scopes(|s| s == Scope::KeysTiming));
        assert_eq!(timing_only.get("key"), None);
        assert_eq!(timing_only.get("text"), None);
        assert_eq!(timing_only.get("class"), Some(&Value::from("letter")));

        let mut nothing = e.clone();
        assert!(!nothing.retain_scopes(|s| s == Scope::KeysText));
        assert_eq!(nothing, e);
    }

    #[test]
    fn session_clock_is_monotonic() {
        let c = SessionClock::start();
        let a = c.stamp();
        let b = c.stamp();
        assert!(b.mono_ns >= a.mono_ns);
        assert!(a.wall_ns >= c.started_wall_ns() - 1_000_000_000);
    }
}
