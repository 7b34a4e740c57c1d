//! A stored video entity as a [`SampleSource`] for the decoder's `VideoPlayer`: samples in
//! decode order with their presentation times on one timeline, keyframe flags from the
//! [`VideoIndex`](super::VideoIndex), and bytes loaded from the store (shared with its chunks).

use arrow_buffer::Buffer;
use vidlog_types::{EntityPath, VideoCodec};
use vidlog_video::decode::SampleSource;

use super::{ChunkStore, StoreError};

/// See the module documentation.
pub struct StoreVideoSource<'a> {
    store: &'a ChunkStore,
    entity: EntityPath,
    timeline: String,
}

impl<'a> StoreVideoSource<'a> {
    /// The video samples of `entity` timed on `timeline`.
    pub fn new(
        store: &'a ChunkStore,
        entity: EntityPath,
        timeline: &str,
    ) -> Result<Self, StoreError> {
        let video = store.video(&entity).ok_or_else(|| StoreError::Query {
            entity: entity.clone(),
            problem: "has no video samples".into(),
        })?;
        if video.pts(timeline).is_none() {
            return Err(StoreError::NoTimeline {
                entity,
                timeline: timeline.to_owned(),
            });
        }
        Ok(StoreVideoSource {
            store,
            entity,
            timeline: timeline.to_owned(),
        })
    }

    pub fn entity(&self) -> &EntityPath {
        &self.entity
    }

    /// `(pts, decode index)` of every sample in presentation order.
    pub fn presentation_order(&self) -> &[(i64, usize)] {
        self.store
            .video(&self.entity)
            .and_then(|v| v.presentation_order(&self.timeline))
            .unwrap_or(&[])
    }
}

impl SampleSource for StoreVideoSource<'_> {
    type Bytes = Buffer;

    fn name(&self) -> String {
        self.entity.to_string()
    }

    fn codec(&self) -> Option<VideoCodec> {
        self.store.codec(&self.entity)
    }

    fn len(&self) -> usize {
        self.store.video(&self.entity).map_or(0, |v| v.len())
    }

    fn pts(&self, index: usize) -> Option<i64> {
        let video = self.store.video(&self.entity)?;
        video.pts(&self.timeline)?.get(index).copied()
    }

    fn is_keyframe(&self, index: usize) -> bool {
        self.store
            .video(&self.entity)
            .and_then(|v| v.sample(index))
            .is_some_and(|s| s.is_keyframe())
    }

    fn presented_at(&self, t: i64) -> Option<(usize, i64)> {
        let order = self.presentation_order();
        let at = order.partition_point(|(pts, _)| *pts <= t).checked_sub(1)?;
        let (pts, index) = order[at];
        Some((index, pts))
    }

    fn keyframe_before(&self, index: usize) -> Option<usize> {
        let keyframes = self.store.video(&self.entity)?.keyframes();
        let k = keyframes.partition_point(|k| *k <= index).checked_sub(1)?;
        keyframes.get(k).copied()
    }

    fn bytes(&self, index: usize) -> Result<Buffer, String> {
        self.store
            .video_sample(&self.entity, index)
            .map(|s| s.bytes)
            .map_err(|e| e.to_string())
    }
}
