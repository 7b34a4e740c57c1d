//! `AssetVideo` and `VideoFrameReference`: a whole video file (MP4) logged once as static
//! data, and rows on a timeline that say which frame of it to show.

use std::sync::Arc;

use crate::component::{AsComponents, Blob, ComponentCell, ComponentName, ComponentValue};

/// A video file kept whole, e.g. an MP4: `AssetVideo {blob, media_type}`.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetVideo {
    pub blob: Blob,
    pub media_type: Option<String>,
}

impl AssetVideo {
    pub const ARCHETYPE: &'static str = "AssetVideo";
    pub const BLOB: &'static str = "AssetVideo:blob";
    pub const MEDIA_TYPE: &'static str = "AssetVideo:media_type";

    pub fn new(blob: impl Into<Blob>) -> Self {
        AssetVideo {
            blob: blob.into(),
            media_type: None,
        }
    }

    /// `video/mp4` and the like.
    pub fn with_media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }
}

impl AsComponents for AssetVideo {
    fn archetype_name(&self) -> Option<&'static str> {
        Some(Self::ARCHETYPE)
    }
    fn as_components(&self) -> Vec<ComponentCell> {
        let mut cells = vec![ComponentCell {
            name: ComponentName::new(Self::BLOB),
            value: ComponentValue::Blob(self.blob.clone()),
        }];
        if let Some(m) = &self.media_type {
            cells.push(ComponentCell {
                name: ComponentName::new(Self::MEDIA_TYPE),
                value: ComponentValue::Utf8(Arc::from(m.as_str())),
            });
        }
        cells
    }
}

/// Which frame of an [`AssetVideo`] to show: its presentation time in the video (ns),
/// optionally naming the entity that holds the video (default: the same entity).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFrameReference {
    pub timestamp_nanos: i64,
    pub video_reference: Option<String>,
}

impl VideoFrameReference {
    pub const ARCHETYPE: &'static str = "VideoFrameReference";
    pub const TIMESTAMP: &'static str = "VideoFrameReference:timestamp";
    pub const VIDEO_REFERENCE: &'static str = "VideoFrameReference:video_reference";

    pub fn new(timestamp_nanos: i64) -> Self {
        VideoFrameReference {
            timestamp_nanos,
            video_reference: None,
        }
    }

    pub fn with_video_reference(mut self, entity: impl Into<String>) -> Self {
        self.video_reference = Some(entity.into());
        self
    }
}

impl AsComponents for VideoFrameReference {
    fn archetype_name(&self) -> Option<&'static str> {
        Some(Self::ARCHETYPE)
    }
    fn as_components(&self) -> Vec<ComponentCell> {
        let mut cells = vec![ComponentCell {
            name: ComponentName::new(Self::TIMESTAMP),
            value: ComponentValue::I64(self.timestamp_nanos),
        }];
        if let Some(r) = &self.video_reference {
            cells.push(ComponentCell {
                name: ComponentName::new(Self::VIDEO_REFERENCE),
                value: ComponentValue::Utf8(Arc::from(r.as_str())),
            });
        }
        cells
    }
}
