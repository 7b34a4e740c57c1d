//! The `foxglove.CompressedVideo` schema as MCAP carries it: a serialized
//! `google.protobuf.FileDescriptorSet` holding `foxglove/CompressedVideo.proto` and the
//! `google/protobuf/timestamp.proto` it depends on.
//!
//! This module owns a small model of the descriptor messages (`FileDescriptorProto`,
//! `DescriptorProto`, `FieldDescriptorProto`: only the fields a reader needs to decode the
//! message), its encoding with [`ProtoWriter`] and its decoding with [`ProtoReader`]. It does not
//! encode video messages; that is `video.rs`.

use crate::proto::{ProtoReader, ProtoWriter, WireError, WireProblem};

/// MCAP schema name of Foxglove's compressed video message.
pub const SCHEMA_NAME: &str = "foxglove.CompressedVideo";
/// MCAP schema encoding for protobuf schemas (a serialized `FileDescriptorSet`).
pub const SCHEMA_ENCODING: &str = "protobuf";
/// MCAP message encoding of protobuf channels.
pub const MESSAGE_ENCODING: &str = "protobuf";

/// `FieldDescriptorProto.Label.LABEL_OPTIONAL`.
pub const LABEL_OPTIONAL: i32 = 1;
/// `FieldDescriptorProto.Type.TYPE_INT64`.
pub const TYPE_INT64: i32 = 3;
/// `FieldDescriptorProto.Type.TYPE_INT32`.
pub const TYPE_INT32: i32 = 5;
/// `FieldDescriptorProto.Type.TYPE_STRING`.
pub const TYPE_STRING: i32 = 9;
/// `FieldDescriptorProto.Type.TYPE_MESSAGE`.
pub const TYPE_MESSAGE: i32 = 11;
/// `FieldDescriptorProto.Type.TYPE_BYTES`.
pub const TYPE_BYTES: i32 = 12;

/// Field numbers of `google.protobuf.FileDescriptorSet`.
mod file_set_field {
    pub const FILE: u32 = 1;
}
/// Field numbers of `google.protobuf.FileDescriptorProto`.
mod file_field {
    pub const NAME: u32 = 1;
    pub const PACKAGE: u32 = 2;
    pub const DEPENDENCY: u32 = 3;
    pub const MESSAGE_TYPE: u32 = 4;
    pub const SYNTAX: u32 = 12;
}
/// Field numbers of `google.protobuf.DescriptorProto`.
mod message_field {
    pub const NAME: u32 = 1;
    pub const FIELD: u32 = 2;
}
/// Field numbers of `google.protobuf.FieldDescriptorProto`.
mod field_field {
    pub const NAME: u32 = 1;
    pub const NUMBER: u32 = 3;
    pub const LABEL: u32 = 4;
    pub const TYPE: u32 = 5;
    pub const TYPE_NAME: u32 = 6;
    pub const JSON_NAME: u32 = 10;
}

/// A `google.protobuf.FileDescriptorSet` (only the parts modelled here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescriptorSet {
    /// The `.proto` files, dependencies first.
    pub files: Vec<FileDescriptor>,
}

/// A `google.protobuf.FileDescriptorProto`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileDescriptor {
    /// Path of the `.proto` file, e.g. `foxglove/CompressedVideo.proto`.
    pub name: String,
    /// Package, e.g. `foxglove`.
    pub package: String,
    /// Paths of the files it imports.
    pub dependencies: Vec<String>,
    /// Top-level messages.
    pub messages: Vec<MessageDescriptor>,
    /// `proto2` or `proto3` (empty means proto2).
    pub syntax: String,
}

/// A `google.protobuf.DescriptorProto`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageDescriptor {
    /// Message name without package, e.g. `CompressedVideo`.
    pub name: String,
    /// Its fields.
    pub fields: Vec<FieldDescriptor>,
}

/// A `google.protobuf.FieldDescriptorProto`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldDescriptor {
    /// Field name, e.g. `frame_id`.
    pub name: String,
    /// Field number.
    pub number: i32,
    /// `LABEL_*`.
    pub label: i32,
    /// `TYPE_*`.
    pub field_type: i32,
    /// Fully qualified type of message fields, e.g. `.google.protobuf.Timestamp`; empty otherwise.
    pub type_name: String,
    /// JSON name, e.g. `frameId`.
    pub json_name: String,
}

impl FieldDescriptor {
    fn scalar(name: &str, number: i32, field_type: i32, json_name: &str) -> Self {
        Self {
            name: name.to_owned(),
            number,
            label: LABEL_OPTIONAL,
            field_type,
            type_name: String::new(),
            json_name: json_name.to_owned(),
        }
    }
}

/// The descriptor set vidlog writes as the `foxglove.CompressedVideo` schema.
pub fn compressed_video_descriptor_set() -> DescriptorSet {
    let timestamp = FileDescriptor {
        name: "google/protobuf/timestamp.proto".to_owned(),
        package: "google.protobuf".to_owned(),
        dependencies: Vec::new(),
        messages: vec![MessageDescriptor {
            name: "Timestamp".to_owned(),
            fields: vec![
                FieldDescriptor::scalar("seconds", 1, TYPE_INT64, "seconds"),
                FieldDescriptor::scalar("nanos", 2, TYPE_INT32, "nanos"),
            ],
        }],
        syntax: "proto3".to_owned(),
    };
    let compressed_video = FileDescriptor {
        name: "foxglove/CompressedVideo.proto".to_owned(),
        package: "foxglove".to_owned(),
        dependencies: vec![timestamp.name.clone()],
        messages: vec![MessageDescriptor {
            name: "CompressedVideo".to_owned(),
            fields: vec![
                FieldDescriptor {
                    type_name: ".google.protobuf.Timestamp".to_owned(),
                    ..FieldDescriptor::scalar("timestamp", 1, TYPE_MESSAGE, "timestamp")
                },
                FieldDescriptor::scalar("frame_id", 2, TYPE_STRING, "frameId"),
                FieldDescriptor::scalar("data", 3, TYPE_BYTES, "data"),
                FieldDescriptor::scalar("format", 4, TYPE_STRING, "format"),
            ],
        }],
        syntax: "proto3".to_owned(),
    };
    // Dependencies first: some consumers add files to a descriptor pool in order.
    DescriptorSet {
        files: vec![timestamp, compressed_video],
    }
}

/// The serialized schema data for `foxglove.CompressedVideo`.
pub fn compressed_video_schema_data() -> Vec<u8> {
    compressed_video_descriptor_set().encode()
}

impl DescriptorSet {
    /// Serializes the set as a `google.protobuf.FileDescriptorSet`.
    pub fn encode(&self) -> Vec<u8> {
        let mut set = ProtoWriter::new();
        for file in &self.files {
            set.message(file_set_field::FILE, &file.encode());
        }
        set.into_bytes()
    }

    /// Parses a serialized `FileDescriptorSet`, ignoring fields this model does not keep.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut set = DescriptorSet::default();
        for field in ProtoReader::new(bytes) {
            let field = field?;
            if field.number == file_set_field::FILE {
                let (offset, body) = body_of(bytes, &field)?;
                set.files
                    .push(FileDescriptor::decode(body).map_err(|e| e.shifted(offset))?);
            }
        }
        Ok(set)
    }

    /// Finds a message by its fully qualified name, e.g. `foxglove.CompressedVideo`.
    pub fn message(&self, full_name: &str) -> Option<&MessageDescriptor> {
        self.files.iter().find_map(|file| {
            file.messages.iter().find(|message| {
                let qualified = if file.package.is_empty() {
                    message.name.clone()
                } else {
                    format!("{}.{}", file.package, message.name)
                };
                qualified == full_name
            })
        })
    }
}

impl FileDescriptor {
    fn encode(&self) -> ProtoWriter {
        let mut file = ProtoWriter::new();
        file.string(file_field::NAME, &self.name);
        if !self.package.is_empty() {
            file.string(file_field::PACKAGE, &self.package);
        }
        for dependency in &self.dependencies {
            file.string(file_field::DEPENDENCY, dependency);
        }
        for message in &self.messages {
            file.message(file_field::MESSAGE_TYPE, &message.encode());
        }
        if !self.syntax.is_empty() {
            file.string(file_field::SYNTAX, &self.syntax);
        }
        file
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut file = FileDescriptor::default();
        for field in ProtoReader::new(bytes) {
            let field = field?;
            let at = |problem| wire_error(bytes, &field, problem);
            match field.number {
                file_field::NAME => file.name = field.string().map_err(at)?.to_owned(),
                file_field::PACKAGE => file.package = field.string().map_err(at)?.to_owned(),
                file_field::DEPENDENCY => file
                    .dependencies
                    .push(field.string().map_err(at)?.to_owned()),
                file_field::MESSAGE_TYPE => {
                    let (offset, body) = body_of(bytes, &field)?;
                    file.messages
                        .push(MessageDescriptor::decode(body).map_err(|e| e.shifted(offset))?);
                }
                file_field::SYNTAX => file.syntax = field.string().map_err(at)?.to_owned(),
                _ => {}
            }
        }
        Ok(file)
    }
}

impl MessageDescriptor {
    fn encode(&self) -> ProtoWriter {
        let mut message = ProtoWriter::new();
        message.string(message_field::NAME, &self.name);
        for field in &self.fields {
            message.message(message_field::FIELD, &field.encode());
        }
        message
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut message = MessageDescriptor::default();
        for field in ProtoReader::new(bytes) {
            let field = field?;
            match field.number {
                message_field::NAME => {
                    message.name = field
                        .string()
                        .map_err(|p| wire_error(bytes, &field, p))?
                        .to_owned()
                }
                message_field::FIELD => {
                    let (offset, body) = body_of(bytes, &field)?;
                    message
                        .fields
                        .push(FieldDescriptor::decode(body).map_err(|e| e.shifted(offset))?);
                }
                _ => {}
            }
        }
        Ok(message)
    }

    /// A field by number.
    pub fn field(&self, number: i32) -> Option<&FieldDescriptor> {
        self.fields.iter().find(|f| f.number == number)
    }
}

impl FieldDescriptor {
    fn encode(&self) -> ProtoWriter {
        let mut field = ProtoWriter::new();
        field
            .string(field_field::NAME, &self.name)
            .int32(field_field::NUMBER, self.number)
            .int32(field_field::LABEL, self.label)
            .int32(field_field::TYPE, self.field_type);
        if !self.type_name.is_empty() {
            field.string(field_field::TYPE_NAME, &self.type_name);
        }
        if !self.json_name.is_empty() {
            field.string(field_field::JSON_NAME, &self.json_name);
        }
        field
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut descriptor = FieldDescriptor::default();
        for field in ProtoReader::new(bytes) {
            let field = field?;
            let at = |problem| wire_error(bytes, &field, problem);
            // int32 values travel as sign-extended 64-bit varints; truncation is the decoding rule.
            let int32 = || field.varint().map(|v| v as i32).map_err(at);
            match field.number {
                field_field::NAME => descriptor.name = field.string().map_err(at)?.to_owned(),
                field_field::NUMBER => descriptor.number = int32()?,
                field_field::LABEL => descriptor.label = int32()?,
                field_field::TYPE => descriptor.field_type = int32()?,
                field_field::TYPE_NAME => {
                    descriptor.type_name = field.string().map_err(at)?.to_owned()
                }
                field_field::JSON_NAME => {
                    descriptor.json_name = field.string().map_err(at)?.to_owned()
                }
                _ => {}
            }
        }
        Ok(descriptor)
    }
}

/// The payload of a length-delimited field and its offset in `message` (for error positions).
fn body_of<'a>(
    message: &'a [u8],
    field: &crate::proto::Field<'a>,
) -> Result<(usize, &'a [u8]), WireError> {
    let body = field
        .bytes()
        .map_err(|problem| wire_error(message, field, problem))?;
    Ok((offset_in(message, body), body))
}

fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

fn wire_error(message: &[u8], field: &crate::proto::Field<'_>, problem: WireProblem) -> WireError {
    let offset = match field.value {
        crate::proto::FieldValue::LengthDelimited(body) => offset_in(message, body),
        _ => 0,
    };
    WireError { offset, problem }
}

impl WireError {
    fn shifted(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }
}

/// Whether a decoded descriptor set describes a `foxglove.CompressedVideo` this crate can read:
/// `data` is field 3 (bytes), `format` field 4 (string), `timestamp` field 1 (a message) and
/// `frame_id` field 2 (string). Returns what does not match.
pub fn check_compressed_video(set: &DescriptorSet) -> Result<(), String> {
    let Some(message) = set.message(SCHEMA_NAME) else {
        return Err(format!("the descriptor set has no message {SCHEMA_NAME}"));
    };
    let expected = [
        (1, "timestamp", TYPE_MESSAGE),
        (2, "frame_id", TYPE_STRING),
        (3, "data", TYPE_BYTES),
        (4, "format", TYPE_STRING),
    ];
    for (number, name, field_type) in expected {
        match message.field(number) {
            Some(field) if field.field_type == field_type => {}
            Some(field) => {
                return Err(format!(
                    "field {number} ({}) has type {}, expected {field_type} for `{name}`",
                    field.name, field.field_type
                ));
            }
            None => return Err(format!("field {number} (`{name}`) is missing")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_set_round_trips() {
        let set = compressed_video_descriptor_set();
        let bytes = set.encode();
        assert_eq!(DescriptorSet::decode(&bytes), Ok(set.clone()));
        assert_eq!(check_compressed_video(&set), Ok(()));
        let timestamp = set.message("google.protobuf.Timestamp").expect("Timestamp");
        assert_eq!(timestamp.field(1).map(|f| f.field_type), Some(TYPE_INT64));
        assert_eq!(timestamp.field(2).map(|f| f.field_type), Some(TYPE_INT32));
    }

    #[test]
    fn descriptor_bytes_start_with_the_well_known_tags() {
        let bytes = compressed_video_schema_data();
        // FileDescriptorSet.file (1, length-delimited) = 0x0a, then the first file's
        // FileDescriptorProto.name (1, length-delimited) = 0x0a, 31 bytes.
        assert_eq!(bytes[0], 0x0a);
        let name = b"google/protobuf/timestamp.proto";
        let at = bytes
            .windows(name.len())
            .position(|w| w == name)
            .expect("file name present");
        assert_eq!(&bytes[at - 2..at], &[0x0a, name.len() as u8]);
    }

    #[test]
    fn damaged_descriptors_are_errors() {
        let bytes = compressed_video_schema_data();
        for end in 1..bytes.len() {
            // Either an error or a shorter set; never a panic.
            let _ = DescriptorSet::decode(&bytes[..end]);
        }
        let mut wrong = compressed_video_descriptor_set();
        wrong.files[1].messages[0].fields[2].field_type = TYPE_STRING;
        assert!(check_compressed_video(&wrong).is_err());
    }
}
