//! `VideoStream`: already-encoded video, one access unit per sample.
//!
//! The codec is logged once as static data; each sample is logged at its presentation
//! time on the row's timelines, in decode order. `is_keyframe` is optional: when a
//! producer does not say, vidlog detects it once at ingest.

use crate::codec::VideoCodec;
use crate::component::{AsComponents, Blob, ComponentCell, ComponentName, ComponentValue};

/// Encoded video: `VideoStream {codec, sample, is_keyframe, draw_order, opacity}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoStream {
    pub codec: Option<VideoCodec>,
    pub sample: Option<Blob>,
    pub is_keyframe: Option<bool>,
    pub draw_order: Option<f32>,
    pub opacity: Option<f32>,
}

impl VideoStream {
    pub const ARCHETYPE: &'static str = "VideoStream";
    pub const CODEC: &'static str = "VideoStream:codec";
    pub const SAMPLE: &'static str = "VideoStream:sample";
    pub const IS_KEYFRAME: &'static str = "VideoStream:is_keyframe";
    pub const DRAW_ORDER: &'static str = "VideoStream:draw_order";
    pub const OPACITY: &'static str = "VideoStream:opacity";

    /// The static part: just the codec.
    pub fn new(codec: VideoCodec) -> Self {
        VideoStream {
            codec: Some(codec),
            ..Default::default()
        }
    }

    /// One access unit (Annex B for H.264/H.265, a temporal unit for AV1).
    pub fn from_sample(sample: impl Into<Blob>) -> Self {
        VideoStream {
            sample: Some(sample.into()),
            ..Default::default()
        }
    }

    pub fn with_codec(mut self, codec: VideoCodec) -> Self {
        self.codec = Some(codec);
        self
    }
    pub fn with_sample(mut self, sample: impl Into<Blob>) -> Self {
        self.sample = Some(sample.into());
        self
    }
    /// Says whether the sample is a keyframe, so vidlog need not look.
    pub fn with_keyframe(mut self, is_keyframe: bool) -> Self {
        self.is_keyframe = Some(is_keyframe);
        self
    }
    pub fn with_draw_order(mut self, draw_order: f32) -> Self {
        self.draw_order = Some(draw_order);
        self
    }
    pub fn with_opacity(mut self, opacity: f32) -> Self {
        self.opacity = Some(opacity);
        self
    }
}

impl AsComponents for VideoStream {
    fn archetype_name(&self) -> Option<&'static str> {
        Some(Self::ARCHETYPE)
    }

    fn as_components(&self) -> Vec<ComponentCell> {
        let mut cells = Vec::with_capacity(2);
        let mut push = |name: &str, value: ComponentValue| {
            cells.push(ComponentCell {
                name: ComponentName::new(name),
                value,
            })
        };
        if let Some(codec) = self.codec {
            push(Self::CODEC, ComponentValue::U32(codec.fourcc()));
        }
        if let Some(sample) = &self.sample {
            push(Self::SAMPLE, ComponentValue::Blob(sample.clone()));
        }
        if let Some(k) = self.is_keyframe {
            push(Self::IS_KEYFRAME, ComponentValue::Bool(k));
        }
        if let Some(d) = self.draw_order {
            push(Self::DRAW_ORDER, ComponentValue::F32(d));
        }
        if let Some(o) = self.opacity {
            push(Self::OPACITY, ComponentValue::F32(o));
        }
        cells
    }
}
