//! Components: named, typed values of a row, stored as Arrow columns.
//!
//! A component is named `Archetype:field` (`VideoStream:sample`). A logged row holds one
//! [`ComponentValue`] per component; the batcher turns a run of rows into one Arrow array
//! per component (see [`crate::chunk`]). The value's variant fixes the Arrow type.

use std::fmt;
use std::sync::Arc;

use arrow_buffer::Buffer;
use arrow_schema::DataType;

/// `Archetype:field`, e.g. `VideoStream:sample`. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentName(Arc<str>);

impl ComponentName {
    pub fn new(name: &str) -> Self {
        ComponentName(Arc::from(name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The archetype part (`VideoStream`), if the name has one.
    pub fn archetype(&self) -> Option<&str> {
        self.0.split_once(':').map(|(a, _)| a)
    }
}

impl fmt::Display for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl From<&str> for ComponentName {
    fn from(s: &str) -> Self {
        ComponentName::new(s)
    }
}

/// Opaque bytes (a video sample, an encoded image). Cloning shares the bytes.
///
/// Made from a `Vec<u8>` it takes the allocation over without copying.
#[derive(Clone, PartialEq, Eq)]
pub struct Blob(pub Buffer);

impl Blob {
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Blob(Buffer::from_vec(v))
    }
}

impl From<&[u8]> for Blob {
    fn from(v: &[u8]) -> Self {
        Blob(Buffer::from(v))
    }
}

impl<const N: usize> From<&[u8; N]> for Blob {
    fn from(v: &[u8; N]) -> Self {
        Blob(Buffer::from(&v[..]))
    }
}

impl From<Buffer> for Blob {
    fn from(b: Buffer) -> Self {
        Blob(b)
    }
}

/// One row's value of one component.
#[derive(Debug, Clone, PartialEq)]
pub enum ComponentValue {
    Blob(Blob),
    U32(u32),
    I64(i64),
    F32(f32),
    Bool(bool),
    Utf8(Arc<str>),
}

impl ComponentValue {
    /// The Arrow type of a column of this value.
    pub fn data_type(&self) -> DataType {
        match self {
            ComponentValue::Blob(_) => DataType::Binary,
            ComponentValue::U32(_) => DataType::UInt32,
            ComponentValue::I64(_) => DataType::Int64,
            ComponentValue::F32(_) => DataType::Float32,
            ComponentValue::Bool(_) => DataType::Boolean,
            ComponentValue::Utf8(_) => DataType::Utf8,
        }
    }

    /// Bytes this value adds to a chunk (used for flush-by-size and back-pressure).
    pub fn heap_size(&self) -> usize {
        match self {
            ComponentValue::Blob(b) => b.len() + 4,
            ComponentValue::Utf8(s) => s.len() + 4,
            ComponentValue::U32(_) | ComponentValue::F32(_) => 4,
            ComponentValue::I64(_) => 8,
            ComponentValue::Bool(_) => 1,
        }
    }
}

/// A component of a logged row.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentCell {
    pub name: ComponentName,
    pub value: ComponentValue,
}

/// Anything that can be logged: an archetype, or a hand-made list of cells.
pub trait AsComponents {
    /// The archetype's name, e.g. `VideoStream` (`None` for loose components).
    fn archetype_name(&self) -> Option<&'static str>;
    /// The cells to log; components left unset are omitted.
    fn as_components(&self) -> Vec<ComponentCell>;
}

impl AsComponents for Vec<ComponentCell> {
    fn archetype_name(&self) -> Option<&'static str> {
        None
    }
    fn as_components(&self) -> Vec<ComponentCell> {
        self.clone()
    }
}
