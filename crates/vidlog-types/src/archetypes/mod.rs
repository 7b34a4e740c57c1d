//! Archetypes: named bundles of components (`VideoStream` now; `Image`, `EncodedImage`,
//! `AssetVideo` and `VideoFrameReference` follow).

mod video_stream;

pub use video_stream::VideoStream;
